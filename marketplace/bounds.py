"""The range of every writable job field and of every amount of money, in one place.

The job service enforces these for pages and API alike (``marketplace.services``); the API
serializer states them in the OpenAPI schema and the page form in its inputs, both by calling the
functions below, so the three cannot drift apart. Settings are read when a function is called,
never at import, so a test (or a deployment) can change them.

Two kinds of limit live here:

- *hard limits* (module constants) that the database enforces with check constraints, so a row
  outside them cannot exist whatever code path wrote it; the settings may only narrow them
  (``marketplace.checks`` refuses to start otherwise);
- *policy limits* (settings) that say what the platform allows today: what priority a requester
  may give a job, the longest claim time limit, the largest amount of money, the currencies.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings

# PostgreSQL ``bigint``: every money column. A configured maximum above this could not be stored.
INT64_MAX = 2**63 - 1

# --- hard limits (check constraints in ``marketplace.models.Job``) ----------------------------
PRIORITY_LIMIT = 1_000
CLAIM_TIME_LIMIT_FLOOR = timedelta(minutes=1)
CLAIM_TIME_LIMIT_CEILING = timedelta(days=7)
AUTO_APPROVE_DELAY_CEILING = timedelta(days=365)

# --- fixed sizes of text and lists ------------------------------------------------------------
TITLE_MAX_LENGTH = 200  # the column's length
INSTRUCTIONS_MAX_LENGTH = 20_000
LABEL_CLASSES_MAX = 200
LABEL_CLASS_NAME_MAX_LENGTH = 100
REASON_MAX_LENGTH = 500  # review and rejection reasons a worker reads
IDS_PER_REQUEST_MAX = 1_000  # lists of ids in one request (bulk review, gold import)
ID_MAX = INT64_MAX  # primary keys are bigint


def money_amount_max() -> int:
    """The largest amount of money (minor units) any field or service accepts."""
    return min(int(settings.MONEY_AMOUNT_MAX), INT64_MAX)


def supported_currencies() -> tuple[str, ...]:
    """Currencies a job may be created in (lower-case ISO 4217 codes), in the setting's order.

    Pricing coefficients (the fair-pay floor, rates per frame) are written in one currency, the
    active pricing policy's; ``tasks.quoting.job_quote`` refuses a job in any other, so list a
    currency here only together with a pricing policy for it. The default is the platform
    currency alone.
    """
    return tuple(dict.fromkeys(c.strip().lower() for c in settings.SUPPORTED_CURRENCIES))


def priority_max(user: Any) -> int:
    """The highest job priority ``user`` may set: requesters get a small range, admins more."""
    if user is not None and getattr(user, "is_platform_admin", False):
        return min(int(settings.JOB_PRIORITY_MAX_ADMIN), PRIORITY_LIMIT)
    return min(int(settings.JOB_PRIORITY_MAX_REQUESTER), PRIORITY_LIMIT)


def claim_time_limit_range() -> tuple[timedelta, timedelta]:
    """The shortest and longest time a worker may be given to finish one claimed microtask."""
    ceiling = min(settings.CLAIM_TIME_LIMIT_MAX, CLAIM_TIME_LIMIT_CEILING)
    return CLAIM_TIME_LIMIT_FLOOR, ceiling


def auto_approve_delay_range() -> tuple[timedelta, timedelta]:
    """How long unreviewed work may wait before it approves itself."""
    return timedelta(0), min(settings.AUTO_APPROVE_DELAY_MAX, AUTO_APPROVE_DELAY_CEILING)


def deadline_horizon() -> timedelta:
    """How far in the future a job's deadline may be."""
    return timedelta(days=int(settings.JOB_DEADLINE_MAX_DAYS))


def is_whole_number(value: Any) -> bool:
    """An ``int`` that is not a ``bool`` (``True`` is an int to Python, not to a person)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real_number(value: Any) -> bool:
    """A finite int or float (NaN passes every ``<``/``>`` range check, so it is refused here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def money_amount_error(value: Any, *, minimum: int = 0) -> str | None:
    """Why ``value`` is not an acceptable amount of money (minor units), or ``None``."""
    if not is_whole_number(value):
        return "Amounts are whole minor units (cents)."
    top = money_amount_max()
    if value < minimum:
        return f"Ensure this value is greater than or equal to {minimum}."
    if value > top:
        return f"Ensure this value is less than or equal to {top}."
    return None
