"""Lockout after repeated failed sign-ins, per account and per client IP, on the Django cache.

Every password check goes through ``LockoutModelBackend`` (``AUTHENTICATION_BACKENDS``): the
login page, the API token endpoint and the admin's login alike. Read this before changing it:

- **Counting.** A failed check counts once against the account (the username as typed, folded to
  lower case, known or not) and once against the client IP (``ratelimit.client_ip``), in fixed
  windows of ``LOGIN_FAILURE_WINDOW`` seconds. ``LOGIN_FAILURE_LIMIT_ACCOUNT`` failures on one
  account, or ``LOGIN_FAILURE_LIMIT_IP`` from one IP, lock that account, or that IP, for
  ``LOGIN_LOCKOUT_SECONDS``. While locked, the password is not even checked: the right one is
  refused too, so guessing during a lockout learns nothing.
- **Success resets** the account's count (not the IP's: an attacker who owns one account must not
  wipe the count of the IP they guess others' passwords from).
- **No enumeration.** An unknown username is counted, locked and answered exactly like a known one
  with a wrong password (Django's ``ModelBackend`` already spends the same hashing time on both).
- **Trade-off.** Anyone can lock an account for ``LOGIN_LOCKOUT_SECONDS`` by failing on purpose;
  the lock is short and the owner is told when to come back, which is the usual price of stopping
  online guessing (the per-IP lock and the ``login`` rate limit stop one source guessing many
  accounts). Usernames are hashed in the keys, so the cache holds no list of them.
- **Time** comes from ``ratelimit._now`` (one clock seam for limits and lockouts); a lock stores
  the moment it ends, so moving that clock ends it, whatever the cache's own expiry says.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from . import ratelimit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lockout:
    """Sign-in is locked until ``until`` (epoch seconds)."""

    until: float

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.until - ratelimit._now()))

    @property
    def message(self) -> str:
        at = datetime.fromtimestamp(self.until, tz=UTC).strftime("%H:%M UTC")
        return (
            "Too many failed sign-in attempts. Try again in "
            f"{ratelimit.wait_phrase(self.retry_after)} (after {at})."
        )


def _account(username: str) -> str:
    folded = username.strip().casefold()
    return hashlib.sha256(folded.encode()).hexdigest()[:32]


def _lock_keys(username: str, ip: str | None) -> list[str]:
    keys = [f"lock:acct:{_account(username)}"]
    if ip:
        keys.append(f"lock:ip:{ip}")
    return keys


def lockout_for(*, username: str, ip: str | None) -> Lockout | None:
    """The lockout in force for this account or this IP, if any (one cache round trip)."""
    try:
        found = caches["default"].get_many(_lock_keys(username, ip))
    except Exception:  # fail open, as the rate limits do
        logger.exception("sign-in lockout not checked: the cache did not answer")
        return None
    now = ratelimit._now()
    until = max((float(v) for v in found.values()), default=0.0)
    return Lockout(until=until) if until > now else None


def failure_record(*, username: str, ip: str | None) -> Lockout | None:
    """Count a failed sign-in; lock the account or the IP when it reaches its limit."""
    window = int(settings.LOGIN_FAILURE_WINDOW)
    now = ratelimit._now()
    index = int(now // window)
    account = _account(username)
    keys = [f"lf:acct:{account}:{index}"]
    limits = [int(settings.LOGIN_FAILURE_LIMIT_ACCOUNT)]
    locks = [f"lock:acct:{account}"]
    if ip:
        keys.append(f"lf:ip:{ip}:{index}")
        limits.append(int(settings.LOGIN_FAILURE_LIMIT_IP))
        locks.append(f"lock:ip:{ip}")
    try:
        counts = ratelimit.counters_incr(keys, window + 1)
        until = now + int(settings.LOGIN_LOCKOUT_SECONDS)
        reached = {
            lock: until
            for lock, count, limit in zip(locks, counts, limits, strict=True)
            if count >= limit
        }
        if reached:
            caches["default"].set_many(reached, int(settings.LOGIN_LOCKOUT_SECONDS) + 60)
            logger.warning("sign-in locked after repeated failures: %s", ", ".join(reached))
            return Lockout(until=until)
    except Exception:
        logger.exception("failed sign-in not counted: the cache did not answer")
    return None


def success_record(*, username: str) -> None:
    """A successful sign-in clears the account's failure count."""
    window = int(settings.LOGIN_FAILURE_WINDOW)
    index = int(ratelimit._now() // window)
    try:
        caches["default"].delete(f"lf:acct:{_account(username)}:{index}")
    except Exception:
        logger.exception("failure count not reset: the cache did not answer")


class LockoutModelBackend(ModelBackend):
    """Django's ``ModelBackend`` behind the lockout: refused while locked, failures counted."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs,
    ) -> AbstractBaseUser | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        ip = ratelimit.client_ip(request) if request is not None else None
        if lockout_for(username=username, ip=ip) is not None:
            # Stops Django's authenticate() at once: no other backend, no password check.
            raise PermissionDenied("locked out")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            failure_record(username=username, ip=ip)
        else:
            success_record(username=username)
        return user
