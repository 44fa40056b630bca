"""The ingestion API and page: upload, list, delete, process, progress, manifests."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from marketplace.models import JobStatus
from tasks import ingestion_common, ingestion_pipeline
from tasks.models import MicroTask, Video
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import all_stored, make_clip, upload


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def job(requester):
    return JobFactory(requester=requester, frame_step=10, frames_per_task=2, expected_objects=4)


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path, frames=40)


@pytest.mark.django_db
def test_upload_lists_and_retrieves_videos_with_status(requester_client, job, clip):
    response = upload(requester_client, job.pk, ("street.mp4", clip.data))
    assert response.status_code == 201
    (body,) = response.json()["videos"]
    assert response.json()["refused"] == []
    assert body["status"] == "uploaded" and body["original_name"] == "street.mp4"
    assert body["size_bytes"] == len(clip.data)
    import hashlib

    assert body["checksum"] == hashlib.sha256(clip.data).hexdigest()
    v = Video.objects.get(pk=body["id"])
    assert v.file.name == f"videos/job-{job.pk}/{body['checksum'][:16]}.mp4"
    with default_storage.open(v.file.name) as fh:
        assert fh.read() == clip.data

    listing = requester_client.get(f"/api/jobs/{job.pk}/videos/").json()
    assert [r["id"] for r in listing["results"]] == [v.pk]
    detail = requester_client.get(f"/api/jobs/{job.pk}/videos/{v.pk}/").json()
    assert (detail["status"], detail["stage"], detail["progress"]) == ("uploaded", "", 0.0)


@pytest.mark.django_db
def test_file_name_is_not_trusted_extension_comes_from_content(requester_client, job, tmp_path):
    webm = make_clip(tmp_path, frames=10, codec="libvpx-vp9", name="a.webm")
    body = upload(requester_client, job.pk, ("looks-like.mp4", webm.data)).json()["videos"][0]
    assert Video.objects.get(pk=body["id"]).file.name.endswith(".mkv")


@pytest.mark.django_db
def test_several_files_in_one_upload(requester_client, job, tmp_path):
    a = make_clip(tmp_path, frames=10, name="a.mp4", seed=1)
    b = make_clip(tmp_path, frames=10, name="b.mp4", seed=2)
    response = upload(requester_client, job.pk, ("a.mp4", a.data), ("b.mp4", b.data))
    assert response.status_code == 201
    assert [v["original_name"] for v in response.json()["videos"]] == ["a.mp4", "b.mp4"]


@pytest.mark.django_db
def test_delete_a_video_while_draft_removes_its_file(
    requester_client, job, clip, django_capture_on_commit_callbacks
):
    vid = upload(requester_client, job.pk, ("a.mp4", clip.data)).json()["videos"][0]["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = requester_client.delete(f"/api/jobs/{job.pk}/videos/{vid}/")
    assert response.status_code == 204
    assert not Video.objects.filter(pk=vid).exists()
    assert all_stored() == set()


@pytest.mark.django_db
def test_delete_after_draft_conflicts(requester_client, job, clip):
    vid = upload(requester_client, job.pk, ("a.mp4", clip.data)).json()["videos"][0]["id"]
    job.status = JobStatus.PROCESSING
    job.save()
    assert requester_client.delete(f"/api/jobs/{job.pk}/videos/{vid}/").status_code == 409
    assert Video.objects.filter(pk=vid).exists()


@pytest.mark.django_db
def test_processing_needs_a_video(requester_client, job):
    response = requester_client.post(f"/api/jobs/{job.pk}/process/")
    assert response.status_code == 400
    assert "at least one video" in response.json()["error"]["message"]
    job.refresh_from_db()
    assert job.status == JobStatus.DRAFT


@pytest.mark.django_db(transaction=True)
def test_process_ingests_and_exposes_progress_and_manifests(requester_client, job, clip):
    upload(requester_client, job.pk, ("a.mp4", clip.data))
    response = requester_client.post(f"/api/jobs/{job.pk}/process/")
    assert response.status_code == 202
    assert response.json()["status"] == "processing"  # the state the request left it in
    job.refresh_from_db()
    assert job.status == JobStatus.READY  # eager Celery ran the ingestion on commit

    progress = requester_client.get(f"/api/jobs/{job.pk}/ingestion/").json()
    assert progress["status"] == "ready" and progress["progress"] == 100.0
    assert (progress["videos_total"], progress["videos_ready"]) == (1, 1)
    assert progress["videos"][0]["stage"] == "done"
    assert progress["microtasks"] == 2

    page = requester_client.get(f"/api/jobs/{job.pk}/microtasks/").json()
    results = page["results"]
    assert [r["frames"] for r in results] == [[0, 10], [20, 30]]
    first = results[0]
    assert first["expected_objects"] == 4 and first["price"] == 0
    assert 1.0 <= first["complexity"] <= 3.0
    frames = first["manifest"]["frames"]
    assert [f["frame"] for f in frames] == [0, 10]
    assert frames[1]["time"] == pytest.approx(10 / 30)
    assert frames[0]["url"] == f"/media/{frames[0]['image']}"
    assert (first["manifest"]["width"], first["manifest"]["height"]) == (160, 120)
    with default_storage.open(frames[0]["image"]) as fh:
        assert fh.read(3) == b"\xff\xd8\xff"  # a JPEG

    one = requester_client.get(f"/api/jobs/{job.pk}/microtasks/{first['id']}/").json()
    assert one["manifest"]["frames"][0]["url"] == frames[0]["url"]
    # Nothing to process twice.
    assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 409


@pytest.mark.django_db(transaction=True)
def test_progress_is_reported_stage_by_stage(requester_client, job, tmp_path, monkeypatch):
    clip = make_clip(tmp_path, frames=60)
    upload(requester_client, job.pk, ("a.mp4", clip.data))
    seen: list[tuple[str, float]] = []
    real = ingestion_common._set_stage
    monkeypatch.setattr(ingestion_common._Progress, "interval", 0.0)
    # The decode progress is written from ingestion_common, the save stage from the pipeline.
    for module in (ingestion_common, ingestion_pipeline):
        monkeypatch.setattr(
            module, "_set_stage", lambda pk, stage, p: (seen.append((stage, p)), real(pk, stage, p))
        )
    requester_client.post(f"/api/jobs/{job.pk}/process/")
    decode = [p for stage, p in seen if stage == "decode"]
    assert len(decode) == 60  # one write per frame with the throttle off
    assert decode == sorted(decode) and decode[0] == pytest.approx(95 / 60)
    assert decode[-1] == 95.0
    assert seen[-1] == ("save", 97.0)
    assert Video.objects.get(job=job).progress == 100.0


@pytest.mark.django_db
def test_other_requesters_and_workers_see_nothing(
    requester_client, other_requester_client, worker_client, job, clip
):
    vid = upload(requester_client, job.pk, ("a.mp4", clip.data)).json()["videos"][0]["id"]
    for url in (
        f"/api/jobs/{job.pk}/videos/",
        f"/api/jobs/{job.pk}/videos/{vid}/",
        f"/api/jobs/{job.pk}/ingestion/",
        f"/api/jobs/{job.pk}/microtasks/",
    ):
        assert other_requester_client.get(url).status_code == 404, url
        assert worker_client.get(url).status_code == 403, url
    assert other_requester_client.delete(f"/api/jobs/{job.pk}/videos/{vid}/").status_code == 404
    assert Video.objects.filter(pk=vid).exists()


# --- The page -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_job_page_uploads_processes_and_shows_progress(client, requester, job, clip):
    client.force_login(requester)
    page = client.get(f"/requester/jobs/{job.pk}/")
    assert b'id="upload-form"' in page.content and b"No videos yet" in page.content

    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        f"/requester/jobs/{job.pk}/videos/", {"file": [SimpleUploadedFile("a.mp4", clip.data)]}
    )
    assert response.status_code == 302
    page = client.get(f"/requester/jobs/{job.pk}/")
    assert b"a.mp4" in page.content and b'id="process-form"' in page.content

    bad = client.post(
        f"/requester/jobs/{job.pk}/videos/",
        {"file": [SimpleUploadedFile("b.mp4", b"hello")]},
        follow=True,
    )
    assert "not a video" in bad.content.decode()

    client.post(f"/requester/jobs/{job.pk}/process/")
    page = client.get(f"/requester/jobs/{job.pk}/").content.decode()
    assert 'id="upload-form"' not in page
    assert "Microtasks" in page and "Complexity" in page
    assert 'class="v-stage">done<' in page and 'value="100"' in page


@pytest.mark.django_db
def test_job_page_is_not_found_for_another_requester(client, other_requester, job, clip):
    client.force_login(other_requester)
    assert client.post(f"/requester/jobs/{job.pk}/process/").status_code == 404


# --- The management command ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_register_videos_from_a_folder_with_progress_and_process(job, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    make_clip(folder, frames=20, name="one.mp4", seed=1)
    make_clip(folder, frames=20, name="two.avi", codec="mpeg4", seed=2)
    (folder / "notes.txt").write_text("not a video")
    out, err = io.StringIO(), io.StringIO()
    call_command("register_videos", str(folder), job=job.pk, process=True, stdout=out, stderr=err)
    assert "Registered 2 video(s)" in out.getvalue() and "1 skipped" in out.getvalue()
    assert "notes.txt" in err.getvalue() and "not a video" in err.getvalue()
    assert "video/s" in err.getvalue() or "3/3" in err.getvalue()  # the tqdm bar
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    assert sorted(Video.objects.filter(job=job).values_list("original_name", flat=True)) == [
        "one.mp4",
        "two.avi",
    ]
    assert MicroTask.objects.filter(job=job).count() == 2


@pytest.mark.django_db
def test_register_videos_already_in_storage(job, tmp_path):
    from django.core.files.base import ContentFile

    clip = make_clip(tmp_path, frames=10)
    default_storage.save("bulk/cam1/a.mp4", ContentFile(clip.data))
    out = io.StringIO()
    call_command("register_videos", "bulk", job=job.pk, from_storage=True, stdout=out,
                 stderr=io.StringIO())  # fmt: skip
    v = Video.objects.get(job=job)
    assert v.file.name == "bulk/cam1/a.mp4" and v.size_bytes == len(clip.data)
    with pytest.raises(CommandError):
        call_command("register_videos", "nowhere", job=job.pk, from_storage=True,
                     stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
