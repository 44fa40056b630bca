"""The invariant checker itself: it finds violations when they are there (a checker that passes
everything would make every fault test worthless)."""

from __future__ import annotations

import pytest

from payments.ledger import AccountKind
from payments.models import LedgerAccount
from tasks import claiming
from tasks.models import MicroTask
from tests.faults.invariants import assert_invariants, invariant_problems
from tests.payments.conftest import fund
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db


def test_the_checker_passes_a_sound_state_and_names_each_violation():
    job = published_job(n=2, overlap=2, gold_rate=0.0)
    fund(job, 1_000)
    claiming.assignment_claim(worker=qualified_worker(), job_id=job.pk)
    assert_invariants()

    # A cached balance that disagrees with its entries; a target above the job's cap; a 500.
    LedgerAccount.objects.filter(kind=AccountKind.JOB_ESCROW, job=job).update(balance=1)
    mt = MicroTask.objects.filter(job=job).first()
    MicroTask.objects.filter(pk=mt.pk).update(replica_target=job.overlap_max + 1)
    problems = invariant_problems(responses=[500, 503, 200])
    assert any("cached balance" in p for p in problems), problems
    assert any(f"microtask {mt.pk}: target" in p for p in problems), problems
    assert any("got 500" in p for p in problems), problems
    assert not any("got 503" in p for p in problems), problems
    with pytest.raises(AssertionError):
        assert_invariants()
