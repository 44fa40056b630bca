"""Fixtures of the browser tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def stripe_local(live_server, settings):
    """The local Stripe server, the SDK of the live server pointed at it;
    ``tests.e2e.browser.webhooks_to_us(server, live_server)`` has it sign and deliver its events
    to the live server."""
    from stripe_local import LocalStripe

    server = LocalStripe(api_key=settings.STRIPE_SECRET_KEY).start()
    settings.STRIPE_API_BASE = server.api_base
    settings.STRIPE_TIMEOUT_SECONDS = 5.0
    try:
        yield server
    finally:
        server.stop()
