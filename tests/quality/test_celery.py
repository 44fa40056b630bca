"""The submit hook enqueues scoring on commit; a real Celery worker process does it."""

import time

import pytest

from quality.models import GoldResult
from quality.simulator import SPAMMER
from tests.quality.test_services import claim_and_submit


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_scores_a_gold_submission(
    world_factory, workers, gold_first, celery_worker_process
):
    world = world_factory(n=1, gold=1, gold_rate=0.5)
    (w,) = workers(1)
    a = claim_and_submit(world, w, SPAMMER, seed=5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not GoldResult.objects.filter(assignment=a).exists():
        time.sleep(0.2)
    result = GoldResult.objects.get(assignment=a)
    assert not result.passed
    a.refresh_from_db()
    assert a.status == "rejected"
