"""The job state machine."""

import pytest

from marketplace import lifecycle
from marketplace.errors import InvalidTransition
from marketplace.lifecycle import allowed_next, can_transition
from marketplace.models import JobStatus
from tests.factories import JobFactory

HAPPY_PATH = ["processing", "ready", "published", "paused", "published", "completed"]


def test_happy_path_is_allowed_step_by_step():
    current = JobStatus.DRAFT
    for nxt in HAPPY_PATH:
        assert can_transition(current, nxt), (current, nxt)
        current = nxt


@pytest.mark.parametrize("status", ["draft", "processing", "ready", "published", "paused"])
def test_cancel_and_fail_from_every_non_final_status(status):
    assert {"cancelled", "failed"} <= allowed_next(status)


@pytest.mark.parametrize("status", ["completed", "cancelled", "failed"])
def test_final_statuses_have_no_exit(status):
    assert allowed_next(status) == frozenset()


@pytest.mark.parametrize(
    ("a", "b"),
    [("draft", "published"), ("ready", "completed"), ("processing", "draft"), ("paused", "ready")],
)
def test_skips_and_backward_moves_are_refused(a, b):
    assert can_transition(a, b) is False


@pytest.mark.django_db
def test_service_refuses_invalid_transition_and_changes_nothing():
    job = JobFactory()
    with pytest.raises(InvalidTransition):
        lifecycle.job_transition(job=job, to=JobStatus.PUBLISHED)
    job.refresh_from_db()
    assert job.status == JobStatus.DRAFT and job.published_at is None


@pytest.mark.django_db
def test_failed_keeps_reason():
    job = JobFactory()
    lifecycle.job_transition(job=job, to=JobStatus.FAILED, reason="no decodable video")
    job.refresh_from_db()
    assert (job.status, job.failure_reason) == ("failed", "no decodable video")
