"""A long video ingested in parts by two real Celery worker processes over Redis."""

from __future__ import annotations

import time

import pytest

from marketplace.models import Job, JobStatus
from tasks import video
from tasks.models import MicroTask, Video, VideoPart
from tasks.synthetic import make_scene
from tests.conftest import celery_workers
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import stored_files, upload


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # the workers get the same folder
    return settings.MEDIA_ROOT


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_parts_of_one_video(requester, requester_client, tmp_path):
    scene = make_scene(
        seed=7, width=160, height=120, frames=240, n_objects=3, motion=2.0,
        classes=("car",), shot_cuts=(100,),
    )  # fmt: skip
    path = tmp_path / "long.mp4"
    video.write_video(scene, str(path), gop=30)
    job = JobFactory(requester=requester, annotation_type="track", segment_frames=20,
                     overlap_frames=4, keyframe_step=5)  # fmt: skip
    assert upload(requester_client, job.pk, ("long.mp4", path.read_bytes())).status_code == 201

    with celery_workers(2, VIDEO_INGEST_PART_SECONDS="1"):
        assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
        deadline = time.monotonic() + 120
        while Job.objects.get(pk=job.pk).status == JobStatus.PROCESSING:
            assert time.monotonic() < deadline, "the workers did not finish the ingestion"
            time.sleep(0.2)

    job.refresh_from_db()
    v = Video.objects.get(job=job)
    assert (job.status, v.frame_count, v.shot_boundaries) == ("ready", 240, [100])
    parts = list(VideoPart.objects.filter(video=v).order_by("index"))
    assert len(parts) == 4 and all(p.status == "done" and p.runs == 1 for p in parts)
    assert {p.worker.split("@")[0] for p in parts} == {"test-worker-0", "test-worker-1"}
    spans = list(
        MicroTask.objects.filter(video=v).order_by("index").values_list("frame_start", "frame_end")
    )
    covered = set()
    for start, end in spans:
        covered |= set(range(start, end + 1))
    assert covered == set(range(240))
    assert all(not (s < 100 <= e) for s, e in spans if s != 100)
    named = {f["image"] for m in MicroTask.objects.filter(video=v) for f in m.manifest["frames"]}
    assert stored_files(v.frames_prefix) == named
