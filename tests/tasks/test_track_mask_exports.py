"""Masks on tracks in the downloads: CVAT <mask> tracks on keyframes, COCO RLE (pure)."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from tasks import exports, rle

PYCOCOTOOLS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"
H, W = 48, 64


def _disc(cx, cy, r=6):
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _video():
    """Track 3 on frames 0-4, a mask on keyframes 0 and 4; track 5 (no masks) on frames 1-2."""
    frames = {}
    for f in range(5):
        cx = 10 + 5 * f
        mask = rle.encode(_disc(cx, 20)) if f in (0, 4) else None
        objs = [exports.ExportObject("car", cx - 6, 14, 12, 12, track_id=3, rle=mask)]
        if f in (1, 2):
            objs.append(exports.ExportObject("person", 40, 30, 8, 10, track_id=5))
        frames[f] = objs
    return exports.ExportVideo("v", W, H, 10, frames=frames)


def test_cvat_has_a_box_track_and_a_mask_track_on_keyframes_only():
    root = ET.fromstring(exports.to_cvat_video(_video(), ["car", "person"]))
    tracks = root.findall("track")
    assert len(tracks) == 3
    boxes, masks, person = tracks
    assert boxes.get("group_id") == masks.get("group_id") is not None
    assert person.get("group_id") is None
    assert [(b.get("frame"), b.get("outside")) for b in boxes.findall("box")] == [
        *((str(f), "0") for f in range(5)),
        ("5", "1"),
    ]
    assert not boxes.findall("mask") and not masks.findall("box")
    shapes = [(m.get("frame"), m.get("outside")) for m in masks.findall("mask")]
    assert shapes == [("0", "0"), ("1", "1"), ("4", "0"), ("5", "1")]
    for m in masks.findall("mask"):
        if m.get("outside") == "1":
            continue
        runs = [int(v) for v in m.get("rle").split(", ")]
        got = exports.cvat_mask_decode(
            runs,
            *(int(m.get(k)) for k in ("left", "top", "width", "height")),
            frame_height=H,
            frame_width=W,
        )
        f = int(m.get("frame"))
        assert (got == _disc(10 + 5 * f, 20)).all()


@pytest.mark.filterwarnings(PYCOCOTOOLS_WARNING)
def test_coco_keyframe_masks_read_back_by_pycocotools():
    from pycocotools.coco import COCO

    doc = json.loads(exports.to_coco([_video()], ["car", "person"]))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    frame_of = {img["id"]: img["frame_id"] for img in doc["images"]}
    with_mask = [a for a in doc["annotations"] if a["segmentation"]]
    assert sorted(frame_of[a["image_id"]] for a in with_mask) == [0, 4]
    for ann in with_mask:
        f = frame_of[ann["image_id"]]
        assert ann["attributes"]["track_id"] == 3
        assert ann["bbox"] == [10 + 5 * f - 6, 14, 12, 12]  # the track's box
        assert (coco.annToMask(ann).astype(bool) == _disc(10 + 5 * f, 20)).all()
        assert ann["area"] == int(_disc(10 + 5 * f, 20).sum())
    assert len(doc["annotations"]) == 7  # 5 car boxes (2 with masks) and 2 person boxes
