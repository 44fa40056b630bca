"""Mask jobs' downloads: COCO RLE (read back by pycocotools), CVAT <mask>, per-frame PNGs."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from quality.models import ConsensusDecision, ConsensusResult
from tasks import exports, rle
from tests.factories import JobFactory, MicroTaskFactory, VideoFactory

PYCOCOTOOLS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"


def _body(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


def _masks():
    """Masks on the 320x180 frames the workers saw."""
    road = np.zeros((180, 320), bool)
    road[120:, :] = True
    car = np.zeros((180, 320), bool)
    car[100:140, 40:90] = True  # on the road: the car wins in the semantic PNG
    person = np.zeros((180, 320), bool)
    yy, xx = np.mgrid[:180, :320]
    person[(yy - 60) ** 2 + (xx - 250) ** 2 < 15**2] = True
    return road, car, person


@pytest.fixture
def mask_job(requester):
    job = JobFactory(
        requester=requester, annotation_type="mask", label_classes=["road", "car", "person"]
    )
    # Workers saw frames at half the source size: exports scale masks back to source pixels.
    video = VideoFactory(job=job, width=640, height=360, frame_width=320, frame_height=180)
    mt = MicroTaskFactory(video=video, index=0, frame_start=0, frame_end=9, frames=[0, 5])
    road, car, person = _masks()
    ConsensusResult.objects.create(
        microtask=mt,
        algorithm="masks-vote-v1",
        frames={
            "0": [
                {"label": "road", "rle": rle.encode(road)},
                {"label": "car", "rle": rle.encode(car)},
            ],
            "5": [{"label": "person", "rle": rle.encode(person)}],
        },
        agreement=0.9,
        decision=ConsensusDecision.ACCEPT,
        is_current=True,
    )
    return job


def _up(mask):
    return np.kron(mask, np.ones((2, 2), bool))


@pytest.mark.django_db
@pytest.mark.filterwarnings(PYCOCOTOOLS_WARNING)
def test_coco_masks_are_read_back_by_pycocotools_in_source_pixels(requester_client, mask_job):
    from pycocotools.coco import COCO

    doc = json.loads(_body(requester_client.get(f"/api/jobs/{mask_job.pk}/export/coco/")))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    road, car, person = _masks()
    names = {c["id"]: c["name"] for c in doc["categories"]}
    got = {names[a["category_id"]]: coco.annToMask(a).astype(bool) for a in doc["annotations"]}
    assert set(got) == {"road", "car", "person"}
    for name, mask in (("road", road), ("car", car), ("person", person)):
        assert got[name].shape == (360, 640)
        assert (got[name] == _up(mask)).all(), name
    car_ann = next(a for a in doc["annotations"] if names[a["category_id"]] == "car")
    assert car_ann["bbox"] == [80, 200, 100, 80] and car_ann["area"] == 100 * 80
    assert isinstance(car_ann["segmentation"]["counts"], str) and car_ann["iscrowd"] == 0


@pytest.mark.django_db
def test_cvat_masks_decode_to_the_consensus(requester_client, mask_job):
    body = _body(requester_client.get(f"/api/jobs/{mask_job.pk}/export/cvat/"))
    root = ET.fromstring(body)
    _road, car, person = _masks()
    seen = {}
    for track in root.iter("track"):
        el = next(m for m in track.iter("mask") if m.get("outside") == "0")
        runs = [int(v) for v in el.get("rle").split(", ")]
        seen[track.get("label")] = exports.cvat_mask_decode(
            runs,
            *(int(el.get(k)) for k in ("left", "top", "width", "height")),
            frame_height=360,
            frame_width=640,
        )
    assert set(seen) == {"road", "car", "person"}
    assert (seen["car"] == _up(car)).all() and (seen["person"] == _up(person)).all()


@pytest.mark.django_db
def test_semantic_pngs_hold_class_indices_per_frame(requester_client, mask_job):
    r = requester_client.get(f"/api/jobs/{mask_job.pk}/export/png/")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(_body(r))) as zf:
        names = sorted(zf.namelist())
        assert zf.read("labelmap.txt").decode().splitlines() == [
            "0 background",
            "1 road",
            "2 car",
            "3 person",
        ]
        frame0 = np.asarray(Image.open(io.BytesIO(zf.read(names[1]))))
        frame5 = np.asarray(Image.open(io.BytesIO(zf.read(names[2]))))
    assert names[1].endswith("frame_000000.png") and names[2].endswith("frame_000005.png")
    road, car, _person = _masks()
    expected = np.zeros((360, 640), np.uint8)
    expected[_up(road)] = 1
    expected[_up(car)] = 2
    assert frame0.shape == (360, 640) and (frame0 == expected).all()
    assert set(np.unique(frame5)) == {0, 3}


@pytest.mark.django_db
def test_box_only_formats_refuse_a_mask_job(requester_client, mask_job):
    for fmt in ("mot", "labelstudio", "yolo"):
        r = requester_client.get(f"/api/jobs/{mask_job.pk}/export/{fmt}/")
        assert r.status_code == 409 and "coco, cvat, png" in r.json()["error"]["message"]


def test_cvat_runs_are_row_major_from_a_zero_run():
    m = np.zeros((5, 6), bool)
    m[1, 2] = m[2, 2] = m[2, 3] = True
    runs, left, top, w, h = exports.cvat_mask_rle(m)
    assert (left, top, w, h) == (2, 1, 2, 2)
    assert runs == [0, 1, 1, 2]  # (1,2) in, (1,3) out, (2,2) (2,3) in
    back = exports.cvat_mask_decode(runs, left, top, w, h, frame_height=5, frame_width=6)
    assert (back == m).all()
