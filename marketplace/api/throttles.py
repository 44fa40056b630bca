"""DRF throttles over ``marketplace.ratelimit``: one cache round trip per request, rates read from
``settings.THROTTLE_RATES`` at each request (so a deployment, the benchmark or a test changes
them without touching code). A refused request is DRF's ``Throttled``: status 429, a
``Retry-After`` header and the API's error shape (``marketplace.api.errors``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework.throttling import BaseThrottle

from marketplace import ratelimit

from .schema import ErrorSerializer

# The 429 of a throttled or locked-out route, for its extend_schema(responses=...).
THROTTLED = OpenApiResponse(
    ErrorSerializer,
    description="Too many requests: the error shape with code `throttled` and `retry_after` "
    "(seconds), and a `Retry-After` header",
)


class ScopeThrottle(BaseThrottle):
    """Counts requests per ``scope`` and caller; subclasses say who the caller is."""

    scope = ""
    _hit: ratelimit.Hit = ratelimit.ALLOWED

    def who(self, request) -> str:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self._hit = ratelimit.hit(self.scope, self.who(request))
        return self._hit.allowed

    def wait(self) -> float | None:
        return self._hit.retry_after or None


class PerIPThrottle(ScopeThrottle):
    """Anonymous endpoints: counted per client IP."""

    def who(self, request) -> str:
        return ratelimit.client_ip(request)


class PerUserThrottle(ScopeThrottle):
    """Signed-in work: counted per user (per IP for a request that has none)."""

    def who(self, request) -> str:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return ratelimit.user_ident(user.pk)
        return ratelimit.client_ip(request)


class LoginThrottle(PerIPThrottle):
    scope = "login"


class SignupThrottle(PerIPThrottle):
    scope = "signup"


class ClaimThrottle(PerUserThrottle):
    scope = "claim"


class SubmitThrottle(PerUserThrottle):
    scope = "submit"


class FundingCheckThrottle(PerUserThrottle):
    scope = "funding_check"


class PropagateThrottle(PerUserThrottle):
    scope = "propagate"


class ProposalConfigThrottle(PerUserThrottle):
    scope = "proposal_config"
