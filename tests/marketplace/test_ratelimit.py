"""The pieces of the rate limits a deployment configures: rates, the client's address, the
start-up check."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from marketplace import ratelimit


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("10/min", (10, 60)),
        ("100/hour", (100, 3600)),
        ("5/15min", (5, 900)),
        ("1000/s", (1000, 1)),
        ("3 / 2d", (3, 172800)),
        ("off", None),
        ("", None),
    ],
)
def test_rates_parse(rate, parsed):
    assert ratelimit.parse_rate(rate) == parsed


def test_a_misspelt_rate_fails_the_system_check(settings):
    settings.THROTTLE_RATES = {"login": "10/min", "claim": "ten per minute"}
    errors = ratelimit.check_rates()
    assert [e.id for e in errors] == ["marketplace.E001"]
    assert "claim" in errors[0].msg


@pytest.mark.parametrize(
    ("proxies", "meta", "ip"),
    [
        (0, {"REMOTE_ADDR": "198.51.100.7", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, "198.51.100.7"),
        (
            1,
            {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.7"},
            "198.51.100.7",
        ),
        (
            2,
            {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.7, 10.0.0.9"},
            "198.51.100.7",
        ),
        (0, {"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}, "2001:db8:1:2::/64"),
        (0, {"REMOTE_ADDR": "::ffff:198.51.100.7"}, "198.51.100.7"),
    ],
)
def test_the_client_ip_trusts_only_the_configured_proxies(settings, proxies, meta, ip):
    """A client cannot pick its own address with X-Forwarded-For unless a proxy we trust wrote
    it; an IPv6 subscriber's /64 is one client."""
    settings.NUM_PROXIES = proxies
    assert ratelimit.client_ip(RequestFactory().get("/", **meta)) == ip


def test_counters_reuse_one_redis_client_per_pool(monkeypatch):
    """The hot path's counters make their Redis client once per connection pool, not on every
    hit (building one cost more CPU than the round trip), and still count on Redis."""
    from uuid import uuid4

    from django.core.cache import caches

    backend = caches["default"]._cache
    real, made = backend._client, []
    monkeypatch.setattr(backend, "_client", lambda **kw: made.append(kw) or real(**kw))
    key = f"test-reuse-{uuid4().hex}"
    assert ratelimit.counters_incr([key], 60) == [1]
    assert ratelimit.counters_incr([key], 60) == [2]
    assert ratelimit.counters_incr([key, key + "b"], 60) == [3, 1]
    assert len(made) <= 1
