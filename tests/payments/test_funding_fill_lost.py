"""Redis down when a funding's credit commits: the credit stands, the sweep publishes the work.

``tasks.receivers.on_escrow_funded`` queues ``fill_job_slots`` after the credit commits. A
broker error there used to escape the on-commit callback (the funding check answered an error
for money already credited) and nothing ever filled the new work. It is now logged, and
``tasks.fill_starved_slots`` (Celery beat) fills a funded job's open work that has no slot.
"""

from __future__ import annotations

import logging

import pytest
from celery import current_app
from django.conf import settings as django_settings

from payments import escrow
from payments import funding as funding_services
from payments.models import FundingStatus
from payments.selectors import escrow_balance
from tasks import budget, claiming
from tasks.models import MicroTask, Slot
from tests.faults.test_replica_messages_lost import redis_down  # noqa: F401 (fixture)
from tests.payments.conftest import checkout_funding, pay_checkout
from tests.tasks.claim_fixtures import ready_job

pytestmark = pytest.mark.django_db(transaction=True)


def _sweep() -> int:
    entry = django_settings.CELERY_BEAT_SCHEDULE["fill-starved-slots"]
    return current_app.tasks[entry["task"]].apply().get()


def test_a_funding_credited_while_redis_is_down_is_published_by_the_sweep(
    stripe_server,
    redis_down,  # noqa: F811
    caplog,
    monkeypatch,
):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    job = ready_job(n=4, price=60, overlap=1, budget=0)
    one_slot = budget.slot_reservation(microtask=MicroTask.objects.filter(job=job).first())
    escrow.escrow_fund(job=job, amount=one_slot, key=f"first:{job.pk}")
    claiming.job_publish(job=job, by=job.requester)
    assert Slot.objects.filter(job=job).count() == 1
    job.budget = 10**6
    job.save(update_fields=["budget"])
    f = checkout_funding(job, amount=3 * one_slot)
    pay_checkout(stripe_server, f)
    assert _sweep() == 0  # nothing funded is waiting: the sweep leaves the job alone

    down, up = redis_down
    down()
    with caplog.at_level(logging.WARNING):
        f = funding_services.funding_refresh(funding=f)  # the check: no error for the payer
    up()
    assert f.status == FundingStatus.SUCCEEDED
    assert escrow_balance(job=job).available == 3 * one_slot  # credited, not yet reserved
    assert "could not queue the slot fill of funded job" in caplog.text
    assert Slot.objects.filter(job=job).count() == 1  # the message was lost
    reserved = escrow_balance(job=job).reserved

    assert _sweep() == 3
    assert Slot.objects.filter(job=job).count() == 4
    after = escrow_balance(job=job)
    assert after.reserved > reserved and after.funded == 4 * one_slot  # reserved, no new money
    assert _sweep() == 0  # filled once
