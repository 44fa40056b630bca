"""``manage.py demo`` at a small size: the whole marketplace runs and the summary meets the bar."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from marketplace.management.demo import DemoError, DemoOptions, demo_run
from payments.models import Funding, Payout
from tasks.models import JobExport
from tests.payments.conftest import assert_ledger_consistent, stripe_server  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_demo_runs_the_marketplace_end_to_end_and_meets_the_quality_bar(
    stripe_server,  # noqa: F811
    settings,
    client,
):
    settings.PAYOUT_MINIMUM = 50  # a small crowd earns cents (the command's --payout-minimum)
    options = DemoOptions(videos=2, seconds=6, objects=3, workers=7, spammers=1, sloppy=1, seed=3)
    s = demo_run(options=options, stripe=stripe_server)
    print(s.as_dict())
    # Everything was claimed, scored, paid and delivered.
    assert s.microtasks >= 6 and s.gold_microtasks >= 2
    assert s.settled_microtasks >= s.microtasks // 2
    assert s.accuracy_f1 >= 0.85 and s.accuracy_iou >= 0.75
    # Dynamic overlap stays within the job's bounds.
    assert options.overlap_min <= s.replicas_per_microtask <= options.overlap_max
    # Money: within the funded budget, fair pay, and everyone with earnings paid out once.
    assert 0 < s.spent <= s.budget
    assert s.effective_hourly >= s.floor_hourly
    assert s.payouts >= 1 and s.transfers == s.payouts
    assert s.payouts_amount == sum(w.paid_out for w in s.workers)
    assert all(s.invariants.values()), s.invariants
    assert_ledger_consistent()
    # The funding went through Stripe (the local server), and the downloads were recorded.
    # (The quote, and top-ups when dynamic overlap asked for replicas the escrow did not cover.)
    rows = list(Funding.objects.filter(job_id=s.job_id))
    assert rows and sum(r.amount for r in rows) == s.budget
    for row in rows:
        assert row.status == "succeeded"
        assert row.stripe_payment_intent_id in stripe_server.state.payment_intents
    transfers = {t["id"] for t in stripe_server.state.transfers.values()}
    assert set(Payout.objects.values_list("stripe_transfer_id", flat=True)) <= transfers
    assert set(s.exports) == {"coco", "mot", "cvat", "labelstudio", "yolo"}
    assert all(size > 0 for size in s.exports.values())
    assert JobExport.objects.filter(job_id=s.job_id).count() == 5
    assert s.export_counts["objects"] > 0
    # Careful workers were paid; the spammer's work was caught or left unpaid.
    spammer = next(w for w in s.workers if w.profile == "spammer")
    careful = [w for w in s.workers if w.profile == "precise"]
    assert spammer.rejected > 0 or spammer.suspended or spammer.approved == 0
    assert sum(w.earned for w in careful) > 0.6 * s.paid_to_workers
    # The pages show a marketplace that has lived.
    from marketplace.models import User
    from marketplace.money import format_money

    client.force_login(User.objects.get(username="requester"))
    page = client.get(f"/requester/jobs/{s.job_id}/").content.decode()
    assert "Download the dataset" in page and f"/api/jobs/{s.job_id}/export/yolo/" in page
    assert client.get(f"/quality/jobs/{s.job_id}/").status_code == 200
    paid = max(s.workers, key=lambda w: w.paid_out)
    client.force_login(User.objects.get(username=paid.username))
    earnings = client.get("/worker/earnings/").content.decode()
    assert format_money(paid.paid_out, s.currency) in earnings


def test_demo_command_prints_the_summary_with_bars(stripe_server, settings):  # noqa: F811
    # The command starts its own local Stripe server, with the same key as the suite's.
    out = StringIO()
    call_command(
        "demo",
        "--videos=1",
        "--seconds=3",
        "--workers=4",
        "--spammers=1",
        "--sloppy=0",
        "--no-progress",
        stdout=out,
    )
    text = out.getvalue()
    for heading in ("accuracy vs truth", "replicas used", "cost vs budget", "effective hourly"):
        assert heading in text
    assert "█" in text and "invariants         all held" in text
    assert "crowd" in text and "spammer" in text


def test_demo_refuses_a_crowd_without_enough_careful_workers(stripe_server):  # noqa: F811
    with pytest.raises(DemoError, match="careful workers"):
        demo_run(options=DemoOptions(workers=4, spammers=2, sloppy=1), stripe=stripe_server)
