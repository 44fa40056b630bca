"""The job report's flagged seams: counted when a video's consensus changes and kept per video
(``quality.VideoSeams``), read in the same queries whatever the number of videos, never stale
(a consensus written, rewritten or withdrawn by any path shows at once), filled for old jobs by
the sweep."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quality.models import ConsensusDecision, ConsensusResult, VideoSeams
from quality.selectors import job_report, video_consensus_stamps, video_seams_flagged
from quality.services import video_seams_refresh, video_seams_sweep
from quality.simulator import PRECISE, SimulatedWorker
from tasks import claiming
from tasks.models import MicroTask, Video
from tests.factories import JobFactory, VideoFactory
from tests.openapi_check import assert_answers_schema
from tests.quality.conftest import FRAME_SIZE

pytestmark = pytest.mark.django_db
TRACK = "tracks-assoc-v1"
WRITES = ("insert", "update", "delete")


def _frames(mt: MicroTask, *, lost: bool) -> dict:
    """One car followed through the segment's frames; none when ``lost``."""
    return {
        str(f): []
        if lost
        else [{"label": "car", "box": [10.0 + f, 10.0, 60.0 + f, 60.0], "track": 1}]
        for f in range(mt.frame_start, mt.frame_end + 1)
    }


def _consensus(mt: MicroTask, *, lost: bool = False, algorithm: str = TRACK) -> None:
    """Make a consensus current for ``mt`` the way the services write one (and no more: nothing
    here tells the seam counts, as an admin's edit or a path that forgot would not)."""
    ConsensusResult.objects.filter(microtask=mt, is_current=True).exclude(
        algorithm=algorithm
    ).update(is_current=False)
    ConsensusResult.objects.update_or_create(
        microtask=mt,
        algorithm=algorithm,
        defaults={
            "frames": _frames(mt, lost=lost),
            "agreement": 1.0,
            "decision": ConsensusDecision.ACCEPT,
            "is_current": True,
        },
    )


def _track_job(videos: int, *, broken: int = 0, segments: int = 3):
    """A track job of ``videos`` videos of ``segments`` 10-frame segments sharing 3 frames with
    the next, each segment with a current consensus following one car; on the first ``broken``
    videos the third segment lost the car, so its seams are flagged."""
    job = JobFactory(annotation_type="track", label_classes=["car"], status="published")
    for v in range(videos):
        video = VideoFactory(job=job)
        for k in range(segments):
            start = 7 * k
            mt = MicroTask.objects.create(
                job=job,
                video=video,
                index=k,
                frame_start=start,
                frame_end=start + 9,
                frames=list(range(start, start + 10)),
                price=10,
            )
            _consensus(mt, lost=k == 2 and v < broken)
    return job


def _claim_and_submit(world, worker, *, seed: int) -> None:
    """A precise replica of the next microtask, through the claim path (consensus and all)."""
    a = claiming.assignment_claim(worker=worker, job_id=world.job.pk)
    annotation = SimulatedWorker("w", PRECISE, seed=seed).annotate(
        world.truth_for(a.microtask), frame_size=FRAME_SIZE, n_classes=len(world.classes)
    )
    claiming.assignment_submit(
        worker=worker,
        assignment_id=a.pk,
        payload=world.payload_for(a.microtask, annotation),
        active_seconds=60.0,
    )


def _settled_track_world(world_factory, workers):
    """One video of three track segments, each settled by three precise replicas submitted
    through the claim path."""
    world = world_factory(
        n=3, overlap=3, annotation_type="track", segment=12, seam=3, n_objects=3, seed=11
    )
    crowd = workers(3, "track")
    for i, w in enumerate(crowd):
        for j in range(3):
            _claim_and_submit(world, w, seed=10 * i + j)
    return world


def _segment(job, video_index: int, k: int) -> MicroTask:
    video = job.videos.order_by("pk")[video_index]
    return MicroTask.objects.get(video=video, index=k)


def _stored(job) -> list[int]:
    return list(
        VideoSeams.objects.filter(video__job=job)
        .order_by("video_id")
        .values_list("flagged", flat=True)
    )


def test_the_report_counts_flagged_seams_and_follows_every_new_consensus():
    job = _track_job(3, broken=2)
    assert job_report(job=job)["seams_flagged"] == 2  # nothing stored yet: counted now

    # Older installs: the sweep stores each video's count, then has nothing left to do.
    assert video_seams_sweep() == 3
    assert _stored(job) == [1, 1, 0]
    assert video_seams_sweep() == 0
    assert job_report(job=job)["seams_flagged"] == 2

    # A new consensus (the same algorithm rewritten in place) fixes video 0's seam: the stored
    # count is stale at once, and the report says so before anything refreshes it.
    _consensus(_segment(job, 0, 2), lost=False)
    assert job_report(job=job)["seams_flagged"] == 1
    assert video_seams_refresh(video_id=job.videos.order_by("pk")[0].pk) == 0
    assert _stored(job) == [0, 1, 0]
    assert job_report(job=job)["seams_flagged"] == 1

    # Another algorithm's consensus (a reviewer's) breaks video 2's second seam.
    _consensus(_segment(job, 2, 2), lost=True, algorithm="review-v1")
    assert job_report(job=job)["seams_flagged"] == 2
    # A consensus withdrawn (a replica added): video 1's broken segment no longer counts.
    ConsensusResult.objects.filter(microtask=_segment(job, 1, 2)).update(is_current=False)
    assert job_report(job=job)["seams_flagged"] == 1
    assert video_seams_sweep() == 2  # the two stale videos, counted again
    assert _stored(job) == [0, 0, 1]
    assert job_report(job=job)["seams_flagged"] == 1


