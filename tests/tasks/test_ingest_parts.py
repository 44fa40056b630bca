"""A long video ingested in parts (time ranges decoded from their keyframes), then joined.

The parts run as Celery tasks: eagerly here, on real worker processes in
``test_ingest_parts_workers.py``. What must hold at every seam: no frame range planned twice or
left out, overlap across a seam exactly as inside a part, no segment across a shot cut, every
frame stored once, and the same shots as a single pass finds.
"""

from __future__ import annotations

import itertools
import re

import pytest
from django.core.files.storage import default_storage

from marketplace.models import JobStatus
from tasks import features, video
from tasks.ingestion_parts import video_ingest_part
from tasks.ingestion_pipeline import video_ingest
from tasks.models import MicroTask, Video, VideoPart, VideoStatus
from tasks.synthetic import make_scene
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import stored_files, upload

FRAMES = 300  # 10 s at 30 fps; keyframes every 30 frames
CUTS = (90, 122, 180)  # inside a part, inside a seam's shared frames, on a seam's keyframe


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VIDEO_FRAME_MAX_WIDTH = 96
    settings.VIDEO_FRAME_MAX_HEIGHT = 96
    return settings.MEDIA_ROOT


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> bytes:
    scene = make_scene(
        seed=4, width=160, height=120, frames=FRAMES, n_objects=3, motion=2.0,
        classes=("car", "person"), shot_cuts=CUTS,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("parts") / "long.mp4"
    video.write_video(scene, str(path), gop=30)
    return path.read_bytes()


def _ingest(client, requester, data: bytes, **job_fields) -> Video:
    job = JobFactory(requester=requester, **job_fields)
    assert upload(client, job.pk, ("long.mp4", data)).status_code == 201
    assert client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
    job.refresh_from_db()
    assert job.status == JobStatus.READY, job.failure_reason
    return Video.objects.get(job=job)


TRACK = {"annotation_type": "track", "segment_frames": 20, "overlap_frames": 4, "keyframe_step": 5}


def _stored_frame_numbers(v: Video) -> list[int]:
    return sorted(int(re.match(r"(\d+)", n.rsplit("/", 1)[1]).group(1)) for n in stored(v))


def stored(v: Video) -> set[str]:
    return stored_files(v.frames_prefix)


@pytest.mark.django_db(transaction=True)
def test_track_parts_cover_every_frame_once_with_overlap_across_seams(
    settings, requester, requester_client, long_clip
):
    settings.VIDEO_INGEST_PART_SECONDS = 2.0  # 5 parts, seams at frames 60, 120, 180, 240
    v = _ingest(requester_client, requester, long_clip, **TRACK)
    parts = list(VideoPart.objects.filter(video=v).order_by("index"))
    assert [p.decode_from for p in parts] == [0, 60, 120, 180, 240]
    assert all(p.status == "done" and p.runs == 1 and p.result is None for p in parts)
    assert (v.status, v.progress, v.frame_count) == (VideoStatus.READY, 100.0, FRAMES)
    assert v.shot_boundaries == list(CUTS)

    mts = list(MicroTask.objects.filter(video=v).order_by("index"))
    spans = [(m.frame_start, m.frame_end) for m in mts]
    assert spans == sorted(spans) and len(set(spans)) == len(spans)
    assert spans[0][0] == 0 and spans[-1][1] == FRAMES - 1
    for m in mts:  # never across a cut; annotated frames are the segment's keyframes
        assert not any(m.frame_start < c <= m.frame_end for c in CUTS)
        assert tuple(m.frames) == features.keyframes(m.frame_start, m.frame_end, 5)
        assert m.manifest["shot"] == sum(c <= m.frame_start for c in CUTS)
    for a, b in itertools.pairwise(mts):
        if a.manifest["shot"] == b.manifest["shot"]:  # the track overlap, at seams too
            assert b.frame_start == a.frame_end - 4 + 1
            assert a.manifest["overlap_next"] == b.manifest["overlap_previous"] == 4
        else:  # a cut: the next shot starts right after, with no overlap
            assert b.frame_start == a.frame_end + 1 and b.frame_start in CUTS
            assert a.manifest["overlap_next"] == b.manifest["overlap_previous"] == 0
    # The seam at 120 shares frames 120..123 with part 1's last segment, which stops at the
    # cut at 122: part 2 drops its head [120, 121], so nothing is planned twice.
    assert (106, 121) in spans and (120, 121) not in spans and (122, 141) in spans

    # Every frame a manifest names exists, once: no orphans, no second copy at a seam.
    named = {f["image"] for m in mts for f in m.manifest["frames"]}
    assert stored(v) == named
    numbers = _stored_frame_numbers(v)
    assert len(numbers) == len(set(numbers))
    assert set(numbers) == {i for m in mts for i in m.frames}


@pytest.mark.django_db(transaction=True)
def test_parts_find_what_one_pass_finds(settings, requester, requester_client, long_clip):
    """The cuts, frame count, frame times and the sampled frames of per-frame work are the same
    whether the video is decoded in one pass or in parts."""
    frame_job = {"annotation_type": "bbox", "frame_step": 3, "frames_per_task": 8}
    settings.VIDEO_INGEST_PART_SECONDS = 1000.0
    whole = _ingest(requester_client, requester, long_clip, **frame_job)
    assert not VideoPart.objects.filter(video=whole).exists()
    settings.VIDEO_INGEST_PART_SECONDS = 2.0
    split = _ingest(requester_client, requester, long_clip, **frame_job)
    assert VideoPart.objects.filter(video=split).count() == 5

    assert (split.frame_count, split.shot_boundaries) == (whole.frame_count, whole.shot_boundaries)

    def frames(v):
        return [
            (f["frame"], f["time"])
            for m in MicroTask.objects.filter(video=v).order_by("index")
            for f in m.manifest["frames"]
        ]

    assert frames(split) == frames(whole) == [(i, pytest.approx(i / 30)) for i in range(0, 300, 3)]
    # Groups restart at each part's first sampled frame; no group spans a seam.
    for m in MicroTask.objects.filter(video=split):
        assert not any(m.frame_start < s <= m.frame_end for s in (60, 120, 180, 240))
    assert stored(split) == {
        f["image"] for m in MicroTask.objects.filter(video=split) for f in m.manifest["frames"]
    }


@pytest.mark.django_db
def test_a_failing_part_is_retried_alone(
    settings, monkeypatch, requester, requester_client, long_clip,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    """A storage error in part 2 cleans part 2's files and fails part 2 only (its task retries
    it); the other parts' work is kept, and the retry completes the video with nothing doubled.
    The tasks are queued on commit; here each is run by hand, in the order a broker might."""
    settings.VIDEO_INGEST_PART_SECONDS = 2.0
    job = JobFactory(requester=requester, **TRACK)
    assert upload(requester_client, job.pk, ("long.mp4", long_clip)).status_code == 201
    with django_capture_on_commit_callbacks(execute=False):
        assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
    v = Video.objects.get(job=job)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        video_ingest(video_id=v.pk)
    parts = list(VideoPart.objects.filter(video=v).order_by("index"))
    assert len(queued) == len(parts) == 5

    real_save = default_storage.save
    failures = []

    def flaky_save(name, content, *args, **kwargs):
        if name.endswith("-p2.jpg") and len(failures) < 1 and len(_files(v, "-p2")) >= 2:
            failures.append(name)
            raise OSError("storage briefly unreachable")
        return real_save(name, content, *args, **kwargs)

    monkeypatch.setattr(default_storage, "save", flaky_save)
    outcomes = []
    for part in parts:
        if part.index == 2:
            with pytest.raises(OSError):
                video_ingest_part(part_id=part.pk)
            assert _files(v, "-p2") == set()  # what it wrote before failing is gone
        else:
            outcomes.append(video_ingest_part(part_id=part.pk))
    assert outcomes == ["done"] * 4
    v.refresh_from_db()
    assert v.status == VideoStatus.PROCESSING and 0 < v.progress < 100
    assert video_ingest_part(part_id=parts[2].pk) == "joined"
    assert video_ingest_part(part_id=parts[3].pk) == "done"  # a redelivery changes nothing

    v.refresh_from_db()
    job.refresh_from_db()
    assert (v.status, v.attempts, job.status) == (VideoStatus.READY, 1, JobStatus.READY)
    assert [p.runs for p in VideoPart.objects.filter(video=v).order_by("index")] == [1, 1, 2, 1, 1]
    mts = list(MicroTask.objects.filter(video=v).order_by("index"))
    assert stored(v) == {f["image"] for m in mts for f in m.manifest["frames"]}
    numbers = _stored_frame_numbers(v)
    assert len(numbers) == len(set(numbers))


def _files(v: Video, suffix: str) -> set[str]:
    return {n for n in stored(v) if n.endswith(f"{suffix}.jpg")}


@pytest.mark.django_db(transaction=True)
def test_a_part_of_a_superseded_attempt_writes_nothing(settings, requester, long_clip, tmp_path):
    """A part delivered after its attempt was replaced (a re-run, a failure) leaves no files and
    no microtasks."""
    settings.VIDEO_INGEST_PART_SECONDS = 2.0
    job = JobFactory(requester=requester, status=JobStatus.PROCESSING, **TRACK)
    v = Video.objects.create(job=job, original_name="long.mp4", status=VideoStatus.PROCESSING)
    v.file.name = default_storage.save("videos/long.mp4", open_bytes(long_clip, tmp_path))
    v.attempts = 2
    v.save()
    part = VideoPart.objects.create(
        video=v, attempt=1, index=1, start_pts=0, decode_from=60, first_frame=64, plan_end=124,
        decode_to=124, seam=120, total_frames=FRAMES,
    )  # fmt: skip
    assert video_ingest_part(part_id=part.pk) == "superseded"
    assert stored(v) == set() and not MicroTask.objects.filter(video=v).exists()


def open_bytes(data: bytes, folder):
    from django.core.files import File

    path = folder / "long.mp4"
    path.write_bytes(data)
    return File(path.open("rb"), name="long.mp4")


@pytest.mark.django_db
def test_the_stall_sweep_requeues_the_unfinished_parts_only(
    settings, requester, requester_client, long_clip, django_capture_on_commit_callbacks
):
    """A worker died during part 3: the sweep sends parts 3 and 4 again, not the video (the
    finished parts are not redone)."""
    from datetime import timedelta

    from django.utils import timezone

    from tasks.ingestion_pipeline import requeue_stalled

    settings.VIDEO_INGEST_PART_SECONDS = 2.0
    job = JobFactory(requester=requester, **TRACK)
    assert upload(requester_client, job.pk, ("long.mp4", long_clip)).status_code == 201
    with django_capture_on_commit_callbacks(execute=False):
        assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
    v = Video.objects.get(job=job)
    with django_capture_on_commit_callbacks(execute=False):
        video_ingest(video_id=v.pk)
    parts = list(VideoPart.objects.filter(video=v).order_by("index"))
    for part in parts[:3]:
        assert video_ingest_part(part_id=part.pk) == "done"
    VideoPart.objects.filter(pk=parts[3].pk).update(status="running", runs=1)  # died mid-way
    later = timezone.now() + timedelta(seconds=settings.VIDEO_INGEST_STALL_SECONDS + 1)
    assert requeue_stalled(now=later) == [v.pk]  # the parts ran eagerly
    v.refresh_from_db()
    assert (v.status, v.attempts) == (VideoStatus.READY, 1)
    assert [p.runs for p in VideoPart.objects.filter(video=v).order_by("index")] == [1, 1, 1, 2, 1]


@pytest.mark.django_db(transaction=True)
def test_a_part_writes_its_frames_on_its_own_thread_a_whole_video_on_a_helper(
    settings, monkeypatch, requester, requester_client, long_clip
):
    """A part is one worker's one core: its JPEGs are encoded and saved on the task's thread
    (the parallelism of a long video is across workers). A video decoded in one pass overlaps
    them with decoding on its helper thread."""
    import threading

    real_save = default_storage.save
    writers: dict[str, set[str]] = {}

    def save(name, content, *args, **kwargs):
        if name.endswith(".jpg"):  # a frame (the upload itself is saved by the request)
            kind = "part" if re.search(r"-p\d+\.jpg$", name) else "whole"
            writers.setdefault(kind, set()).add(threading.current_thread().name)
        return real_save(name, content, *args, **kwargs)

    monkeypatch.setattr(default_storage, "save", save)
    settings.VIDEO_INGEST_PART_SECONDS = 2.0
    _ingest(requester_client, requester, long_clip, **TRACK)
    settings.VIDEO_INGEST_PART_SECONDS = 1000.0
    _ingest(requester_client, requester, long_clip, **TRACK)
    assert writers["part"] == {threading.current_thread().name}
    (helper,) = writers["whole"]
    assert helper.startswith("frames-")
