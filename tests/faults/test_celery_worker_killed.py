"""Fault: the Celery process running a task is SIGKILLed (what the OOM killer does), during a
video's ingestion and during a payout batch.

A real worker (prefork, one child) over Redis; the child is killed once the task is visibly half
done (the video's progress, transfers already on Stripe). ``acks_late`` with
``reject_on_worker_lost`` gives the message back to the broker and the next child runs the task
again; the task is idempotent, so it finishes the work with nothing doubled: no duplicate frames
or microtasks, one Stripe transfer per payout (same idempotency keys). Then every invariant.

The whole worker killed (its main process: the machine lost) is the other case: nobody gives
the message back, Redis redelivers it after ``CELERY_VISIBILITY_TIMEOUT`` (short in these tests'
workers, with the time limits below it) to the worker started next, during a payout batch and
during one part of a long video's ingestion.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from marketplace.models import Job, JobStatus
from payments import payouts
from payments.models import Payout, PayoutStatus
from tasks.models import MicroTask, Video
from tests.factories import JobFactory
from tests.faults.invariants import assert_invariants
from tests.payments.conftest import onboarded_worker
from tests.tasks.ingest_helpers import all_stored, make_clip, upload

DEADLINE_SECONDS = 120


def _poll(condition, what: str, *, seconds: float = DEADLINE_SECONDS, every: float = 0.02):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # the worker process gets the same folder
    return settings.MEDIA_ROOT


def test_worker_killed_during_ingestion_the_redelivery_finishes_it(
    celery_worker_factory, requester, requester_client, tmp_path
):
    worker = celery_worker_factory()
    clip = make_clip(tmp_path, frames=900, width=320, height=240, name="long.mp4")
    job = JobFactory(requester=requester, annotation_type="bbox", segment_frames=30)
    assert upload(requester_client, job.pk, ("long.mp4", clip.data)).status_code == 201
    child = worker.child()
    assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202

    # Killed half-way: frames and progress are already written.
    _poll(
        lambda: 0 < Video.objects.get(job=job).progress < 100,
        "the ingestion to be under way",
    )
    os.kill(child, signal.SIGKILL)
    progress_at_kill = Video.objects.get(job=job).progress

    _poll(lambda: Job.objects.get(pk=job.pk).status != JobStatus.PROCESSING, "the ingestion")
    assert worker.child() != child  # a new child ran the redelivered task
    job.refresh_from_db()
    v = Video.objects.get(job=job)
    assert (job.status, v.status, v.frame_count) == ("ready", "ready", 900), v.error
    assert 0 < progress_at_kill < 100
    mts = list(MicroTask.objects.filter(video=v).order_by("index"))
    assert [m.index for m in mts] == list(range(len(mts)))  # no duplicate, no gap
    named = {f["image"] for m in mts for f in m.manifest["frames"]}
    stored = {f for f in all_stored() if f.startswith(v.frames_prefix)}
    assert stored == named  # no orphan frame from the killed run, none missing
    assert_invariants()


def test_worker_killed_during_a_payout_batch_no_transfer_is_doubled(
    celery_worker_factory, stripe_server, settings
):
    n = 30
    workers = [onboarded_worker(stripe_server, available=1_000) for _ in range(n)]
    # Transfers paced at 10/s, so the batch takes three seconds and the kill lands inside it.
    worker = celery_worker_factory(
        STRIPE_API_BASE=stripe_server.api_base,
        STRIPE_REQUESTS_PER_SECOND="10",
        STRIPE_TIMEOUT_SECONDS="5",
        STRIPE_MAX_NETWORK_RETRIES="1",
        PAYOUT_SUBMIT_THREADS="2",
    )
    child = worker.child()
    runs = payouts.payout_runs_start(note="killed")  # its batch task goes to the worker
    assert sum(run.payouts_created for run in runs.values()) == n

    _poll(lambda: len(stripe_server.state.transfers) >= 5, "transfers to start")
    os.kill(child, signal.SIGKILL)
    at_kill = len(stripe_server.state.transfers)
    assert at_kill < n

    _poll(
        lambda: not Payout.objects.exclude(status=PayoutStatus.SUBMITTED).exists(),
        "every payout to be submitted",
    )
    assert worker.child() != child
    for p in Payout.objects.all():
        assert len(stripe_server.transfers_for(p.pk)) == 1, p
    assert len(stripe_server.state.transfers) == n
    assert {p.worker_id for p in Payout.objects.all()} == {w.pk for w in workers}
    assert_invariants(stripe_server=stripe_server)


VISIBILITY_TIMEOUT = 20  # seconds: this test's workers (production waits CELERY_VISIBILITY_TIMEOUT)


def _unacked() -> int:
    from marketplace.celery import app

    with app.connection_for_read() as conn:
        return conn.default_channel.client.hlen("unacked")


def test_whole_worker_killed_during_a_payout_batch_the_next_worker_finishes_it_once(
    celery_worker_factory, stripe_server, settings
):
    """The main process SIGKILLed (the machine lost, ``kill -9`` of the worker): nobody is left
    to reject the message, so it stays unacknowledged in Redis until the visibility timeout,
    then a worker started afterwards gets it and finishes the batch: one transfer per payout."""
    n = 20
    workers = [onboarded_worker(stripe_server, available=1_000) for _ in range(n)]
    env = {
        "STRIPE_API_BASE": stripe_server.api_base,
        "STRIPE_REQUESTS_PER_SECOND": "10",
        "STRIPE_TIMEOUT_SECONDS": "2",
        "STRIPE_MAX_NETWORK_RETRIES": "1",
        "PAYOUT_SUBMIT_THREADS": "2",
        # The time limits follow the timeout (15 s hard): a batch still running when its message
        # becomes visible again would run twice at once.
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    }
    first = celery_worker_factory(**env)
    child = first.child()
    runs = payouts.payout_runs_start(note="worker lost")
    assert sum(run.payouts_created for run in runs.values()) == n

    _poll(lambda: len(stripe_server.state.transfers) >= 4, "transfers to start")
    os.kill(first.proc.pid, signal.SIGKILL)  # the main process, not the pool child
    killed_at = time.monotonic()
    first.proc.wait(timeout=10)
    _poll(lambda: not os.path.exists(f"/proc/{child}"), "the pool child to die with it", seconds=10)
    at_kill = len(stripe_server.state.transfers)
    assert at_kill < n
    assert _unacked() >= 1  # the batch's message: taken, never acknowledged nor given back

    celery_worker_factory(**env)
    _poll(
        lambda: not Payout.objects.exclude(status=PayoutStatus.SUBMITTED).exists(),
        "every payout to be submitted",
    )
    # Redelivered by the visibility timeout (not before: the new worker could not know).
    assert time.monotonic() - killed_at >= VISIBILITY_TIMEOUT - 1
    for p in Payout.objects.all():
        assert len(stripe_server.transfers_for(p.pk)) == 1, p
    assert len(stripe_server.state.transfers) == n
    assert {p.worker_id for p in Payout.objects.all()} == {w.pk for w in workers}
    _poll(lambda: _unacked() == 0, "the redelivered message to be acknowledged", seconds=30)
    assert_invariants(stripe_server=stripe_server)


def test_whole_worker_killed_during_an_ingestion_part_the_next_worker_redoes_that_part_once(
    celery_worker_factory, requester, requester_client, tmp_path
):
    """A long video in parts; the worker dies whole while decoding one. The other parts go on
    in the next worker at once (their messages were never taken); the lost part's message comes
    back after the visibility timeout, and that part alone is decoded again: no frame or
    microtask twice, none missing."""
    from tasks.models import VideoPart

    timeout = 20  # the parts' time limit follows: 15 s
    env = {"CELERY_VISIBILITY_TIMEOUT": str(timeout), "VIDEO_INGEST_PART_SECONDS": "5"}
    first = celery_worker_factory(**env)
    clip = make_clip(tmp_path, frames=900, width=320, height=240, name="long.mp4")
    job = JobFactory(
        requester=requester,
        annotation_type="track",
        segment_frames=20,
        overlap_frames=4,
        keyframe_step=5,
    )
    assert upload(requester_client, job.pk, ("long.mp4", clip.data)).status_code == 201
    child = first.child()
    assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202

    running = _poll(
        lambda: VideoPart.objects.filter(video__job=job, status=VideoPart.Status.RUNNING).first(),
        "a part to be under way",
    )
    os.kill(first.proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    first.proc.wait(timeout=10)
    _poll(lambda: not os.path.exists(f"/proc/{child}"), "the pool child to die with it", seconds=10)
    assert _unacked() >= 1

    celery_worker_factory(**env)
    _poll(lambda: Job.objects.get(pk=job.pk).status != JobStatus.PROCESSING, "the ingestion")
    assert time.monotonic() - killed_at >= timeout - 1  # the lost part waited for the timeout
    job.refresh_from_db()
    v = Video.objects.get(job=job)
    assert (job.status, v.status, v.frame_count) == ("ready", "ready", 900), v.error
    parts = {p.pk: p for p in VideoPart.objects.filter(video=v)}
    assert len(parts) > 1 and all(p.status == VideoPart.Status.DONE for p in parts.values())
    assert parts[running.pk].runs == 2  # the killed part, once more
    assert all(p.runs == 1 for pk, p in parts.items() if pk != running.pk)
    mts = list(MicroTask.objects.filter(video=v).order_by("index"))
    assert [m.index for m in mts] == list(range(len(mts)))
    named = {f["image"] for m in mts for f in m.manifest["frames"]}
    stored = {f for f in all_stored() if f.startswith(v.frames_prefix)}
    assert stored == named
    _poll(lambda: _unacked() == 0, "the redelivered message to be acknowledged", seconds=30)
    assert_invariants()
