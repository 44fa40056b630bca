"""Which mode the process runs in: the one place that says so.

Two choices made by configuration switch code paths, and code asks this module rather than
guessing on its own:

- ``native_sql()``: the database is PostgreSQL, so the claim path runs ``tasks/claiming.sql``'s
  prepared statements; otherwise (the embedded SQLite of ``make run``) it runs their ORM twins in
  ``tasks.portable`` (``marketplace.sql.native`` asks here).
- ``eager_tasks()``: no broker is configured (``CELERY_TASK_ALWAYS_EAGER``, the default without
  ``REDIS_URL``), so Celery tasks run in-process, inside the request that queued them on commit,
  instead of on a worker.

``embedded()`` is the two together as ``settings.EMBEDDED`` defines it (SQLite database). The
mode is logged once at start-up (``marketplace.apps``) so an operator can see which one is on.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


def native_sql() -> bool:
    """Whether the database runs the project's hand-written SQL (PostgreSQL)."""
    return connection.vendor == "postgresql"


def embedded() -> bool:
    """The ``make run`` mode: an SQLite file, no services (``settings.EMBEDDED``)."""
    return bool(settings.EMBEDDED)


def eager_tasks() -> bool:
    """Whether Celery tasks run in-process instead of on a worker (no broker configured)."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER)


def describe() -> str:
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    sql = "native SQL" if db == "postgresql" else "portable ORM statements"
    tasks = "in-process (eager)" if eager_tasks() else "on a broker"
    mode = "embedded" if embedded() else "services"
    return f"mode={mode} database={db} ({sql}) celery tasks={tasks}"


def log_mode() -> None:
    """Log the mode once (called from ``MarketplaceConfig.ready``)."""
    logger.info("runtime: %s", describe())
