"""The requester's dataset download: consensus results in COCO, MOT and CVAT video XML."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree as ET

import pytest

from quality.models import ConsensusDecision, ConsensusResult
from tests.factories import JobFactory, MicroTaskFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    """A download is streamed: its body is the chunks, read to the end."""
    assert response.streaming
    return b"".join(response.streaming_content)


def _result(mt, frames, current=True):
    return ConsensusResult.objects.create(
        microtask=mt,
        algorithm="test-v1" if current else "old-v0",
        frames=frames,
        agreement=0.9,
        decision=ConsensusDecision.values[0],
        is_current=current,
    )


@pytest.fixture
def box_job(requester):
    job = JobFactory(requester=requester, annotation_type="bbox", label_classes=["car", "person"])
    # Workers saw frames at half the source size: exports scale back to source pixels.
    video = VideoFactory(job=job, width=640, height=360, frame_width=320, frame_height=180)
    a = MicroTaskFactory(video=video, index=0, frame_start=0, frame_end=9, frames=[0, 5])
    b = MicroTaskFactory(video=video, index=1, frame_start=10, frame_end=19, frames=[10])
    _result(a, {"0": [{"label": "car", "box": [10, 20, 30, 60]}], "5": []})
    _result(a, {"0": [{"label": "person", "box": [0, 0, 1, 1]}]}, current=False)
    _result(b, {"10": [{"label": "person", "box": [100, 50, 110, 80]}]})
    return job


def test_coco_export_has_current_consensus_in_source_pixels(requester_client, box_job):
    r = requester_client.get(f"/api/jobs/{box_job.pk}/export/coco/")
    assert r.status_code == 200
    assert r["Content-Disposition"].endswith(f'job-{box_job.pk}-coco.json"')
    doc = json.loads(_body(r))
    assert [i["frame_id"] for i in doc["images"]] == [0, 10]
    assert [a["bbox"] for a in doc["annotations"]] == [[20, 40, 40, 80], [200, 100, 20, 60]]
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert [names[a["category_id"]] for a in doc["annotations"]] == ["car", "person"]


def test_mot_and_cvat_exports(requester_client, box_job):
    mot = requester_client.get(f"/api/jobs/{box_job.pk}/export/mot/")
    with zipfile.ZipFile(io.BytesIO(_body(mot))) as zf:
        rows = zf.read("gt/gt.txt").decode().splitlines()
    assert rows == ["1,1,20,40,40,80,1,1,1.0", "11,2,200,100,20,60,1,2,1.0"]
    cvat = requester_client.get(f"/api/jobs/{box_job.pk}/export/cvat/")
    root = ET.fromstring(_body(cvat))
    assert [t.get("label") for t in root.findall("track")] == ["car", "person"]


def test_track_job_exports_stitched_tracks(requester_client, requester):
    job = JobFactory(requester=requester, annotation_type="track", label_classes=["car"])
    video = VideoFactory(job=job, width=320, height=180, frame_width=320, frame_height=180)
    mt = MicroTaskFactory(video=video, index=0, frame_start=0, frame_end=2, frames=[])
    _result(
        mt,
        {str(f): [{"track": 0, "label": "car", "box": [f, 0, f + 10, 10]}] for f in range(3)},
    )
    root = ET.fromstring(_body(requester_client.get(f"/api/jobs/{job.pk}/export/cvat/")))
    (track,) = root.findall("track")
    assert [b.get("xtl") for b in track if b.get("outside") == "0"] == ["0.00", "1.00", "2.00"]


def test_bad_requests(requester_client, other_requester_client, box_job, requester):
    assert other_requester_client.get(f"/api/jobs/{box_job.pk}/export/coco/").status_code == 404
    bad = requester_client.get(f"/api/jobs/{box_job.pk}/export/pascal/")
    assert bad.status_code == 400 and "coco" in bad.json()["error"]["message"]
    classify = JobFactory(requester=requester, annotation_type="classify")
    assert requester_client.get(f"/api/jobs/{classify.pk}/export/coco/").status_code == 409


def test_job_page_links_the_downloads_once_work_is_published(client, requester, box_job):
    client.force_login(requester)
    url = f"/requester/jobs/{box_job.pk}/"
    assert "Download the dataset" not in client.get(url).content.decode()  # still a draft
    type(box_job).objects.filter(pk=box_job.pk).update(status="published")
    page = client.get(url).content.decode()
    for fmt in ("coco", "mot", "cvat", "labelstudio", "yolo"):
        assert f"/api/jobs/{box_job.pk}/export/{fmt}/" in page
    # A requester's session reaches the API download too.
    assert client.get(f"/api/jobs/{box_job.pk}/export/coco/").status_code == 200


# --- every format: counts equal the consensus, a track across a seam stays one track ----------


def _read(fmt: str, body: bytes) -> dict:
    """Frames with objects, objects and tracks as each format's reader sees them (tracks: None
    where the format has no identities)."""
    if fmt == "coco":
        doc = json.loads(body)
        tracks = {a["attributes"].get("track_id") for a in doc["annotations"]} - {None}
        return {
            "frames": len({a["image_id"] for a in doc["annotations"]}),
            "objects": len(doc["annotations"]),
            "tracks": len(tracks),
        }
    if fmt == "mot":
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            rows = [r.split(",") for r in zf.read("gt/gt.txt").decode().splitlines()]
        return {
            "frames": len({r[0] for r in rows}),
            "objects": len(rows),
            "tracks": len({r[1] for r in rows}),
        }
    if fmt == "cvat":
        root = ET.fromstring(body)
        shown = [
            (t.get("id"), s.get("frame"))
            for t in root.findall("track")
            for s in t
            if s.get("outside") == "0"
        ]
        return {
            "frames": len({f for _, f in shown}),
            "objects": len(shown),
            "tracks": len(root.findall("track")),
        }
    if fmt == "labelstudio":
        from tests.tasks.test_exports import _ls_interpolate

        (task,) = json.loads(body)
        regions = task["annotations"][0]["result"]
        shown = [(r["id"], f) for r in regions for f in _ls_interpolate(r["value"]["sequence"])]
        return {
            "frames": len({f for _, f in shown}),
            "objects": len(shown),
            "tracks": len(regions),
        }
    assert fmt == "yolo"
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        files = [n for n in zf.namelist() if n.startswith("labels/")]
        lines = sum(len(zf.read(n).decode().splitlines()) for n in files)
    return {"frames": len(files), "objects": lines, "tracks": None}


def _track(track, frames, x0, label="car"):
    return {
        f: {"track": track, "label": label, "box": [x0 + 2 * f, 20, x0 + 2 * f + 30, 50]}
        for f in frames
    }


def test_a_track_crossing_a_seam_is_one_track_in_every_format(requester_client, requester):
    """Two segments share frames 8-9; each numbers its tracks from 0, in a different order. The
    stitched consensus has two tracks over 0-17, and so has every format."""
    from quality.exporting import formats_for, job_export_videos
    from tasks.exports import counts

    job = JobFactory(requester=requester, annotation_type="track", label_classes=["car", "person"])
    video = VideoFactory(job=job, width=320, height=180, frame_width=320, frame_height=180)
    left = MicroTaskFactory(video=video, index=0, frame_start=0, frame_end=9, frames=[])
    right = MicroTaskFactory(video=video, index=1, frame_start=8, frame_end=17, frames=[])
    car_l, ped_l = _track(0, range(10), 10), _track(1, range(10), 150, "person")
    car_r, ped_r = _track(1, range(8, 18), 10), _track(0, range(8, 18), 150, "person")
    _result(left, {str(f): [car_l[f], ped_l[f]] for f in range(10)})
    _result(right, {str(f): [ped_r[f], car_r[f]] for f in range(8, 18)})
    expected = {"frames": 18, "objects": 36, "tracks": 2}
    assert counts(job_export_videos(job, {left.pk, right.pk})) == expected
    for fmt, _ in formats_for(job.annotation_type):
        r = requester_client.get(f"/api/jobs/{job.pk}/export/{fmt}/")
        assert r.status_code == 200, (fmt, r)
        seen = _read(fmt, _body(r))
        assert seen == {**expected, "tracks": seen["tracks"] and 2}, fmt
        if fmt != "yolo":  # YOLO has no identities; its per-frame counts are checked above
            assert seen["tracks"] == 2, fmt


def test_box_job_counts_are_the_consensus_in_every_format(requester_client, box_job):
    from quality.exporting import formats_for, job_delivery, job_export_videos
    from tasks.exports import counts

    expected = counts(job_export_videos(box_job, job_delivery(box_job).microtasks))
    assert expected == {"frames": 2, "objects": 2, "tracks": 0}
    for fmt, _ in formats_for(box_job.annotation_type):
        seen = _read(fmt, _body(requester_client.get(f"/api/jobs/{box_job.pk}/export/{fmt}/")))
        # Untracked boxes: CVAT and Label Studio make each a one-frame track of its own.
        tracks = {"cvat": 2, "labelstudio": 2, "mot": 2}.get(fmt, expected["tracks"])
        assert seen == {**expected, "tracks": tracks if fmt != "yolo" else None}, fmt


def test_polygon_job_exports_segmentation_and_refuses_box_only_formats(requester_client, requester):
    from pycocotools.coco import COCO

    job = JobFactory(requester=requester, annotation_type="polygon", label_classes=["car"])
    video = VideoFactory(job=job, width=640, height=360, frame_width=320, frame_height=180)
    mt = MicroTaskFactory(video=video, index=0, frame_start=0, frame_end=9, frames=[0, 5])
    tri = {"label": "car", "points": [[10, 10], [60, 10], [10, 35]]}
    _result(
        mt,
        {
            "0": [tri],
            "5": [
                tri,
                {"label": "car", "points": [[100, 100], [120, 100], [120, 120], [100, 120]]},
            ],
        },
    )
    body = _body(requester_client.get(f"/api/jobs/{job.pk}/export/coco/"))
    doc = json.loads(body)
    assert doc["annotations"][0]["segmentation"] == [[20, 20, 120, 20, 20, 70]]  # source pixels
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    assert len(coco.getAnnIds()) == 3 == _read("coco", body)["objects"]
    assert (
        _read("cvat", _body(requester_client.get(f"/api/jobs/{job.pk}/export/cvat/")))["objects"]
        == 3
    )
    assert _read("yolo", _body(requester_client.get(f"/api/jobs/{job.pk}/export/yolo/"))) == {
        "frames": 2,
        "objects": 3,
        "tracks": None,
    }
    for fmt in ("mot", "labelstudio"):
        r = requester_client.get(f"/api/jobs/{job.pk}/export/{fmt}/")
        assert r.status_code == 409 and "coco, cvat, yolo" in r.json()["error"]["message"]
