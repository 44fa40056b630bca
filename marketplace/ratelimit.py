"""Request rate limits on the Django cache: one counter per (scope, who, window), shared by every
web process when the cache is Redis (``CACHES`` in settings; in-process memory in the embedded
mode, where there is one process).

Read this before changing anything:

- **Fixed windows.** A hit increments ``rl:<scope>:<who>:<window index>``; the window index is
  ``now // period``, so a caller can make at most ``limit`` requests in one window (and at most
  ``2 x limit`` across a window boundary: the price of one counter instead of a log of
  timestamps). ``Retry-After`` is the time left in the window. Time comes from ``_now`` (the
  clock seam tests move).
- **One cache round trip per hit.** On Redis the ``INCR`` and its ``EXPIRE`` go in one pipeline:
  the claim -> submit loop (hundreds of pairs per second, ``bench/claim.py``) pays one loopback
  round trip per request for its throttle, nothing more. Rejected requests are counted too (a
  client that keeps hammering stays refused until the window ends).
- **Fail open.** If the cache does not answer, the request is allowed and the failure logged: an
  outage of the cache must not lock every worker out (the database's own checks still hold).
- **Who.** Per user for signed-in work (``claim``, ``submit``), per client IP for anonymous sign-in
  and sign-up. The IP is ``REMOTE_ADDR`` unless ``NUM_PROXIES`` says how many reverse proxies in
  front of the app append to ``X-Forwarded-For`` (the same rule as DRF's); IPv6 clients are
  counted per /64, the block one subscriber usually gets.

Rates live in ``settings.THROTTLE_RATES`` (``"<n>/<period>"``: ``10/min``, ``100/hour``,
``5/15min``, ``1000/s``; empty or ``off`` disables a scope), read at each request.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import re
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import checks
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

logger = logging.getLogger(__name__)

KEY_PREFIX = "rl"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])[a-z]*\s*$", re.IGNORECASE)


def _now() -> float:
    """The clock seam of this module (tests move time by patching it)."""
    return time.time()


@dataclass(frozen=True)
class Hit:
    """The outcome of one counted request."""

    allowed: bool
    count: int
    limit: int
    retry_after: int  # whole seconds until the window ends (0 when allowed)


ALLOWED = Hit(allowed=True, count=0, limit=0, retry_after=0)


@functools.lru_cache(maxsize=64)
def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"10/min"`` -> ``(10, 60)``; ``"5/15min"`` -> ``(5, 900)``; empty or ``off`` -> None."""
    if not rate or rate.strip().lower() in ("off", "none"):
        return None
    match = _RATE.match(rate)
    if match is None:
        raise ValueError(f"Not a rate: {rate!r} (write it as 10/min, 100/hour, 5/15min).")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _PERIODS[unit.lower()]


def check_rates(app_configs=None, **kwargs) -> list[checks.Error]:
    """System check: every rate in ``THROTTLE_RATES`` parses (a typo fails at start-up, not as
    a 500 on every request of its scope)."""
    errors = []
    for scope, rate in settings.THROTTLE_RATES.items():
        try:
            parse_rate(rate)
        except ValueError as exc:
            errors.append(checks.Error(f"THROTTLE_RATES[{scope!r}]: {exc}", id="marketplace.E001"))
    return errors


def client_ip(request: HttpRequest) -> str:
    """The client's address as the limits see it (see the module docstring)."""
    meta = request.META
    addr = meta.get("REMOTE_ADDR") or ""
    proxies = int(settings.NUM_PROXIES)
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies > 0 and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            addr = hops[-min(proxies, len(hops))]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def user_ident(user_id: int) -> str:
    """Who a signed-in user is to the limits (pages and API count them as one)."""
    return f"user:{user_id}"


def _redis_client(cache: RedisCache):
    """A client on the cache's own connection pool, made once per pool and then reused.

    Django's ``get_client`` builds a new ``redis.Redis`` on every call, and building one (its
    table of ~170 response callbacks) cost more CPU than the round trip it then makes; a client
    is only a handle on the pool (thread-safe: each command takes a connection from the pool), so
    one per pool serves every thread of the process.
    """
    backend = cache._cache
    pool = backend._get_connection_pool(True)
    client = getattr(backend, "_ratelimit_client", None)
    if client is None or client.connection_pool is not pool:
        client = backend._client(connection_pool=pool)
        backend._ratelimit_client = client
    return client


