"""Role permissions. Object-level scoping is done in selectors (querysets per user)."""

from django.conf import settings
from rest_framework.permissions import BasePermission


class IsRequester(BasePermission):
    message = "Only requesters can do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_requester or user.is_staff))


class IsWorker(BasePermission):
    message = "Only workers can do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_worker)


class IsPlatformAdmin(BasePermission):
    message = "Only platform admins can do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_platform_admin)


class ApiDocsAccess(BasePermission):
    """The API schema and docs: everyone while ``settings.API_DOCS_PUBLIC`` is on (read at each
    request; off in production by default), signed-in users otherwise."""

    message = "Sign in to read the API schema and docs."

    def has_permission(self, request, view) -> bool:
        return bool(settings.API_DOCS_PUBLIC or request.user.is_authenticated)
