"""The staff dashboards in a real browser: an admin logs in, lands on /staff/, opens the money
dashboard from its tab, and every chart on both pages has drawn data — counted from a screenshot
of each chart (pixels of the data colours inside its plot area), not read from the markup. The
platform is seeded through the real services (tests/staff/seed.py), with a payout made through
the local Stripe server; quality history spans several days, so the lines are lines."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import numpy as np
import pytest
from django.db import connections
from django.utils import timezone
from PIL import Image

from marketplace import charts
from payments import connect, payouts
from payments.funding import earnings_release_due
from quality.models import ConsensusResult, GoldResult
from tests.e2e.browser import ARGS, CHROMIUM, login
from tests.factories import AdminFactory
from tests.payments.conftest import stripe_server
from tests.staff.seed import seed_dashboards

__all__ = ["stripe_server"]  # the fixture, imported for this module

QUALITY_CHARTS = ("chart-trust", "chart-quality")
MONEY_CHARTS = ("chart-balances-usd", "chart-revenue-usd", "chart-payouts")
DATA = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in charts.COLOURS])


def data_pixels(png: bytes) -> int:
    """Pixels of a data colour (bars, lines, points) inside the chart's plot area (the title and
    the legend above it, the axis labels around it, left out)."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    h, w, _ = image.shape
    plot = image[
        round(h * charts.TOP / charts.HEIGHT) : round(
            h * (charts.HEIGHT - charts.BOTTOM) / charts.HEIGHT
        ),
        round(w * charts.LEFT / charts.WIDTH) : round(
            w * (charts.WIDTH - charts.RIGHT) / charts.WIDTH
        ),
    ]
    distance = np.abs(plot[:, :, None, :] - DATA[None, None, :, :]).sum(axis=3)
    return int((distance.min(axis=2) < 40).sum())


def spread_over_days(model, days: int = 3) -> None:
    """History: move the quality results' creation back over the last ``days`` days (these rows
    are not the ledger's; the ledger is append-only and keeps its real times)."""
    now = timezone.now()
    for i, pk in enumerate(model.objects.order_by("pk").values_list("pk", flat=True)):
        model.objects.filter(pk=pk).update(created_at=now - timedelta(days=i % days))


def seed(monkeypatch, stripe_server, settings):
    seeded = seed_dashboards(monkeypatch)
    spread_over_days(GoldResult)
    spread_over_days(ConsensusResult)
    # A worker's approved earnings leave the hold period and are paid out to Stripe.
    earnings_release_due(now=timezone.now() + timedelta(days=365))
    worker = seeded.crowd[1]
    account = connect.connected_account_ensure(worker=worker)
    stripe_server.complete_onboarding(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    settings.PAYOUT_MINIMUM = 1
    run = payouts.payout_run_start(note="e2e")  # submits on commit, to the local Stripe
    assert run.payouts_created == 1 and len(stripe_server.state.transfers) == 1


def chart_pixels(page, base_url: str) -> dict[str, int]:
    """Data pixels of every chart: the quality dashboard, then the money one through its tab."""
    page.goto(f"{base_url}/staff/")
    counts = {c: data_pixels(page.locator(f"#{c}").screenshot()) for c in QUALITY_CHARTS}
    page.click("nav.tabs >> text=Money")
    page.wait_for_url("**/staff/money/")
    counts |= {c: data_pixels(page.locator(f"#{c}").screenshot()) for c in MONEY_CHARTS}
    return counts


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_chart_of_both_dashboards_draws_its_data(
    live_server, monkeypatch, stripe_server, settings
):
    from playwright.sync_api import sync_playwright

    admin = AdminFactory(username="e2e-admin")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, admin.username)
        assert page.url == f"{live_server.url}/staff/"  # the staff land on their dashboard
        # Nothing happened yet: every chart is an empty frame, and the count says so.
        empty = chart_pixels(page, live_server.url)
        assert empty == dict.fromkeys([*QUALITY_CHARTS, *MONEY_CHARTS], 0)

        seed(monkeypatch, stripe_server, settings)  # while the browser waits
        # The ORM under Playwright's event loop opened a connection of its own: close it, or
        # it holds the test database open at teardown.
        connections.close_all()
        counts = chart_pixels(page, live_server.url)
        # The charts carry their own words for screen readers.
        page.goto(f"{live_server.url}/staff/")
        assert "Worker trust" in page.locator("#chart-trust title").first.text_content()
        browser.close()
    # A bar is hundreds of pixels, a line over several days more; one point alone (today's
    # revenue) is a dot of about 40.
    thresholds = {"chart-revenue-usd": 20}
    thin = {c: n for c, n in counts.items() if n < thresholds.get(c, 200)}
    assert thin == {}, counts
