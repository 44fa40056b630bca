"""Ingestion through a real Celery worker process over Redis."""

from __future__ import annotations

import time

import pytest

from marketplace.models import Job, JobStatus
from tasks.models import MicroTask, Video
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import make_clip, stored_files, upload


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # the worker process gets the same folder
    return settings.MEDIA_ROOT


@pytest.mark.slow
def test_a_real_worker_ingests_a_video_end_to_end(
    celery_worker_process, requester, requester_client, tmp_path
):
    clip = make_clip(tmp_path, frames=75, shot_cuts=(30,), codec="libvpx-vp9", name="a.webm")
    job = JobFactory(requester=requester, annotation_type="track", segment_frames=20,
                     overlap_frames=4, keyframe_step=5)  # fmt: skip
    assert upload(requester_client, job.pk, ("a.webm", clip.data)).status_code == 201
    assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202

    deadline = time.monotonic() + 90
    while Job.objects.get(pk=job.pk).status == JobStatus.PROCESSING:
        assert time.monotonic() < deadline, "the worker did not finish the ingestion"
        time.sleep(0.3)
    job.refresh_from_db()
    v = Video.objects.get(job=job)
    assert (job.status, v.status, v.frame_count, v.shot_boundaries) == ("ready", "ready", 75, [30])
    spans = list(
        MicroTask.objects.filter(video=v).order_by("index").values_list("frame_start", "frame_end")
    )
    assert spans == [(0, 19), (16, 29), (30, 49), (46, 65), (62, 74)]
    named = {f["image"] for m in MicroTask.objects.filter(video=v) for f in m.manifest["frames"]}
    assert stored_files(v.frames_prefix) == named
