"""Development settings: DEBUG on; embedded services unless DATABASE_URL / REDIS_URL are set."""

from pathlib import Path

from . import stripe_secrets
from .base import *
from .base import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=True)
WHITENOISE_AUTOREFRESH = env.bool("WHITENOISE_AUTOREFRESH", default=True)

# Stripe credentials missing from the environment come from this install's own random values,
# generated on first start into a 0600 file that ``python -m stripe_local.server`` reads too.
LOCAL_SECRETS_FILE = Path(env("LOCAL_SECRETS_FILE", default=str(BASE_DIR / "var" / "secrets.json")))
if not all(env(name, default="") for name in stripe_secrets.NAMES):
    _local_stripe = stripe_secrets.load_or_create(LOCAL_SECRETS_FILE)
    STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="") or _local_stripe["STRIPE_SECRET_KEY"]
    STRIPE_PUBLISHABLE_KEY = (
        env("STRIPE_PUBLISHABLE_KEY", default="") or _local_stripe["STRIPE_PUBLISHABLE_KEY"]
    )
    STRIPE_WEBHOOK_SECRET = (
        env("STRIPE_WEBHOOK_SECRET", default="") or _local_stripe["STRIPE_WEBHOOK_SECRET"]
    )
    STRIPE_CONNECT_WEBHOOK_SECRET = (
        env("STRIPE_CONNECT_WEBHOOK_SECRET", default="")
        or _local_stripe["STRIPE_CONNECT_WEBHOOK_SECRET"]
    )
    # This install's own credentials only work with the local Stripe server (``make run`` starts
    # it on this port, its webhooks pointing here); real Stripe keys come with their own base.
    STRIPE_API_BASE = env(
        "STRIPE_API_BASE", default=f"http://127.0.0.1:{env.int('STRIPE_LOCAL_PORT', default=12111)}"
    )

# The local model backend ``make run`` starts (ml_local, on ML_LOCAL_PORT) may be called, on
# that port only (not the database's or Redis's on the same host).
_ml_port = env.int("ML_LOCAL_PORT", default=9090)
ML_BACKEND_ALLOWED_HOSTS = env.list(
    "ML_BACKEND_ALLOWED_HOSTS", default=[f"127.0.0.1:{_ml_port}", f"localhost:{_ml_port}"]
)
