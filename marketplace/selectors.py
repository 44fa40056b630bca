"""Reads of the marketplace domain, always scoped to who is asking."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Job, User


def jobs_visible_to(user: User) -> QuerySet[Job]:
    """Jobs ``user`` may see as their owner: their own as a requester, all as an admin."""
    if not user.is_authenticated:
        return Job.objects.none()
    if user.is_platform_admin:
        return Job.objects.all()
    if user.is_requester:
        return Job.objects.filter(requester=user)
    return Job.objects.none()
