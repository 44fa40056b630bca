"""Authentication for the hot worker endpoints."""

from __future__ import annotations

import threading
import time

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with a short in-process cache of ``key -> (user, token)``.

    A worker's claim -> submit loop authenticates twice per microtask; looking the token up each
    time was a tenth of the database round trips of the loop. A deleted token keeps working for
    at most ``TTL`` seconds in a process that saw it; suspension does not depend on this (the
    claim statement reads it from the database).
    """

    TTL = 10.0
    MAX_ENTRIES = 50_000
    _cache: dict[str, tuple[float, object, object]] = {}
    _lock = threading.Lock()

    def authenticate_credentials(self, key):
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        with self._lock:
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now + self.TTL, user, token)
        return user, token


class CachedTokenScheme(OpenApiAuthenticationExtension):
    """The same ``Authorization: Token <key>`` scheme in the OpenAPI schema, under its own name
    (drf-spectacular refuses two classes under one component name)."""

    target_class = "tasks.api.auth.CachedTokenAuthentication"
    name = "workerTokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Token-based authentication with required prefix "Token"',
        }
