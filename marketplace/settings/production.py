"""Production settings: refuse to start on an unsafe configuration."""

from django.core.exceptions import ImproperlyConfigured

from . import stripe_secrets
from .base import *
from .base import DEBUG, EMBEDDED, SECRET_KEY, env

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG).")
if not SECRET_KEY or SECRET_KEY.startswith("insecure-") or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Set SECRET_KEY to a random value of at least 32 characters.")
if EMBEDDED:
    raise ImproperlyConfigured("Set DATABASE_URL to a PostgreSQL database in production.")
if not env("REDIS_URL", default=""):
    raise ImproperlyConfigured("Set REDIS_URL so Celery has a broker in production.")
# Invariant 8: never with missing or shipped Stripe credentials (a shipped webhook secret lets
# anyone sign a payment event). The values checked are the settings the app will use.
_stripe_problems = stripe_secrets.problems({name: globals()[name] for name in stripe_secrets.NAMES})
if _stripe_problems:
    raise ImproperlyConfigured(" ".join(_stripe_problems))

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- HTTP hardening (issue #10: abuse limits and HTTP hardening). Kept in one block, apart from
# the secret checks above. TLS ends at the proxy (SECURE_PROXY_SSL_HEADER): plain-HTTP requests
# are redirected to HTTPS unless SECURE_SSL_REDIRECT=false says the proxy already does it (or,
# as in docker-compose.yml, there is no TLS in front yet); health probes stay on plain HTTP.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS: browsers that saw the site over HTTPS keep to HTTPS for a year. Preloading is a promise
# that is slow to take back, so it is the operator's explicit choice.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The API schema and docs are for signed-in users unless the operator opens them.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=False)
# The Content-Security-Policy is base.py's, the same in every environment.