def counters_incr(keys: list[str], ttl: int) -> list[int]:
    """Increment each counter (creating it at 1) and let it expire ``ttl`` seconds from now.

    One round trip on Redis. Raises whatever the cache raises; callers decide to fail open.
    """
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        # Django's RedisCache offers incr() only on existing keys (an EXISTS and an INCR, two
        # round trips) and cannot set an expiry with it: talk to its client, with its key naming,
        # so the counters stay under the cache's KEY_PREFIX.
        full = [cache.make_and_validate_key(k) for k in keys]
        pipe = _redis_client(cache).pipeline(transaction=False)
        for k in full:
            pipe.incr(k)
            pipe.expire(k, ttl)
        return [int(v) for v in pipe.execute()[::2]]
    counts = []
    for k in keys:
        cache.add(k, 0, ttl)
        try:
            counts.append(cache.incr(k))
        except ValueError:  # expired between add and incr
            cache.set(k, 1, ttl)
            counts.append(1)
    return counts


def hit(scope: str, who: str) -> Hit:
    """Count one request of ``who`` in ``scope`` and say whether it is within the scope's rate."""
    parsed = parse_rate(settings.THROTTLE_RATES.get(scope))
    if parsed is None:
        return ALLOWED
    limit, period = parsed
    now = _now()
    window = int(now // period)
    try:
        (count,) = counters_incr([f"{KEY_PREFIX}:{scope}:{who}:{window}"], period + 1)
    except Exception:  # the cache is down: fail open (module docstring)
        logger.exception("rate limit %s not checked: the cache did not answer", scope)
        return ALLOWED
    if count <= limit:
        return Hit(allowed=True, count=count, limit=limit, retry_after=0)
    retry_after = max(1, math.ceil((window + 1) * period - now))
    return Hit(allowed=False, count=count, limit=limit, retry_after=retry_after)


# --- Pacing: spacing our own requests to another service -------------------------------------
# The limits above refuse requests others make to us; pacing spaces the requests we make to a
# service with a limit of its own (Stripe: 25 requests/s per endpoint), across every process of
# the install. It is a GCRA (a leaky bucket as a "theoretical arrival time"): each request takes
# the next free instant, ``1/rate`` after the previous one, and waits until then, so requests are
# evenly spaced and no second holds more than ``rate`` of them (bursts are not saved up). On Redis
# one script call per request, timed by Redis's own clock (one clock for all processes); without
# Redis, or if it does not answer, in-process state (a pace per process: fail open, as above).

_PACE_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(t, tat)
local next_free = start + tonumber(ARGV[1])
local ttl_ms = math.ceil((next_free - t) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', next_free), 'PX', ttl_ms)
return start - t
"""
_local_pace: dict[str, float] = {}
_local_pace_lock = threading.Lock()


def pace(key: str, per_second: float) -> float:
    """Reserve the next free instant for one request under ``key`` at ``per_second``; returns the
    seconds the caller must wait before sending it (0 when it may go now)."""
    if per_second <= 0:
        return 0.0
    interval_us = int(1_000_000 / per_second)
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        try:
            # Spaces and the like become "_": a cache key stays one word for every backend.
            full = cache.make_and_validate_key("pace:" + re.sub(r"[^\w:/{}.-]", "_", key))
            client = _redis_client(cache)
            return max(0, int(client.eval(_PACE_SCRIPT, 1, full, interval_us))) / 1_000_000
        except Exception:  # the cache is down: pace in this process only
            logger.exception("pace %s: the cache did not answer; pacing in-process", key)
    with _local_pace_lock:
        now = time.monotonic()
        start = max(now, _local_pace.get(key, 0.0))
        _local_pace[key] = start + interval_us / 1_000_000
    return start - now


def wait_phrase(seconds: int) -> str:
    """``42`` -> ``"42 seconds"``, ``900`` -> ``"15 minutes"``: for messages a person reads."""
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"