def test_the_report_costs_the_same_queries_for_2_or_8_videos_and_writes_nothing():
    counts = []
    for n in (2, 8):
        job = _track_job(n, broken=1)
        video_seams_sweep()
        with CaptureQueriesContext(connection) as ctx:
            assert job_report(job=job)["seams_flagged"] == 1
        counts.append(len(ctx.captured_queries))
        sqls = [q["sql"].lstrip().lower() for q in ctx.captured_queries]
        assert not [s for s in sqls if s.startswith(WRITES)]
    assert counts[0] == counts[1]


def test_a_stale_count_is_counted_by_the_report_without_writing():
    job = _track_job(2, broken=1)
    video_seams_sweep()
    _consensus(_segment(job, 1, 2), lost=True)
    with CaptureQueriesContext(connection) as ctx:
        assert job_report(job=job)["seams_flagged"] == 2
    sqls = [q["sql"].lstrip().lower() for q in ctx.captured_queries]
    assert not [s for s in sqls if s.startswith(WRITES)]  # a GET changes nothing
    assert _stored(job) == [1, 0]


def test_other_jobs_have_no_seam_count():
    job = JobFactory(annotation_type="bbox")
    video = VideoFactory(job=job)
    assert job_report(job=job)["seams_flagged"] is None
    assert video_seams_refresh(video_id=video.pk) is None
    assert not VideoSeams.objects.exists()


@pytest.mark.django_db(transaction=True)  # the count is queued on commit, as in production
def test_consensus_through_the_services_stores_its_video_count(world_factory, workers, no_gold):
    world = _settled_track_world(world_factory, workers)
    video = world.job.videos.get()
    assert ConsensusResult.objects.filter(microtask__video=video, is_current=True).count() == 3
    [(_, stamp, cached_stamp, cached)] = video_consensus_stamps(
        videos=Video.objects.filter(pk=video.pk), job=world.job
    )
    assert cached_stamp == stamp  # stored after the last consensus, at its stamp
    assert cached == video_seams_flagged(video) == 0


@pytest.mark.django_db(transaction=True)
def test_a_reviewers_answer_stores_the_new_count(world_factory, workers, no_gold):
    from quality.services import review_resolve
    from quality.services.common import microtask_to_review
    from quality.tracks import FrameBoxes

    world = _settled_track_world(world_factory, workers)
    video = world.job.videos.get()
    assert job_report(job=world.job)["seams_flagged"] == 0
    # A reviewer answers the middle segment with no object at all: both its seams break.
    mt = MicroTask.objects.get(video=video, index=1)
    item = microtask_to_review(mt, reason="a second look")
    empty = {f: FrameBoxes.make([], [], []) for f in world.truth_for(mt)}
    review_resolve(review_id=item.pk, payload=world.payload_for(mt, empty), by=world.job.requester)
    [(_, stamp, cached_stamp, cached)] = video_consensus_stamps(
        videos=Video.objects.filter(pk=video.pk), job=world.job
    )
    assert cached_stamp == stamp
    assert cached == video_seams_flagged(video) == 2
    assert job_report(job=world.job)["seams_flagged"] == 2


@pytest.mark.django_db(transaction=True)
def test_changes_of_one_video_share_one_count_on_a_real_worker(settings):
    """The counts of a video are coalesced: three consensus changes within the window put one
    restitch on the broker, and a real Celery worker runs it after the last of them, storing
    the count at the video's final stamp."""
    import redis
    from django.core.cache import cache

    from quality.services import seams
    from tests.conftest import celery_workers

    job = _track_job(1)
    video = job.videos.get()
    mts = list(MicroTask.objects.filter(video=video).order_by("index"))
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queued = broker.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
    cache.delete(f"quality:seams:{video.pk}")
    previous, seams.COALESCE_SECONDS = seams.COALESCE_SECONDS, 2
    eager, seams.current_app.conf.task_always_eager = (
        seams.current_app.conf.task_always_eager,
        False,
    )
    try:
        for k, lost in ((2, True), (1, True), (1, False)):
            with transaction.atomic():
                _consensus(mts[k], lost=lost)
                seams.seams_changed(job=job, microtasks=[mts[k]])
    finally:
        seams.COALESCE_SECONDS = previous
        seams.current_app.conf.task_always_eager = eager
    assert broker.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == queued + 1
    [(_, stamp, _, _)] = video_consensus_stamps(videos=Video.objects.filter(pk=video.pk), job=job)
    with celery_workers(1):
        deadline = time.monotonic() + 30
        while not VideoSeams.objects.filter(video=video, stamp=stamp).exists():
            assert time.monotonic() < deadline, "the coalesced count never ran"
            time.sleep(0.2)
    assert VideoSeams.objects.get(video=video).flagged == video_seams_flagged(video) == 1


def test_stitching_a_video_costs_the_same_queries_for_3_or_12_segments():
    """A video's tracks (its seams, a track export) read every segment's consensus in one
    query: a two-hour video has hundreds of segments."""
    counts = []
    for segments in (3, 12):
        job = _track_job(1, broken=1, segments=segments)
        video = job.videos.get()
        with CaptureQueriesContext(connection) as queries:
            flagged = video_seams_flagged(video)
        counts.append(len(queries))
        assert flagged == (1 if segments == 3 else 2)  # the lost third segment's seams
    assert counts[0] == counts[1]


def test_the_report_api_answers_the_flagged_seams_in_its_schema(client_for):
    job = _track_job(2, broken=1)
    r = client_for(job.requester).get(f"/api/quality/jobs/{job.pk}/report/")
    body = assert_answers_schema(r, "get", "/api/quality/jobs/{job_id}/report/")
    assert body["seams_flagged"] == 1
