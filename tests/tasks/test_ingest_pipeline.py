"""The ingestion pipeline on real videos, checked exactly against the generator's truth."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from marketplace.models import JobStatus
from payments import pricing
from tasks import features
from tasks.ingestion_pipeline import video_ingest
from tasks.models import MicroTask, Video, VideoStatus
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import all_stored, make_clip, stored_files, upload


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VIDEO_FRAME_MAX_WIDTH = 128
    settings.VIDEO_FRAME_MAX_HEIGHT = 128
    return settings.MEDIA_ROOT


def _process(client, job):
    response = client.post(f"/api/jobs/{job.pk}/process/")
    assert response.status_code == 202, response.content
    job.refresh_from_db()
    return job


def _manifest_times(mt: MicroTask) -> list[float]:
    return [f["time"] for f in mt.manifest["frames"]]


@pytest.mark.django_db(transaction=True)
def test_track_job_splits_h264_at_shot_cuts_with_overlap_exactly(
    requester, requester_client, tmp_path
):
    clip = make_clip(tmp_path, frames=100, shot_cuts=(37,), motion=3.0)
    job = JobFactory(
        requester=requester,
        annotation_type="track",
        segment_frames=20,
        overlap_frames=5,
        keyframe_step=4,
        expected_objects=7,
    )
    assert upload(requester_client, job.pk, ("a.mp4", clip.data)).status_code == 201
    job = _process(requester_client, job)  # eager Celery: ingestion ran on commit
    assert job.status == JobStatus.READY

    v = Video.objects.get(job=job)
    assert v.status == VideoStatus.READY and v.stage == "done" and v.progress == 100.0
    assert v.codec == "h264" and "mp4" in v.container
    assert (v.width, v.height, v.frame_count) == (160, 120, 100)
    assert v.fps == pytest.approx(30.0)
    assert v.shot_boundaries == list(clip.scene.shot_cuts)
    assert v.variable_frame_rate is False

    expected = features.plan_track_segments(
        100, [37], segment_frames=20, overlap_frames=5, keyframe_step=4
    )
    # Known truth, by hand: shot 0 is 0..36, shot 1 is 37..99.
    assert [(s.frame_start, s.frame_end) for s in expected] == [
        (0, 19), (15, 34), (30, 36), (37, 56), (52, 71), (67, 86), (82, 99),
    ]  # fmt: skip
    mts = list(MicroTask.objects.filter(video=v).order_by("index"))
    assert [(m.frame_start, m.frame_end) for m in mts] == [
        (s.frame_start, s.frame_end) for s in expected
    ]
    assert mts[0].frames == [0, 4, 8, 12, 16, 19]
    assert mts[2].frames == [30, 34, 36]
    assert [m.manifest["overlap_next"] for m in mts] == [5, 5, 0, 5, 5, 5, 0]
    assert [m.manifest["overlap_previous"] for m in mts] == [0, 5, 5, 0, 5, 5, 5]
    assert all(m.keyframe_step == 4 and m.expected_objects == 7 for m in mts)
    for m in mts:
        assert m.manifest["kind"] == "segment"
        assert [f["frame"] for f in m.manifest["frames"]] == m.frames
        assert _manifest_times(m) == [pytest.approx(i / 30.0, abs=1e-6) for i in m.frames]
        assert (m.manifest["width"], m.manifest["height"]) == (128, 96)
        assert 0.75 <= m.complexity <= 3.0
        policy = pricing.PricingPolicyData()
        assert m.complexity == pricing.complexity(motion=m.motion, clutter=m.clutter, policy=policy)

    # Exactly the frames the manifests name are in storage, as JPEGs of the announced size.
    named = {f["image"] for m in mts for f in m.manifest["frames"]}
    assert stored_files(v.frames_prefix) == named
    with default_storage.open(sorted(named)[0]) as fh:
        assert Image.open(fh).size == (128, 96)


@pytest.mark.django_db(transaction=True)
def test_bbox_job_samples_every_frame_step_and_groups(requester, requester_client, tmp_path):
    clip = make_clip(tmp_path, frames=70, codec="libvpx-vp9", name="c.webm")
    job = JobFactory(requester=requester, annotation_type="bbox", frame_step=7, frames_per_task=4)
    upload(requester_client, job.pk, ("c.webm", clip.data))
    job = _process(requester_client, job)
    assert job.status == JobStatus.READY
    v = Video.objects.get(job=job)
    assert (v.codec, v.frame_count) == ("vp9", 70)
    mts = list(v.microtasks.order_by("index"))
    assert [m.frames for m in mts] == [
        [0, 7, 14, 21], [28, 35, 42, 49], [56, 63],
    ]  # fmt: skip
    assert [(m.frame_start, m.frame_end) for m in mts] == [(0, 21), (28, 49), (56, 63)]
    assert all(m.manifest["kind"] == "frames" and m.keyframe_step == 1 for m in mts)
    assert stored_files(v.frames_prefix) == {f["image"] for m in mts for f in m.manifest["frames"]}


@pytest.mark.django_db(transaction=True)
def test_variable_frame_rate_keeps_real_timestamps(requester, requester_client, tmp_path):
    clip = make_clip(tmp_path, frames=45, vfr=True, name="vfr.mp4")
    job = JobFactory(requester=requester, annotation_type="classify", frame_step=1,
                     frames_per_task=45, label_classes=["a", "b"])  # fmt: skip
    upload(requester_client, job.pk, ("vfr.mp4", clip.data))
    _process(requester_client, job)
    v = Video.objects.get(job=job)
    assert v.status == VideoStatus.READY
    assert v.variable_frame_rate is True
    assert v.frame_count == 45
    (mt,) = v.microtasks.all()
    assert _manifest_times(mt) == [pytest.approx(t, abs=1e-6) for t in clip.written.times]
    assert v.fps == pytest.approx(44 / clip.written.times[-1])


@pytest.mark.django_db(transaction=True)
def test_mpeg4_avi_is_ingested(requester, requester_client, tmp_path):
    clip = make_clip(tmp_path, frames=40, codec="mpeg4", name="m.avi")
    job = JobFactory(requester=requester, frame_step=10, frames_per_task=2)
    upload(requester_client, job.pk, ("m.avi", clip.data))
    _process(requester_client, job)
    v = Video.objects.get(job=job)
    assert (v.status, v.codec, v.container, v.frame_count) == ("ready", "mpeg4", "avi", 40)
    assert [m.frames for m in v.microtasks.order_by("index")] == [[0, 10], [20, 30]]


@pytest.mark.django_db(transaction=True)
def test_retry_after_a_crash_leaves_no_duplicates_or_orphans(
    requester, requester_client, tmp_path, monkeypatch
):
    """A worker killed mid-decode leaves frames behind; the redelivered task starts clean."""
    clip = make_clip(tmp_path, frames=60, shot_cuts=(25,))
    job = JobFactory(requester=requester, annotation_type="track", segment_frames=15,
                     overlap_frames=3, keyframe_step=2)  # fmt: skip
    upload(requester_client, job.pk, ("a.mp4", clip.data))

    class WorkerKilled(BaseException):
        pass

    from tasks import video as video_module

    real = video_module.DecodedFrame.jpeg
    calls = {"n": 0}

    def dying(self, **kw):
        calls["n"] += 1
        if calls["n"] == 12:
            raise WorkerKilled
        return real(self, **kw)

    monkeypatch.setattr(video_module.DecodedFrame, "jpeg", dying)
    # Straight to the service, not through the (eager) Celery task: a BaseException escaping
    # an eager task would leave Celery's task stack dirty for later tests.
    from marketplace.lifecycle import job_transition

    job_transition(job=job, to=JobStatus.PROCESSING)
    v = Video.objects.get(job=job)
    with pytest.raises(WorkerKilled):
        video_ingest(video_id=v.pk)
    v.refresh_from_db()
    assert v.status == VideoStatus.PROCESSING  # what a killed worker leaves
    assert 1 <= len(stored_files(v.frames_prefix)) < 20  # orphan frames of the dead attempt
    assert not v.microtasks.exists()

    monkeypatch.setattr(video_module.DecodedFrame, "jpeg", real)
    video_ingest(video_id=v.pk)  # the redelivery
    video_ingest(video_id=v.pk)  # and a duplicate delivery: a no-op
    v.refresh_from_db()
    job.refresh_from_db()
    assert (v.status, v.attempts, job.status) == ("ready", 2, "ready")
    expected = features.plan_track_segments(
        60, [25], segment_frames=15, overlap_frames=3, keyframe_step=2
    )
    mts = list(v.microtasks.order_by("index"))
    assert [(m.frame_start, m.frame_end, tuple(m.frames)) for m in mts] == [
        (s.frame_start, s.frame_end, s.frames) for s in expected
    ]
    named = {f["image"] for m in mts for f in m.manifest["frames"]}
    assert stored_files(v.frames_prefix) == named
    assert {n for n in all_stored() if n.startswith("frames/")} == named


@pytest.mark.django_db(transaction=True)
def test_a_stalled_ingestion_is_requeued_and_finished(requester, tmp_path):
    """A video left processing by a worker that died silently is picked up again by beat."""
    from datetime import timedelta

    from django.utils import timezone

    from tasks.ingestion_pipeline import requeue_stalled
    from tasks.ingestion_uploads import video_register_path
    from tasks.tasks import requeue_stalled_ingestions

    clip = make_clip(tmp_path, frames=20)
    job = JobFactory(requester=requester, frame_step=5, frames_per_task=2)
    v = video_register_path(job=job, path=clip.path)
    Job = type(job)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.PROCESSING)
    Video.objects.filter(pk=v.pk).update(status=VideoStatus.PROCESSING, stage="decode")
    assert requeue_stalled() == []  # fresh: not stalled yet
    Video.objects.filter(pk=v.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert requeue_stalled_ingestions() == 1  # the beat task; ingestion runs eagerly
    v.refresh_from_db()
    job.refresh_from_db()
    assert (v.status, job.status, v.microtasks.count()) == ("ready", "ready", 2)
