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
    doc = json.loads(r.getvalue())
    assert [i["frame_id"] for i in doc["images"]] == [0, 10]
    assert [a["bbox"] for a in doc["annotations"]] == [[20, 40, 40, 80], [200, 100, 20, 60]]
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert [names[a["category_id"]] for a in doc["annotations"]] == ["car", "person"]


def test_mot_and_cvat_exports(requester_client, box_job):
    mot = requester_client.get(f"/api/jobs/{box_job.pk}/export/mot/")
    with zipfile.ZipFile(io.BytesIO(mot.getvalue())) as zf:
        rows = zf.read("gt/gt.txt").decode().splitlines()
    assert rows == ["1,1,20,40,40,80,1,1,1.0", "11,2,200,100,20,60,1,2,1.0"]
    cvat = requester_client.get(f"/api/jobs/{box_job.pk}/export/cvat/")
    root = ET.fromstring(cvat.getvalue())
    assert [t.get("label") for t in root.findall("track")] == ["car", "person"]


def test_track_job_exports_stitched_tracks(requester_client, requester):
    job = JobFactory(requester=requester, annotation_type="track", label_classes=["car"])
    video = VideoFactory(job=job, width=320, height=180, frame_width=320, frame_height=180)
    mt = MicroTaskFactory(video=video, index=0, frame_start=0, frame_end=2, frames=[])
    _result(
        mt,
        {str(f): [{"track": 0, "label": "car", "box": [f, 0, f + 10, 10]}] for f in range(3)},
    )
    root = ET.fromstring(requester_client.get(f"/api/jobs/{job.pk}/export/cvat/").getvalue())
    (track,) = root.findall("track")
    assert [b.get("xtl") for b in track if b.get("outside") == "0"] == ["0.00", "1.00", "2.00"]


def test_bad_requests(requester_client, other_requester_client, box_job, requester):
    assert other_requester_client.get(f"/api/jobs/{box_job.pk}/export/coco/").status_code == 404
    bad = requester_client.get(f"/api/jobs/{box_job.pk}/export/yolo/")
    assert bad.status_code == 400 and "coco" in bad.json()["error"]["message"]
    classify = JobFactory(requester=requester, annotation_type="classify")
    assert requester_client.get(f"/api/jobs/{classify.pk}/export/coco/").status_code == 400


def test_job_page_links_the_downloads_once_work_is_published(client, requester, box_job):
    client.force_login(requester)
    url = f"/requester/jobs/{box_job.pk}/"
    assert "Download the dataset" not in client.get(url).content.decode()  # still a draft
    type(box_job).objects.filter(pk=box_job.pk).update(status="published")
    page = client.get(url).content.decode()
    assert f"/api/jobs/{box_job.pk}/export/coco/" in page
    # A requester's session reaches the API download too.
    assert client.get(f"/api/jobs/{box_job.pk}/export/coco/").status_code == 200
