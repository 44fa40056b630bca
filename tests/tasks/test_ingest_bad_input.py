"""Every bad input gets a clear error, leaves the job consistent, and nothing partial survives.

Rejected at upload (nothing is stored, no video row): not a video, a zero-byte file, a file over
the size limit, a re-upload of the same bytes, someone else's job, a job that is no longer a
draft. Rejected during ingestion (the video becomes ``failed`` with the reason, no microtask and
no frame of it remains, the job fails when no video succeeded): a truncated file, audio only,
absurd dimensions, a file too damaged to decode.

A corrupt frame in the middle: decoding goes on past it (the decoder conceals the damage, as
players do), the video is ingested, and the number of damaged packets skipped is recorded.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from marketplace.models import JobStatus
from tasks import video
from tasks.api.views import MULTIPART_SLACK
from tasks.models import MicroTask, Video, VideoStatus
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import all_stored, make_clip, upload


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def job(requester):
    return JobFactory(requester=requester, frame_step=10, frames_per_task=3)


def _assert_nothing_stored(job):
    assert not Video.objects.filter(job=job).exists()
    assert all_stored() == set()
    job.refresh_from_db()
    assert job.status == JobStatus.DRAFT


# --- Refused at upload --------------------------------------------------------------------------


@pytest.mark.django_db
def test_text_file_renamed_mp4_is_refused(requester_client, job):
    response = upload(requester_client, job.pk, ("holiday.mp4", b"Dear diary,\n" * 200))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "not_a_video"
    assert "holiday.mp4" in error["message"] and "not a video" in error["message"]
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_zero_byte_file_is_refused(requester_client, job):
    response = upload(requester_client, job.pk, ("empty.mp4", b""))
    assert response.status_code == 400
    assert "empty" in response.json()["error"]["message"]
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_file_over_the_size_limit_is_refused(requester_client, job, tmp_path, settings):
    clip = make_clip(tmp_path, frames=10)
    settings.VIDEO_UPLOAD_MAX_BYTES = len(clip.data) - 1
    response = upload(requester_client, job.pk, ("a.mp4", clip.data))
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_request_far_over_the_limit_is_refused_before_reading_it(requester_client, job, settings):
    settings.VIDEO_UPLOAD_MAX_BYTES = 1000
    big = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 300_000
    response = upload(requester_client, job.pk, ("big.mp4", big))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_upload_to_someone_elses_job_is_not_found(other_requester_client, job, tmp_path):
    clip = make_clip(tmp_path, frames=10)
    response = upload(other_requester_client, job.pk, ("a.mp4", clip.data))
    assert response.status_code == 404
    assert other_requester_client.get(f"/api/jobs/{job.pk}/videos/").status_code == 404
    assert other_requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 404
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_workers_cannot_upload(worker_client, job, tmp_path):
    clip = make_clip(tmp_path, frames=10)
    assert upload(worker_client, job.pk, ("a.mp4", clip.data)).status_code == 403
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_upload_to_a_job_that_is_no_longer_a_draft_conflicts(requester_client, job, tmp_path):
    job.status = JobStatus.READY
    job.save()
    clip = make_clip(tmp_path, frames=10)
    response = upload(requester_client, job.pk, ("a.mp4", clip.data))
    assert response.status_code == 409
    assert "draft" in response.json()["error"]["message"]
    assert not Video.objects.filter(job=job).exists()
    assert all_stored() == set()


@pytest.mark.django_db
def test_reupload_of_the_same_file_is_refused_naming_the_existing_video(
    requester_client, job, tmp_path
):
    clip = make_clip(tmp_path, frames=10)
    first = upload(requester_client, job.pk, ("a.mp4", clip.data))
    assert first.status_code == 201
    existing = first.json()["videos"][0]["id"]
    again = upload(requester_client, job.pk, ("renamed.mp4", clip.data))
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "duplicate_video" and error["video"] == existing
    assert f"#{existing}" in error["message"]
    assert Video.objects.filter(job=job).count() == 1
    assert len([n for n in all_stored() if n.startswith("videos/")]) == 1


@pytest.mark.django_db
def test_a_multi_upload_adds_the_good_files_and_names_each_bad_one(requester_client, job, tmp_path):
    clip = make_clip(tmp_path, frames=10)
    response = upload(
        requester_client,
        job.pk,
        ("notes.mp4", b"text " * 50),
        ("a.mp4", clip.data),
        ("empty.mp4", b""),
        ("again.mp4", clip.data),
    )
    assert response.status_code == 201
    body = response.json()
    assert [v["original_name"] for v in body["videos"]] == ["a.mp4"]
    refused = {r["name"]: r for r in body["refused"]}
    assert list(refused) == ["notes.mp4", "empty.mp4", "again.mp4"]
    assert refused["notes.mp4"]["code"] == "not_a_video"
    assert refused["empty.mp4"]["code"] == "invalid"
    assert refused["again.mp4"]["code"] == "duplicate_video"
    for name, r in refused.items():
        assert f"“{name}”" in r["message"]
    assert list(Video.objects.filter(job=job).values_list("original_name", flat=True)) == ["a.mp4"]
    assert len([n for n in all_stored() if n.startswith("videos/")]) == 1


@pytest.mark.django_db
def test_an_oversized_file_among_good_ones_is_named_and_the_others_added(
    requester_client, job, tmp_path, settings
):
    small = make_clip(tmp_path, frames=20, name="small.mp4", seed=1)
    settings.VIDEO_UPLOAD_MAX_BYTES = limit = len(small.data)
    # Over the per-video limit, and the request over one video's worth (the old pre-check
    # refused the whole request on that); within a full upload's room, so it is read and named.
    large = b"\x00\x00\x00\x18ftypisom" + b"\x00" * (limit + MULTIPART_SLACK)
    assert limit * 2 + MULTIPART_SLACK < len(large) + limit < limit * 20
    response = upload(requester_client, job.pk, ("large.mp4", large), ("small.mp4", small.data))
    assert response.status_code == 201
    body = response.json()
    assert [v["original_name"] for v in body["videos"]] == ["small.mp4"]
    assert [(r["name"], r["code"]) for r in body["refused"]] == [("large.mp4", "too_large")]


@pytest.mark.django_db
def test_more_files_than_an_upload_takes_is_a_400(requester_client, job, tmp_path, settings):
    settings.VIDEO_UPLOAD_MAX_FILES = 2
    clips = [make_clip(tmp_path, frames=5, name=f"{i}.mp4", seed=i) for i in range(3)]
    response = upload(requester_client, job.pk, *[(c.path.name, c.data) for c in clips])
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_a_multi_upload_of_only_bad_files_names_each_and_stores_none(requester_client, job):
    response = upload(requester_client, job.pk, ("a.mp4", b"text " * 50), ("b.mp4", b""))
    assert response.status_code == 400
    error = response.json()["error"]
    assert [r["name"] for r in error["refused"]] == ["a.mp4", "b.mp4"]
    assert len(error["fields"]["file"]) == 2
    _assert_nothing_stored(job)


@pytest.mark.django_db
def test_the_upload_page_adds_the_good_file_and_names_the_bad_one(client, job, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    clip = make_clip(tmp_path, frames=10)
    client.force_login(job.requester)
    files = [SimpleUploadedFile("good.mp4", clip.data), SimpleUploadedFile("bad.mp4", b"x" * 99)]
    page = client.post(f"/requester/jobs/{job.pk}/videos/", {"file": files}, follow=True)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Uploaded good.mp4" in text
    assert "“bad.mp4” is not a video" in text
    assert list(Video.objects.filter(job=job).values_list("original_name", flat=True)) == [
        "good.mp4"
    ]


# --- Failed during ingestion --------------------------------------------------------------------


def _ingest_bad(client, job, name: str, data: bytes) -> Video:
    assert upload(client, job.pk, (name, data)).status_code == 201
    assert client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
    v = Video.objects.get(job=job)
    assert v.status == VideoStatus.FAILED
    assert v.stage == "failed"
    assert not MicroTask.objects.filter(video=v).exists()
    assert not [n for n in all_stored() if n.startswith("frames/")]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert f"video #{v.pk}" in job.failure_reason and v.failure_reason in job.failure_reason
    return v


@pytest.mark.django_db(transaction=True)
def test_truncated_mp4_fails_with_a_reason(requester_client, job, tmp_path):
    clip = make_clip(tmp_path, frames=30)
    v = _ingest_bad(requester_client, job, "cut.mp4", clip.data[: len(clip.data) // 2])
    assert "damaged" in v.failure_reason


@pytest.mark.django_db(transaction=True)
def test_truncated_webm_fails_with_a_reason(requester_client, job, tmp_path):
    clip = make_clip(tmp_path, frames=60, codec="libvpx-vp9", name="a.webm")
    v = _ingest_bad(requester_client, job, "cut.webm", clip.data[: len(clip.data) // 3])
    assert "truncated" in v.failure_reason


@pytest.mark.django_db(transaction=True)
def test_audio_only_container_fails_with_a_reason(requester_client, job, tmp_path):
    path = video.write_audio_only(str(tmp_path / "song.m4a"))
    v = _ingest_bad(requester_client, job, "song.mp4", (tmp_path / "song.m4a").read_bytes())
    assert "no video stream" in v.failure_reason and "audio" in v.failure_reason
    assert path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("width", "height", "words"), [(8, 8, "at least"), (8000, 16, "largest")])
def test_absurd_dimensions_fail_with_a_reason(
    requester_client, job, tmp_path, width, height, words
):
    clip = make_clip(tmp_path, frames=3, width=width, height=height, n_objects=1)
    v = _ingest_bad(requester_client, job, "odd.mp4", clip.data)
    assert f"{width}x{height}" in v.failure_reason and words in v.failure_reason


def _corrupt(data: bytes, path, packets, *, whole: bool = True) -> bytes:
    """Flip bits inside the given video packets (by index) of the file at ``path``.

    ``whole=False`` spares the packet's first and last quarter, so the container's framing
    survives and only the coded picture is damaged.
    """
    with av.open(str(path)) as container:
        where = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    out = bytearray(data)
    for k in packets:
        pos, size = where[k]
        first, last = (pos + 2, pos + size) if whole else (pos + size // 4, pos + 3 * size // 4)
        for j in range(first, last):
            out[j] ^= 0x5A
    return bytes(out)


@pytest.mark.django_db(transaction=True)
def test_file_too_damaged_to_decode_fails_cleanly(requester_client, job, tmp_path):
    clip = make_clip(tmp_path, frames=90, motion=3.0)
    bad = _corrupt(clip.data, clip.path, range(10, 90, 2))
    v = _ingest_bad(requester_client, job, "bad.mp4", bad)
    assert "corrupt" in v.failure_reason or "damaged" in v.failure_reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("codec", "name", "reports_damage"),
    [("libx264", "a.mp4", True), ("libvpx-vp9", "a.webm", False)],
)
def test_corrupt_frame_in_the_middle_is_decoded_past(
    requester_client, job, tmp_path, codec, name, reports_damage
):
    """H.264 reports the damage it conceals (recorded on the video); VP9 decodes it silently."""
    clip = make_clip(tmp_path, frames=90, motion=3.0, codec=codec, name=name)
    bad = _corrupt(clip.data, clip.path, [45], whole=False)
    assert upload(requester_client, job.pk, (name, bad)).status_code == 201
    requester_client.post(f"/api/jobs/{job.pk}/process/")
    v = Video.objects.get(job=job)
    job.refresh_from_db()
    assert (v.status, job.status) == (VideoStatus.READY, JobStatus.READY)
    # At most the damaged frame is lost; the timeline goes on to the last frame.
    assert v.frame_count in (89, 90)
    truth_times = {round(t, 3) for t in clip.written.times}
    manifests = [m.manifest for m in v.microtasks.order_by("index")]
    times = [f["time"] for m in manifests for f in m["frames"]]
    assert all(round(t, 3) in truth_times for t in times)
    assert max(times) >= 80 / 30
    if reports_damage:
        assert v.bad_packets >= 1
    else:
        assert (v.bad_packets, v.frame_count) == (0, 90)


@pytest.mark.django_db(transaction=True)
def test_a_bad_video_does_not_fail_a_job_with_a_good_one(requester_client, job, tmp_path):
    good = make_clip(tmp_path, frames=30)
    audio = video.write_audio_only(str(tmp_path / "song.m4a"))
    upload(requester_client, job.pk, ("good.mp4", good.data))
    upload(requester_client, job.pk, ("song.mp4", Path(audio).read_bytes()))
    requester_client.post(f"/api/jobs/{job.pk}/process/")
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    statuses = dict(Video.objects.filter(job=job).values_list("original_name", "status"))
    assert statuses == {"good.mp4": "ready", "song.mp4": "failed"}
    progress = requester_client.get(f"/api/jobs/{job.pk}/ingestion/").json()
    assert (progress["videos_ready"], progress["videos_failed"]) == (1, 1)
    assert progress["microtasks"] == MicroTask.objects.filter(job=job).count() == 1
