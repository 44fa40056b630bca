"""Settings shared by every environment, read from the environment (12-factor).

With nothing set, the project runs *embedded*: a SQLite file, Celery tasks executed in-process
and media in a local folder, so that ``make run`` needs no services. Setting ``DATABASE_URL`` and
``REDIS_URL`` switches to PostgreSQL and a real Celery broker.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

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
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "csp",
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
    "marketplace.csp_header.CachedPolicyCSPMiddleware",  # django-csp, its header built once
    # Last, so its process_exception sees a view's exception first (a dropped database: 503).
    "marketplace.unavailable.DatabaseUnavailableMiddleware",
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
if EMBEDDED:
    # SQLite lets one writer in at a time. Without these, a request that read and then wrote
    # inside a transaction (a webhook while a worker's page saves) failed at once with "database
    # is locked" (a 500): a deferred transaction cannot wait to upgrade its read lock. Here every
    # transaction takes the write lock when it begins (IMMEDIATE) and waits up to
    # SQLITE_BUSY_TIMEOUT seconds for it; WAL lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.float("SQLITE_BUSY_TIMEOUT", default=20.0),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

AUTH_USER_MODEL = "marketplace.User"
# Django's ModelBackend behind the failed-login lockout (marketplace/login_guard.py): the page,
# the API token endpoint and the admin login all check passwords through it.
AUTHENTICATION_BACKENDS = ["marketplace.login_guard.LockoutModelBackend"]
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
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Media: local disk by default; an S3-compatible store when MEDIA_S3_BUCKET is set.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_S3_BUCKET = env("MEDIA_S3_BUCKET", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Production serves hashed file names from the manifest that collectstatic writes; the image's
# build step (which cannot use the production settings: no secrets at build time) asks for the
# same storage with STATIC_MANIFEST=true, or production's {% static %} finds no manifest.
if env.bool("STATIC_MANIFEST", default=False):
    STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
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
# Files in one upload request: a request longer than this many videos at the limit is refused
# before its body is read; within it, an oversized file is named and the others are added.
VIDEO_UPLOAD_MAX_FILES = env.int("VIDEO_UPLOAD_MAX_FILES", default=20)
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
# A video longer than 1.5 parts is cut at keyframes into parts of about this many seconds, each
# decoded by its own Celery task (in parallel across workers), then joined; at most this many.
VIDEO_INGEST_PART_SECONDS = env.float("VIDEO_INGEST_PART_SECONDS", default=120.0)
VIDEO_INGEST_MAX_PARTS = env.int("VIDEO_INGEST_MAX_PARTS", default=32)
# Decoder threads of one part (0: FFmpeg's choice): 1 keeps each worker on one core, so parts on
# N workers use N cores; a single long video on one big worker may prefer 0.
VIDEO_INGEST_PART_THREADS = env.int("VIDEO_INGEST_PART_THREADS", default=1)

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
    # JSON and form bodies bounded in size, nesting and text (multipart uploads have their own).
    "DEFAULT_PARSER_CLASSES": [
        "marketplace.api.parsers.BoundedJSONParser",
        "marketplace.api.parsers.BoundedFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "marketplace.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "marketplace.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "marketplace.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_BODY_MAX_BYTES = env.int("API_BODY_MAX_BYTES", default=25 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Crowdlabel API",
    "DESCRIPTION": "Marketplace for crowdsourced video annotation: requesters, workers, admins.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # An assignment's, a job's and a fraud flag's status appear in several components: one enum
    # each, named for what it is.
    "ENUM_NAME_OVERRIDES": {
        "AssignmentStatusEnum": "tasks.models.AssignmentStatus",
        "JobStatusEnum": "marketplace.models.JobStatus",
        "FraudFlagStatusEnum": "quality.models.FlagStatus",
    },
    # Swagger UI's files come from drf-spectacular-sidecar (works offline, under the CSP).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Anonymous visitors see the schema and the docs only while API_DOCS_PUBLIC is on (read at
    # each request by marketplace.api.permissions.ApiDocsAccess).
    "SERVE_PERMISSIONS": ["marketplace.api.permissions.ApiDocsAccess"],
}
# Open in development, closed to anonymous users in production (production.py).
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=True)

# --- Abuse limits (marketplace/ratelimit.py, marketplace/login_guard.py), on the cache below.
# "<n>/<period>" per client IP for the anonymous sign-in and sign-up endpoints (page and API
# share one count), per user for claim and submit; "off" disables one.
THROTTLE_RATES = {
    "login": env("THROTTLE_LOGIN_RATE", default="10/min"),
    "signup": env("THROTTLE_SIGNUP_RATE", default="10/hour"),
    "claim": env("THROTTLE_CLAIM_RATE", default="120/min"),
    "submit": env("THROTTLE_SUBMIT_RATE", default="120/min"),
    # Asking Stripe whether a Checkout payment went through (the funding page on return, and its
    # API): each check is a Stripe request, so a requester may ask this often, pages and API
    # together.
    "funding_check": env("THROTTLE_FUNDING_CHECK_RATE", default="10/min"),
    # Tracker proposals (POST /api/work/assignments/<id>/propagate/): each decodes and tracks up
    # to TRACKER_LATENCY_BUDGET_SECONDS of CPU, so a worker may ask this often.
    "propagate": env("THROTTLE_PROPAGATE_RATE", default="30/min"),
    # Changing a job's proposal sources queues model calls for every microtask of the job.
    "proposal_config": env("THROTTLE_PROPOSAL_CONFIG_RATE", default="20/min"),
}
# Failed sign-ins within a window lock the account (or the IP) for a while.
LOGIN_FAILURE_LIMIT_ACCOUNT = env.int("LOGIN_FAILURE_LIMIT_ACCOUNT", default=5)
LOGIN_FAILURE_LIMIT_IP = env.int("LOGIN_FAILURE_LIMIT_IP", default=20)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=15 * 60)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)
# Reverse proxies in front of the app that append to X-Forwarded-For (0: use REMOTE_ADDR). Set
# it behind a load balancer, or every client shares the proxy's address and its limits.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES

# --- Celery: a Redis broker when REDIS_URL is set; tasks run in-process otherwise (embedded).
REDIS_URL = env("REDIS_URL", default="")

# --- Cache: Redis when REDIS_URL (or CACHE_URL) is set, so every web process shares the rate
# limits and lockouts; process memory in the embedded mode (one process). The key prefix keeps
# the cache's keys apart from Celery's when they share a database; cache.clear() would still
# flush the whole database, so point CACHE_URL at a database of its own before ever calling it.
CACHE_URL = env("CACHE_URL", default=REDIS_URL)
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="crowdlabel"),
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
# kombu's Redis transport, with a channel reusing its Redis client for each message it publishes
# instead of building one per message (marketplace/kombu_redis.py explains; bench/claim).
if CELERY_BROKER_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "marketplace.kombu_redis:Transport"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task's message is acknowledged after the task (acks_late). A worker that loses a pool child
# (OOM killer) gives the message back at once (reject_on_worker_lost). A worker that dies whole
# (SIGKILL of the main process, the machine lost) acknowledges nothing: Redis gives its
# messages to another worker only once they have been unacknowledged for the visibility
# timeout, so that is how long such work waits. A shorter timeout recovers sooner, but a task
# still running when it expires would be delivered again and run twice at once: hence the hard
# time limit is kept below it (the worker kills the task first). Trade-off in README.md
# ("Operations").
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 60 * 60)
CELERY_TASK_TIME_LIMIT = env.int(
    "CELERY_TASK_TIME_LIMIT", default=min(60 * 60, CELERY_VISIBILITY_TIMEOUT * 3 // 4)
)
CELERY_TASK_SOFT_TIME_LIMIT = env.int(
    "CELERY_TASK_SOFT_TIME_LIMIT", default=CELERY_TASK_TIME_LIMIT * 11 // 12
)
if not 0 < CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        "Celery limits must grow: CELERY_TASK_SOFT_TIME_LIMIT "
        f"({CELERY_TASK_SOFT_TIME_LIMIT}) < CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT}) "
        f"< CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}); a task outliving the "
        "visibility timeout is delivered again while it runs."
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # How often each worker looks for messages a dead worker left unacknowledged (one Redis
    # query); kombu's default looks every 100 s. A tenth of the timeout, at most once a minute.
    "unacked_restore_interval": max(1, min(60, CELERY_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": 1,
}
CELERY_TIMEZONE = TIME_ZONE
# Queues: payments' tasks (payout runs, transfers, Stripe events, refunds) have one of their own,
# so they never wait behind a backlog of scoring (bench/load: a payout run queued behind 687
# scoring tasks). A worker started without ``-Q`` consumes every queue listed here (development,
# ``make run``'s embedded mode needs none, the test suite); docker-compose.yml runs a worker for
# each (``-Q celery`` and ``-Q payments``), so money moves however long the other queue is.
CELERY_TASK_DEFAULT_QUEUE = "celery"
PAYMENTS_QUEUE = "payments"
CELERY_TASK_QUEUES = (
    Queue(CELERY_TASK_DEFAULT_QUEUE, routing_key=CELERY_TASK_DEFAULT_QUEUE),
    Queue(PAYMENTS_QUEUE, routing_key=PAYMENTS_QUEUE),
)
CELERY_TASK_ROUTES = {"payments.*": {"queue": PAYMENTS_QUEUE, "routing_key": PAYMENTS_QUEUE}}
# The retry convention of every task (marketplace/tasks_base.py): transient errors are retried
# with exponential backoff and jitter, at most this many times, waiting at most this long.
TASK_MAX_RETRIES = env.int("TASK_MAX_RETRIES", default=6)
TASK_RETRY_BACKOFF_MAX = env.int("TASK_RETRY_BACKOFF_MAX", default=300)
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
    # A suspension whose extra replicas were never added (a crash after its commit) gets them;
    # a raised replica target whose fill message was lost gets its slot or goes to review.
    "add-owed-replicas": {"task": "quality.add_owed_replicas", "schedule": 5 * 60.0},
    "fill-starved-slots": {"task": "tasks.fill_starved_slots", "schedule": 5 * 60.0},
    # Track videos whose flagged-seam count is missing (older installs) or stale get it stored.
    "sweep-video-seams": {"task": "quality.sweep_video_seams", "schedule": 10 * 60.0},
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
# No defaults: a value written here would be public, and anyone could sign webhooks with it.
# ``local`` fills missing ones from per-install random values (``stripe_secrets.py``),
# ``production`` refuses to start without real ones, and an empty webhook secret verifies nothing.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_CONNECT_WEBHOOK_SECRET = env("STRIPE_CONNECT_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_PROXY = env("STRIPE_PROXY", default="")  # an HTTP(S) proxy for Stripe calls, if any
# Pacing under Stripe's limit of 25 requests/s per endpoint, with a margin for network jitter
# (payments.stripe_gateway); a 429 is re-sent after Retry-After (at most this many seconds).
STRIPE_REQUESTS_PER_SECOND = env.float("STRIPE_REQUESTS_PER_SECOND", default=20.0)
STRIPE_RATE_LIMIT_RETRIES = env.int("STRIPE_RATE_LIMIT_RETRIES", default=3)
STRIPE_RETRY_AFTER_MAX = env.float("STRIPE_RETRY_AFTER_MAX", default=30.0)

# --- Proposals from a requester's own model (tasks.ml_backend, the Label Studio ML backend
# protocol). The platform calls a URL a requester typed, so it could be aimed at anything our
# servers can reach (SSRF): only hosts listed here may be called, by exact name or address
# (any port) or as ``host:port`` (that port only).
# Empty (the default, and production's unless the operator lists their model servers) refuses
# every backend URL; ``local`` allows the loopback ml_local server, tests set what they start.
ML_BACKEND_ALLOWED_HOSTS = env.list("ML_BACKEND_ALLOWED_HOSTS", default=[])
ML_BACKEND_TIMEOUT_SECONDS = env.float("ML_BACKEND_TIMEOUT_SECONDS", default=10.0)
ML_BACKEND_MAX_RESPONSE_BYTES = env.int("ML_BACKEND_MAX_RESPONSE_BYTES", default=2_000_000)
# Frames sent per microtask (evenly spread over its frames); proposals computed per Celery run.
PROPOSAL_MAX_FRAMES = env.int("PROPOSAL_MAX_FRAMES", default=30)
PROPOSAL_BATCH_SIZE = env.int("PROPOSAL_BATCH_SIZE", default=20)

# --- Marketplace policy defaults
PLATFORM_CURRENCY = env("PLATFORM_CURRENCY", default="usd")
# Bounds of what requesters may write (marketplace/bounds.py reads these; the database's check
# constraints hold the hard limits they may only narrow). A job's currency is one of
# SUPPORTED_CURRENCIES, fixed at creation; pricing is written in the active pricing policy's
# currency, so list a currency only with a pricing policy for it (the default: the platform's).
SUPPORTED_CURRENCIES = env.list("SUPPORTED_CURRENCIES", default=[PLATFORM_CURRENCY])
MONEY_AMOUNT_MAX = env.int("MONEY_AMOUNT_MAX", default=100_000_000_000)  # minor units, <= int64
JOB_PRIORITY_MAX_REQUESTER = env.int("JOB_PRIORITY_MAX_REQUESTER", default=10)
JOB_PRIORITY_MAX_ADMIN = env.int("JOB_PRIORITY_MAX_ADMIN", default=100)
CLAIM_TIME_LIMIT_MAX = timedelta(minutes=env.int("CLAIM_TIME_LIMIT_MAX_MINUTES", default=8 * 60))
AUTO_APPROVE_DELAY_MAX = timedelta(days=env.int("AUTO_APPROVE_DELAY_MAX_DAYS", default=30))
JOB_DEADLINE_MAX_DAYS = env.int("JOB_DEADLINE_MAX_DAYS", default=2 * 365)
DEFAULT_AUTO_APPROVE_DELAY = timedelta(days=3)
EARNINGS_HOLD_PERIOD = timedelta(days=env.int("EARNINGS_HOLD_DAYS", default=3))
PAYOUT_MINIMUM = env.int("PAYOUT_MINIMUM", default=500)  # minor units
# How long the signed state on a Connect onboarding link's return URL stays valid (API clients
# come back from Stripe in a browser without our session; payments.connect).
CONNECT_STATE_MAX_AGE_SECONDS = env.int("CONNECT_STATE_MAX_AGE_SECONDS", default=24 * 3600)
# Threads creating a payout batch's transfers concurrently (HTTP only; Stripe's latency, not
# our CPU, bounds a run against the real API). 1 = one after another.
PAYOUT_SUBMIT_THREADS = env.int("PAYOUT_SUBMIT_THREADS", default=4)
# Claims: a heartbeat extends a claim by the job's time limit, up to this many time limits in all.
CLAIM_MAX_LEASE_FACTOR = env.float("CLAIM_MAX_LEASE_FACTOR", default=3.0)
# Live claims a worker may hold at once (0: no cap; only for benchmarks that never submit).
CLAIM_MAX_CONCURRENT = env.int("CLAIM_MAX_CONCURRENT", default=3)
# Reported active time beyond what can be credited by more than this is a fraud signal (seconds).
WORKTIME_REPORT_TOLERANCE_SECONDS = env.float("WORKTIME_REPORT_TOLERANCE_SECONDS", default=30.0)
# A quality suspension from a type: the cooldown before the test may be retaken (0: until an
# admin lifts it), and from which suspension of the type on only an admin lifts it (0: never).
QUALIFICATION_SUSPENSION_COOLDOWN_DAYS = env.float(
    "QUALIFICATION_SUSPENSION_COOLDOWN_DAYS", default=14.0
)
QUALIFICATION_SUSPENSION_ADMIN_AFTER = env.int("QUALIFICATION_SUSPENSION_ADMIN_AFTER", default=2)
# Qualification tests (until quality's gold scoring replaces the IoU rule).
QUALIFICATION_IOU_THRESHOLD = env.float("QUALIFICATION_IOU_THRESHOLD", default=0.5)
QUALIFICATION_PASS_SCORE = env.float("QUALIFICATION_PASS_SCORE", default=0.7)
QUALIFICATION_MAX_ATTEMPTS = env.int("QUALIFICATION_MAX_ATTEMPTS", default=3)
# `migrate` seeds the qualification test of every type (tasks.qualification_bank), idempotently.
QUALIFICATION_SEED_ON_MIGRATE = env.bool("QUALIFICATION_SEED_ON_MIGRATE", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Content Security Policy (django-csp), in every environment: nothing but our own origin;
# no inline script or style (pages load static/js files and embed data with json_script), no
# framing. form-action is left open: "Set up payouts" posts to us and is redirected to Stripe's
# onboarding, which a form-action of 'self' would block. Media in an S3 bucket (review overlays
# show frames by their signed URLs) comes from CSP_MEDIA_ORIGINS, by default the bucket's origin.
_media_origins = env.list("CSP_MEDIA_ORIGINS", default=[])
if MEDIA_S3_BUCKET and not _media_origins:
    _endpoint = env("MEDIA_S3_ENDPOINT_URL", default="")
    _media_origins = [
        "/".join(_endpoint.split("/")[:3])
        if _endpoint
        else f"https://{MEDIA_S3_BUCKET}.s3.amazonaws.com"
    ]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *_media_origins],
        "media-src": ["'self'", "blob:", *_media_origins],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Static files are served by whitenoise under gunicorn; in development it finds them in place.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = env.bool("WHITENOISE_AUTOREFRESH", default=DEBUG)

if EMBEDDED:
    # SQLite cannot enforce NULLS NOT DISTINCT uniqueness (ledger accounts); PostgreSQL, which
    # production and the test suite use, does. The embedded demo runs without that backstop.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]

# --- Tracker proposals (tasks/propagating.py): the longest a propagation may track before it
# answers with what it has ("truncated"), and the most frames one request may span.
TRACKER_LATENCY_BUDGET_SECONDS = env.float("TRACKER_LATENCY_BUDGET_SECONDS", default=2.0)
TRACKER_MAX_FRAMES = env.int("TRACKER_MAX_FRAMES", default=600)
