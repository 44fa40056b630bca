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
