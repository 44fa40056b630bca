"""Test settings: the suite runs on the real PostgreSQL and Redis, never on SQLite."""

import os
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://root@127.0.0.1:5432/crowdlabel")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from .base import *
from .base import DATABASES, THROTTLE_RATES, env

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError(
        "The test suite runs on PostgreSQL only; DATABASE_URL points at "
        f"{DATABASES['default']['ENGINE']}. Unset it or point it at PostgreSQL."
    )

DEBUG = False
# The suite exercises a real Celery worker where it matters; elsewhere tasks run eagerly so a
# test sees their effect, still going through the same serialisation as the broker.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# Rates so high that no test is throttled by accident (each THROTTLE_<SCOPE>_RATE still wins,
# as bench/claim.py sets them); tests of the limits put the real ones back
# (marketplace.settings.base.THROTTLE_RATES). The login lockout keeps its real numbers.
THROTTLE_RATES = {
    scope: env(f"THROTTLE_{scope.upper()}_RATE", default="100000/min") for scope in THROTTLE_RATES
}
# The suite's database starts without qualification questions (tests seed what they need;
# tests/tasks/test_qualification_seeding.py turns it on to test a fresh install's migrate).
QUALIFICATION_SEED_ON_MIGRATE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", default="/tmp/crowdlabel-test-media"))
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = env.bool("WHITENOISE_AUTOREFRESH", default=True)
# The suite's own Stripe credentials, handed to the local Stripe server its fixtures start.
# Short on purpose and listed in ``stripe_secrets.SHIPPED``: production refuses them.
STRIPE_SECRET_KEY = "sk_test_suite"
STRIPE_PUBLISHABLE_KEY = "pk_test_suite"
STRIPE_WEBHOOK_SECRET = "whsec_suite"
STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_suite_connect"
# The local Stripe double has no rate limit unless a test gives it one, so Stripe calls are not
# paced here (the fault tests of Stripe's limit turn pacing on; production paces at 20/s).
STRIPE_REQUESTS_PER_SECOND = env.float("STRIPE_REQUESTS_PER_SECOND", default=0.0)
# The ml_local backends the suite starts listen on the loopback (tests/proposals).
ML_BACKEND_ALLOWED_HOSTS = ["127.0.0.1"]
ML_BACKEND_TIMEOUT_SECONDS = 2.0
