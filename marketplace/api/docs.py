"""The API's Swagger UI, open to anonymous visitors only while ``settings.API_DOCS_PUBLIC`` is on
(``permissions.ApiDocsAccess``, drf-spectacular's ``SERVE_PERMISSIONS``, guards it and the schema).

The UI is drf-spectacular's "split" view: its start-up script is a separate response instead of
an inline ``<script>``, and its files come from drf-spectacular-sidecar, so the page works
offline and under the Content-Security-Policy (``script-src 'self'``).
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import exceptions


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI; an anonymous browser is sent to the login page instead of a JSON 401."""

    def handle_exception(self, exc):
        wants_page = self.request.GET.get("script") is None
        if wants_page and isinstance(exc, exceptions.NotAuthenticated):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
