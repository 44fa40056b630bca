"""/media/ on local disk: a requester's uploads and frames reach that requester and staff only;
everyone else gets the 404 of a missing file. Public test material stays public."""

from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from tests.factories import AdminFactory, JobFactory, RequesterFactory, VideoFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def _write(name: str, data: bytes) -> None:
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def owned(client):
    owner = RequesterFactory()
    job = JobFactory(requester=owner)
    video = VideoFactory(job=job)
    frame = f"frames/video-{video.pk}/000000.jpg"
    upload = f"videos/job-{job.pk}/clip.mp4"
    _write(frame, b"frame-bytes")
    _write(upload, b"video-bytes")
    return owner, frame, upload


def _get(client, name: str, user=None, **extra):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(f"/media/{name}", **extra)


def test_the_owner_and_staff_read_a_jobs_frames_and_uploads(client, owned):
    owner, frame, upload = owned
    for user in (owner, AdminFactory()):
        r = _get(client, frame, user)
        assert r.status_code == 200
        assert b"".join(r.streaming_content) == b"frame-bytes"
        assert "private" in r["Cache-Control"]
        assert _get(client, upload, user).status_code == 200


def test_anyone_else_gets_a_404(client, owned):
    _owner, frame, upload = owned
    for user in (None, RequesterFactory(), WorkerFactory()):
        assert _get(client, frame, user).status_code == 404
        assert _get(client, upload, user).status_code == 404
    # The same answer as for a file that does not exist.
    assert _get(client, "frames/video-999999/000000.jpg", RequesterFactory()).status_code == 404


def test_the_owners_api_token_works_too(client, owned):
    owner, frame, _upload = owned
    token = Token.objects.create(user=owner)
    r = _get(client, frame, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert r.status_code == 200
    r = _get(client, frame, HTTP_AUTHORIZATION="Token not-a-token")
    assert r.status_code == 404


def test_public_material_stays_public_and_paths_cannot_escape(client, owned):
    _write("qualification/bbox/q1/000000.jpg", b"question")
    assert _get(client, "qualification/bbox/q1/000000.jpg").status_code == 200
    _owner, frame, _upload = owned
    # A path that walks back into a video's frames is judged by where it lands.
    sneaky = "qualification/../" + frame
    assert _get(client, sneaky, WorkerFactory()).status_code == 404
    assert _get(client, "../etc/passwd").status_code == 404
