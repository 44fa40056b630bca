"""Upload and ingest through S3-compatible storage: django-storages against a local moto server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from marketplace.models import JobStatus
from tasks.models import Video
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import make_clip, upload

BUCKET = "crowdlabel-media"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint():
    """A ``moto_server`` on a free loopback port, with an empty bucket."""
    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        client = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        yield url, client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_storage(settings, s3_endpoint):
    url, client = s3_endpoint
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": url,
                "access_key": "test",
                "secret_key": "test",
                "region_name": "us-east-1",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    return client


def _keys(client, prefix: str = "") -> set[str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for o in listing.get("Contents", [])}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_upload_and_ingest_through_s3(s3_storage, requester, requester_client, tmp_path):
    clip = make_clip(tmp_path, frames=50, shot_cuts=(20,))
    job = JobFactory(requester=requester, annotation_type="track", segment_frames=15,
                     overlap_frames=3, keyframe_step=5)  # fmt: skip
    response = upload(requester_client, job.pk, ("clip.mp4", clip.data))
    assert response.status_code == 201, response.content
    v = Video.objects.get(job=job)
    body = s3_storage.get_object(Bucket=BUCKET, Key=v.file.name)["Body"].read()
    assert body == clip.data  # the upload is in the bucket, byte for byte

    assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
    v.refresh_from_db()
    job.refresh_from_db()
    assert (v.status, v.frame_count, v.shot_boundaries, job.status) == (
        "ready", 50, [20], JobStatus.READY,
    )  # fmt: skip
    microtasks = requester_client.get(f"/api/jobs/{job.pk}/microtasks/").json()["results"]
    assert [(m["frame_start"], m["frame_end"]) for m in microtasks] == [
        (0, 14), (12, 19), (20, 34), (32, 46), (44, 49),
    ]  # fmt: skip
    named = {f["image"] for m in microtasks for f in m["manifest"]["frames"]}
    assert _keys(s3_storage, "frames/") == named  # exactly the manifests' frames, no orphans
    url = microtasks[0]["manifest"]["frames"][0]["url"]
    assert url.startswith(s3_storage.meta.endpoint_url) and "Signature" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read(3) == b"\xff\xd8\xff"

    # A re-run (e.g. a redelivered task after the job moved on) changes nothing.
    from tasks.ingestion_pipeline import video_ingest

    video_ingest(video_id=v.pk)
    assert _keys(s3_storage, "frames/") == named


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_failed_ingestion_on_s3_leaves_no_frames(s3_storage, requester, requester_client, tmp_path):
    clip = make_clip(tmp_path, frames=90, motion=3.0)
    job = JobFactory(requester=requester, frame_step=5, frames_per_task=2)
    data = bytearray(clip.data)
    # Damage most of the file after the first frames: decoding starts, then fails.
    for k in range(len(data) // 4, len(data) - 2000, 7):
        data[k] ^= 0x5A
    upload(requester_client, job.pk, ("bad.mp4", bytes(data)))
    requester_client.post(f"/api/jobs/{job.pk}/process/")
    v = Video.objects.get(job=job)
    assert v.status == "failed" and v.failure_reason
    assert _keys(s3_storage, "frames/") == set()
    assert not v.microtasks.exists()
