"""``POST /api/work/assignments/<id>/propagate/``: tracker proposals for a worker's track, on a
real encoded clip (``tasks.synthetic.make_path_scene`` through ``tasks.video.write_video``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.models import JobStatus
from marketplace.settings import base as base_settings
from tasks import synthetic, video
from tasks.models import Assignment, AssignmentStatus
from tests.factories import (
    AssignmentFactory,
    JobFactory,
    MicroTaskFactory,
    VideoFactory,
    WorkerFactory,
)
from tests.tasks.test_tracking import iou

pytestmark = pytest.mark.django_db

W, H, N = 320, 240, 60


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    scene = synthetic.make_path_scene(seed=7, width=W, height=H, frames=N, occlusion=False)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    video.write_video(scene, str(path), gop=12)
    return scene, path.read_bytes()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def true_box(scene, i: int) -> list[float]:
    b = next(b for b in scene.boxes(i) if b.track_id == 0)
    return [float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)]


def _assignment(media, data: bytes | None, *, annotation_type="track", start=0, end=N - 1, **kw):
    job = JobFactory(
        annotation_type=annotation_type, status=JobStatus.PUBLISHED, label_classes=["car"]
    )
    v = VideoFactory(job=job, width=W, height=H, frame_count=N)
    if data is not None:
        v.file.name = default_storage.save(f"videos/job-{job.pk}/clip.mp4", ContentFile(data))
        v.save()
    mt = MicroTaskFactory(
        video=v,
        job=job,
        frame_start=start,
        frame_end=end,
        frames=list(range(start, end + 1, 5)),
        manifest={"width": W, "height": H, "frames": []},
    )
    return AssignmentFactory(microtask=mt, **kw)


def url(a) -> str:
    return f"/api/work/assignments/{a.pk}/propagate/"


def body(scene, *keys: int, **extra) -> dict:
    track = {
        "id": 1,
        "label": "car",
        "keyframes": [{"frame": k, "box": true_box(scene, k)} for k in keys],
    }
    return {"track": track, "from_frame": keys[0], **extra}


def test_forward_proposes_boxes_on_the_workers_frames_that_follow_the_object(
    media, clip, client_for
):
    scene, data = clip
    a = _assignment(media, data)
    client = client_for(a.worker)
    r = client.post(url(a), body(scene, 10), format="json")
    assert r.status_code == 200, r.json()
    out = r.json()
    assert out["mode"] == "forward" and out["from_frame"] == 10 and out["to_frame"] == N - 1
    assert out["truncated"] is False and out["lost_at"] is None
    assert [f["frame"] for f in out["frames"]] == list(range(15, N, 5))
    for f in out["frames"]:
        assert not f["lost"] and 0.5 <= f["confidence"] <= 1
        assert iou(f["box"], true_box(scene, f["frame"])) > 0.75, f
    assert out["elapsed_ms"] >= 0
    # Read only: the assignment is as it was.
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.CLAIMED


def test_forward_stops_before_the_next_keyframe_where_the_object_left(media, clip, client_for):
    scene, data = clip
    a = _assignment(media, data)
    b = body(scene, 10, 30)
    b["track"]["keyframes"][1]["outside"] = True
    r = client_for(a.worker).post(url(a), b, format="json")
    assert r.status_code == 200, r.json()
    assert r.json()["to_frame"] == 29
    assert [f["frame"] for f in r.json()["frames"]] == [15, 20, 25]


def test_between_meets_the_next_keyframe(media, clip, client_for):
    scene, data = clip
    a = _assignment(media, data)
    r = client_for(a.worker).post(url(a), body(scene, 5, 45, mode="between"), format="json")
    assert r.status_code == 200, r.json()
    out = r.json()
    assert out["to_frame"] == 45
    assert [f["frame"] for f in out["frames"]] == list(range(10, 45, 5))
    assert all(iou(f["box"], true_box(scene, f["frame"])) > 0.75 for f in out["frames"])


def test_the_latency_budget_truncates_and_answers_what_was_done(media, clip, client_for, settings):
    scene, data = clip
    settings.TRACKER_LATENCY_BUDGET_SECONDS = 0.0
    a = _assignment(media, data)
    r = client_for(a.worker).post(url(a), body(scene, 0), format="json")
    assert r.status_code == 200
    assert r.json()["truncated"] is True and len(r.json()["frames"]) < 11


@pytest.mark.parametrize(
    "change, field",
    [
        ({"from_frame": 11}, "from_frame"),  # not a keyframe
        ({"to_frame": N}, "to_frame"),  # past the microtask
        ({"to_frame": 3}, "to_frame"),  # before from_frame
        ({"mode": "sideways"}, "mode"),
        ({"mode": "between"}, "from_frame"),  # no next keyframe
        ({"from_frame": -1}, "from_frame"),
        ({"from_frame": N - 1}, "from_frame"),  # the last frame: nothing after it
        ({"track": {"id": 1, "label": "bus", "keyframes": []}}, "track.label"),
        ({"track": "x"}, "track"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(media, clip, client_for, change, field):
    scene, data = clip
    a = _assignment(media, data)
    keys = (10, N - 1) if change.get("from_frame") == N - 1 else (10,)
    r = client_for(a.worker).post(url(a), {**body(scene, *keys), **change}, format="json")
    assert r.status_code == 400, r.json()
    fields = r.json()["error"].get("fields", {})
    assert field in fields, r.json()


def test_a_box_outside_the_frame_is_refused_with_its_path(media, clip, client_for):
    scene, data = clip
    a = _assignment(media, data)
    b = body(scene, 10)
    b["track"]["keyframes"][0]["box"] = [0, 0, W + 50, 10]
    r = client_for(a.worker).post(url(a), b, format="json")
    assert r.status_code == 400
    assert "track.keyframes[0].box" in r.json()["error"]["fields"]


def test_only_the_assignments_own_worker_with_a_live_claim(media, clip, client_for):
    scene, data = clip
    a = _assignment(media, data)
    assert (
        client_for(WorkerFactory()).post(url(a), body(scene, 10), format="json").status_code == 404
    )
    missing = client_for(a.worker).post(
        "/api/work/assignments/999999999/propagate/", body(scene, 10), format="json"
    )
    assert missing.status_code == 404
    expired = _assignment(media, data, deadline=timezone.now() - timedelta(minutes=1))
    r = client_for(expired.worker).post(url(expired), body(scene, 10), format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "claim_expired"
    done = _assignment(media, data, status=AssignmentStatus.SUBMITTED)
    r = client_for(done.worker).post(url(done), body(scene, 10), format="json")
    assert r.status_code == 409
    # Requesters and anonymous callers are no workers.
    requester = a.microtask.job.requester
    assert client_for(requester).post(url(a), body(scene, 10), format="json").status_code == 403


def test_a_job_that_is_not_a_track_job_is_a_409(media, clip, client_for):
    scene, data = clip
    a = _assignment(media, data, annotation_type="bbox")
    r = client_for(a.worker).post(url(a), body(scene, 10), format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_track_job"


def test_a_video_with_no_decodable_frames_is_a_409_not_a_500(media, clip, client_for):
    scene, _ = clip
    a = _assignment(media, b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    r = client_for(a.worker).post(url(a), body(scene, 10), format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "video_unreadable"
    assert "draw" in r.json()["error"]["message"]
    # And a video row whose file is gone altogether.
    gone = _assignment(media, None)
    r = client_for(gone.worker).post(url(gone), body(scene, 10), format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "video_unreadable"


def test_it_is_throttled_per_worker(media, clip, client_for, settings):
    assert isinstance(caches["default"], RedisCache)
    scene, data = clip
    settings.THROTTLE_RATES = {**base_settings.THROTTLE_RATES, "propagate": "2/min"}
    a = _assignment(media, data)
    client = client_for(a.worker)
    b = body(scene, 10, to_frame=20)
    codes = [client.post(url(a), b, format="json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = client.post(url(a), b, format="json")
    assert r.status_code == 429 and int(r["Retry-After"]) > 0


def test_no_database_write_and_no_transaction_while_tracking(media, clip, client_for):
    scene, data = clip
    a = _assignment(media, data)
    client = client_for(a.worker)
    with CaptureQueriesContext(connection) as queries:
        assert client.post(url(a), body(scene, 10), format="json").status_code == 200
    writes = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "authtoken" not in q["sql"]
    ]
    assert writes == []
