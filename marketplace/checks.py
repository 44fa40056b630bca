"""System checks: the configured bounds must fit inside the hard limits the database enforces,
and the throttle rates must parse.

A policy setting wider than its hard limit would let a service accept a value the database then
refuses (a 500 instead of a clear error), so the project refuses to start instead.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.core.checks import Error, register

from . import bounds
from .ratelimit import check_rates

# Throttle rates must parse (a typo fails at start-up, not as a 500 on every request).
register()(check_rates)

_CURRENCY = re.compile(r"^[a-z]{3}$")


@register()
def bounds_fit_hard_limits(app_configs=None, **kwargs) -> list[Error]:
    errors: list[Error] = []

    def refuse(msg: str, id_: str) -> None:
        errors.append(Error(msg, id=f"marketplace.{id_}"))

    if not 0 < int(settings.MONEY_AMOUNT_MAX) <= bounds.INT64_MAX:
        refuse("MONEY_AMOUNT_MAX must be between 1 and 2**63 - 1 (a bigint column).", "E101")
    currencies = bounds.supported_currencies()
    if not currencies or any(not _CURRENCY.match(c) for c in currencies):
        refuse("SUPPORTED_CURRENCIES must list lower-case three-letter ISO 4217 codes.", "E102")
    for name in ("JOB_PRIORITY_MAX_REQUESTER", "JOB_PRIORITY_MAX_ADMIN"):
        if not 0 <= int(getattr(settings, name)) <= bounds.PRIORITY_LIMIT:
            refuse(f"{name} must be between 0 and {bounds.PRIORITY_LIMIT}.", "E103")
    if not (
        bounds.CLAIM_TIME_LIMIT_FLOOR
        <= settings.CLAIM_TIME_LIMIT_MAX
        <= bounds.CLAIM_TIME_LIMIT_CEILING
    ):
        refuse(
            f"CLAIM_TIME_LIMIT_MAX must be between {bounds.CLAIM_TIME_LIMIT_FLOOR} and "
            f"{bounds.CLAIM_TIME_LIMIT_CEILING}.",
            "E104",
        )
    if not timedelta(0) <= settings.AUTO_APPROVE_DELAY_MAX <= bounds.AUTO_APPROVE_DELAY_CEILING:
        refuse(
            f"AUTO_APPROVE_DELAY_MAX must be at most {bounds.AUTO_APPROVE_DELAY_CEILING}.", "E105"
        )
    if int(settings.JOB_DEADLINE_MAX_DAYS) < 1:
        refuse("JOB_DEADLINE_MAX_DAYS must be at least 1.", "E106")
    return errors
