"""Settings shared by every environment, read from the environment (12-factor).

With nothing set, the project runs *embedded*: a SQLite file, Celery tasks executed in-process
and media in a local folder, so that ``make run`` needs no services. Setting ``DATABASE_URL`` and
``REDIS_URL`` switches to PostgreSQL and a real Celery broker.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "marketplace",
    "tasks",
    "quality",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"
ASGI_APPLICATION = "marketplace.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL when DATABASE_URL is set, an embedded SQLite file otherwise.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMBEDDED = DATABASES["default"]["ENGINE"].endswith("sqlite3")

AUTH_USER_MODEL = "marketplace.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Media: local disk by default; an S3-compatible store when MEDIA_S3_BUCKET is set.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_S3_BUCKET = env("MEDIA_S3_BUCKET", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": env("MEDIA_S3_ENDPOINT_URL", default=None),
            "access_key": env("MEDIA_S3_ACCESS_KEY", default=None),
            "secret_key": env("MEDIA_S3_SECRET_KEY", default=None),
            "region_name": env("MEDIA_S3_REGION", default="us-east-1"),
            "querystring_auth": env.bool("MEDIA_S3_SIGNED_URLS", default=True),
            "file_overwrite": False,
        },
    }
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to a temporary file
VIDEO_UPLOAD_MAX_BYTES = env.int("VIDEO_UPLOAD_MAX_BYTES", default=2 * 1024**3)
# Ingestion: the JPEGs shown to annotators fit in this box (aspect kept) at this quality; the
# features and the shot detector work on grey frames this wide; sides outside the limits are
# refused as absurd.
VIDEO_FRAME_MAX_WIDTH = env.int("VIDEO_FRAME_MAX_WIDTH", default=1280)
VIDEO_FRAME_MAX_HEIGHT = env.int("VIDEO_FRAME_MAX_HEIGHT", default=720)
VIDEO_FRAME_JPEG_QUALITY = env.int("VIDEO_FRAME_JPEG_QUALITY", default=85)
VIDEO_ANALYSIS_WIDTH = env.int("VIDEO_ANALYSIS_WIDTH", default=96)
VIDEO_MIN_SIDE = env.int("VIDEO_MIN_SIDE", default=16)
VIDEO_MAX_SIDE = env.int("VIDEO_MAX_SIDE", default=7680)
VIDEO_MAX_DURATION_SECONDS = env.int("VIDEO_MAX_DURATION_SECONDS", default=6 * 3600)
# A video still "processing" with no progress for this long is re-queued (its worker died).
VIDEO_INGEST_STALL_SECONDS = env.int("VIDEO_INGEST_STALL_SECONDS", default=15 * 60)

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "marketplace.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "marketplace.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "marketplace.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Crowdlabel API",
    "DESCRIPTION": "Marketplace for crowdsourced video annotation: requesters, workers, admins.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery: a Redis broker when REDIS_URL is set; tasks run in-process otherwise (embedded).
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=55 * 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TIMEZONE = TIME_ZONE
# Periodic work, by task name; each feature registers its own entries (claim expiry, auto-approval,
# payout runs, reconciliation). A test checks every entry names a registered task.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "requeue-stalled-ingestions": {
        "task": "tasks.requeue_stalled_ingestions",
        "schedule": timedelta(minutes=5),
    },
    "expire-overdue-claims": {"task": "tasks.expire_overdue_claims", "schedule": 60.0},
    "auto-approve-due-submissions": {
        "task": "tasks.auto_approve_due_submissions",
        "schedule": 15 * 60.0,
    },
    "aggregate-classes": {"task": "quality.aggregate_classes", "schedule": 10 * 60.0},
    "process-straggler-submissions": {"task": "quality.process_stragglers", "schedule": 60.0},
    # payments: the daily payout run, recovery of interrupted payouts, reconciliation with
    # Stripe, and earnings leaving the hold period.
    "payments-payout-run": {"task": "payments.payout_run", "schedule": timedelta(days=1)},
    "payments-payouts-resume": {
        "task": "payments.payouts_resume",
        "schedule": timedelta(minutes=5),
    },
    "payments-payouts-reconcile": {
        "task": "payments.payouts_reconcile",
        "schedule": timedelta(minutes=15),
    },
    "payments-earnings-release": {
        "task": "payments.earnings_release",
        "schedule": timedelta(hours=1),
    },
}

# --- Stripe: the SDK talks to STRIPE_API_BASE (the real API, or the local test server).
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="sk_test_local")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="pk_test_local")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="whsec_local")
STRIPE_CONNECT_WEBHOOK_SECRET = env("STRIPE_CONNECT_WEBHOOK_SECRET", default="whsec_local_connect")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_PROXY = env("STRIPE_PROXY", default="")  # an HTTP(S) proxy for Stripe calls, if any

# --- Marketplace policy defaults
PLATFORM_CURRENCY = env("PLATFORM_CURRENCY", default="usd")
DEFAULT_AUTO_APPROVE_DELAY = timedelta(days=3)
EARNINGS_HOLD_PERIOD = timedelta(days=env.int("EARNINGS_HOLD_DAYS", default=3))
PAYOUT_MINIMUM = env.int("PAYOUT_MINIMUM", default=500)  # minor units
# Threads creating a payout batch's transfers concurrently (HTTP only; Stripe's latency, not
# our CPU, bounds a run against the real API). 1 = one after another.
PAYOUT_SUBMIT_THREADS = env.int("PAYOUT_SUBMIT_THREADS", default=4)
# Claims: a heartbeat extends a claim by the job's time limit, up to this many time limits in all.
CLAIM_MAX_LEASE_FACTOR = env.float("CLAIM_MAX_LEASE_FACTOR", default=3.0)
# Qualification tests (until quality's gold scoring replaces the IoU rule).
QUALIFICATION_IOU_THRESHOLD = env.float("QUALIFICATION_IOU_THRESHOLD", default=0.5)
QUALIFICATION_PASS_SCORE = env.float("QUALIFICATION_PASS_SCORE", default=0.7)
QUALIFICATION_MAX_ATTEMPTS = env.int("QUALIFICATION_MAX_ATTEMPTS", default=3)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Static files are served by whitenoise under gunicorn; in development it finds them in place.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = env.bool("WHITENOISE_AUTOREFRESH", default=DEBUG)

if EMBEDDED:
    # SQLite cannot enforce NULLS NOT DISTINCT uniqueness (ledger accounts); PostgreSQL, which
    # production and the test suite use, does. The embedded demo runs without that backstop.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
