"""Development settings: DEBUG on; embedded services unless DATABASE_URL / REDIS_URL are set."""

from .base import *
from .base import env

DEBUG = env.bool("DEBUG", default=True)
WHITENOISE_AUTOREFRESH = env.bool("WHITENOISE_AUTOREFRESH", default=True)
