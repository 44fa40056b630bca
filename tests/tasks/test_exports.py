"""The pure dataset exporters, read back the way the formats' tools read them."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree as ET

import pytest

from tasks.exports import ExportObject, ExportVideo, to_coco, to_cvat_video, to_mot

LABELS = ["car", "person"]


@pytest.fixture
def video() -> ExportVideo:
    v = ExportVideo(name="clip", width=640, height=360, frame_count=10)
    v.frames = {
        0: [
            ExportObject("car", 10, 20, 30, 40, track_id=0),
            ExportObject("person", 100, 50, 20, 60, track_id=1),
        ],
        1: [ExportObject("car", 12, 20, 30, 40, track_id=0, keyframe=False)],
        # track 1 absent on frames 1-2, back on 3; track 0 ends after frame 1
        3: [ExportObject("person", 104, 50, 20, 60, track_id=1, occluded=True)],
        5: [ExportObject("car", 300, 200, 10.5, 5.25)],  # untracked
    }
    return v


def test_coco_images_annotations_and_categories(video):
    doc = json.loads(to_coco([video], LABELS))
    assert [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])] == LABELS
    assert [im["frame_id"] for im in doc["images"]] == [0, 1, 3, 5]
    assert len(doc["annotations"]) == 5
    by_image = {im["id"]: im["frame_id"] for im in doc["images"]}
    first = doc["annotations"][0]
    assert by_image[first["image_id"]] == 0
    assert first["bbox"] == [10, 20, 30, 40] and first["area"] == 1200
    assert first["category_id"] == 1 and first["attributes"]["track_id"] == 0
    untracked = doc["annotations"][-1]
    assert "track_id" not in untracked["attributes"]
    assert untracked["bbox"] == [300, 200, 10.5, 5.25]
    assert len({a["id"] for a in doc["annotations"]}) == 5


def test_coco_numbers_images_across_videos():
    a = ExportVideo("a", 10, 10, 2, frames={0: [ExportObject("car", 1, 1, 2, 2)]})
    b = ExportVideo("b", 10, 10, 2, frames={0: [ExportObject("car", 1, 1, 2, 2)]})
    doc = json.loads(to_coco([a, b], LABELS))
    assert [(i["id"], i["video_id"]) for i in doc["images"]] == [(1, 1), (2, 2)]
    assert [a["image_id"] for a in doc["annotations"]] == [1, 2]


def test_mot_lines_are_one_based_with_class_ids(video):
    with zipfile.ZipFile(io.BytesIO(to_mot(video, LABELS))) as zf:
        rows = [line.split(",") for line in zf.read("gt/gt.txt").decode().splitlines()]
        assert zf.read("gt/labels.txt").decode().split() == LABELS
    assert rows[0] == ["1", "1", "10", "20", "30", "40", "1", "1", "1.0"]
    assert rows[1][:2] == ["1", "2"] and rows[1][7] == "2"
    occluded = next(r for r in rows if r[0] == "4")
    assert occluded[1] == "2" and occluded[8] == "0.5"
    untracked = next(r for r in rows if r[0] == "6")
    assert untracked[1] == "3"  # a fresh id after the tracks' ids


def test_cvat_video_tracks_close_with_outside_boxes(video):
    root = ET.fromstring(to_cvat_video(video, LABELS, task_name="Cars"))
    assert root.findtext("version") == "1.1"
    assert root.findtext("meta/task/size") == "10"
    assert [e.text for e in root.findall("meta/task/labels/label/name")] == LABELS
    tracks = root.findall("track")
    assert [t.get("label") for t in tracks] == ["car", "person", "car"]
    car = [(b.get("frame"), b.get("outside"), b.get("keyframe")) for b in tracks[0]]
    assert car == [("0", "0", "1"), ("1", "0", "0"), ("2", "1", "1")]
    person = [(b.get("frame"), b.get("outside"), b.get("occluded")) for b in tracks[1]]
    assert person == [("0", "0", "0"), ("1", "1", "0"), ("3", "0", "1"), ("4", "1", "1")]
    first = tracks[0][0]
    assert (first.get("xtl"), first.get("ytl"), first.get("xbr"), first.get("ybr")) == (
        "10.00",
        "20.00",
        "40.00",
        "60.00",
    )


def test_empty_video_exports_are_valid():
    empty = ExportVideo("e", 10, 10, 0)
    assert json.loads(to_coco([empty], LABELS))["annotations"] == []
    with zipfile.ZipFile(io.BytesIO(to_mot(empty, LABELS))) as zf:
        assert zf.read("gt/gt.txt") == b""
    assert ET.fromstring(to_cvat_video(empty, LABELS)).findall("track") == []
