"""The pure dataset exporters, read back the way the formats' tools read them."""

from __future__ import annotations

import io
import json
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
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


# --- read back by the reference readers, and the new formats ----------------------------------


def _moving_track(track_id: int, n: int, *, x0=10.0, dx=3.0, label="car", first=0):
    """A track moving right at constant speed: linear, so its keyframes are its two ends."""
    return {
        first + f: ExportObject(label, x0 + dx * f, 40, 30, 20, track_id=track_id) for f in range(n)
    }


def _track_video() -> ExportVideo:
    v = ExportVideo(name="clip", width=640, height=360, frame_count=40, fps=20.0)
    a = _moving_track(0, 30)
    b = _moving_track(1, 10, x0=300, dx=-2, label="person", first=5)
    for f in range(40):
        objs = [o for o in (a.get(f), b.get(f)) if o is not None]
        if objs:
            v.frames[f] = objs
    return v


def test_coco_is_read_by_pycocotools_and_scores_itself_perfectly(video, tmp_path, capsys):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = tmp_path / "coco.json"
    path.write_bytes(to_coco([video], LABELS))
    gt = COCO(str(path))
    assert len(gt.getImgIds()) == 4 and len(gt.getAnnIds()) == 5
    assert [c["name"] for c in gt.loadCats(gt.getCatIds())] == LABELS
    dets = [{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP@[.5:.95] of the export against itself


# pycocotools' masks (its C extension predates NumPy 2's copy keyword) and motmetrics' pandas
# calls warn about their own code, not ours.
PYCOCOTOOLS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"
MOTMETRICS_WARNING = "ignore:Operation with tuple is deprecated"


@pytest.mark.filterwarnings(PYCOCOTOOLS_WARNING)
def test_polygons_in_coco_segmentation_read_by_pycocotools_as_masks(tmp_path, capsys):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from tasks.exports import polygon_from_points

    tri = polygon_from_points("car", [(10, 10), (110, 10), (10, 60)])
    square = polygon_from_points("person", [(200, 100), (240, 100), (240, 140), (200, 140)])
    v = ExportVideo("p", 320, 180, 3, frames={1: [tri, square]})
    doc = json.loads(to_coco([v], LABELS))
    first = doc["annotations"][0]
    assert first["segmentation"] == [[10, 10, 110, 10, 10, 60]]
    assert first["bbox"] == [10, 10, 100, 50] and first["area"] == 2500
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    gt = COCO(str(path))
    anns = gt.loadAnns(gt.getAnnIds())
    masks = [gt.annToMask(a) for a in anns]
    assert masks[0].shape == (180, 320)
    assert masks[0].sum() == pytest.approx(2500, rel=0.05)  # the triangle's area
    assert masks[1].sum() == pytest.approx(1600, rel=0.06)
    assert masks[1][120, 220] == 1 and masks[1][120, 260] == 0
    res = gt.loadRes([{**a, "score": 1.0} for a in anns])
    ev = COCOeval(gt, res, "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


@pytest.mark.filterwarnings(MOTMETRICS_WARNING)
def test_mot_is_read_by_motmetrics_with_every_track(tmp_path):
    import motmetrics as mm

    v = _track_video()
    with zipfile.ZipFile(io.BytesIO(to_mot(v, LABELS))) as zf:
        zf.extractall(tmp_path)
    gt = mm.io.loadtxt(str(tmp_path / "gt/gt.txt"), fmt="mot15-2D")
    assert len(gt) == sum(len(o) for o in v.frames.values())
    assert sorted(gt.index.get_level_values("Id").unique()) == [1, 2]
    # motmetrics reads MOTChallenge's 1-based pixel columns (it subtracts one); the file holds
    # CVAT's 0-based pixels, as CVAT's and Datumaro's MOT readers expect.
    assert gt.loc[(1, 1)][["X", "Y", "Width", "Height"]].tolist() == [9, 39, 30, 20]
    # The track identities as motmetrics scores them: the file against itself is perfect. (Its own
    # IoU helper calls np.asfarray, gone in NumPy 2: the distances come from quality.boxes.)
    from quality.boxes import iou_matrix

    acc = mm.MOTAccumulator(auto_id=False)
    for frame, rows in gt.groupby(level="FrameId"):
        ids = rows.index.get_level_values("Id").tolist()
        xywh = rows[["X", "Y", "Width", "Height"]].to_numpy(dtype=float)
        boxes = np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]
        dist = 1.0 - iou_matrix(boxes, boxes)
        acc.update(ids, ids, np.where(dist > 0.5, np.nan, dist), frameid=frame)
    summary = mm.metrics.create().compute(
        acc, metrics=["mota", "num_switches", "num_unique_objects"]
    )
    assert summary["mota"].iloc[0] == 1.0 and summary["num_switches"].iloc[0] == 0
    assert summary["num_unique_objects"].iloc[0] == 2


def test_mot_of_several_videos_has_one_sequence_folder_each():
    from tasks.exports import iter_mot

    a, b = (
        _track_video(),
        ExportVideo("other", 10, 10, 1, frames={0: [ExportObject("car", 1, 1, 2, 2)]}),
    )
    with zipfile.ZipFile(io.BytesIO(b"".join(iter_mot([a, b], LABELS)))) as zf:
        assert sorted(zf.namelist()) == [
            "clip/gt/gt.txt",
            "clip/gt/labels.txt",
            "other/gt/gt.txt",
            "other/gt/labels.txt",
        ]
        assert zf.read("other/gt/gt.txt") == b"1,1,1,1,2,2,1,1,1.0\n"


def _ls_interpolate(sequence: list[dict]) -> dict[int, tuple[float, ...]]:
    """Label Studio's reading of a videorectangle: linear between keyframes, hidden after a
    keyframe whose ``enabled`` is false."""
    out = {}
    for k, item in enumerate(sequence):
        box = (item["x"], item["y"], item["width"], item["height"])
        out[item["frame"]] = box
        if not item["enabled"] or k + 1 == len(sequence):
            continue
        nxt = sequence[k + 1]
        end = (nxt["x"], nxt["y"], nxt["width"], nxt["height"])
        span = nxt["frame"] - item["frame"]
        for f in range(item["frame"] + 1, nxt["frame"]):
            t = (f - item["frame"]) / span
            out[f] = tuple(a + (b - a) * t for a, b in zip(box, end, strict=True))
    return out


def test_label_studio_tracks_are_videorectangle_keyframes_that_interpolate_back():
    from tasks.exports import label_studio_config, to_label_studio

    v = _track_video()
    (task,) = json.loads(to_label_studio([v]))
    assert task["data"] == {"video": "clip.mp4"}
    regions = task["annotations"][0]["result"]
    assert [r["type"] for r in regions] == ["videorectangle", "videorectangle"]
    assert [r["value"]["labels"] for r in regions] == [["car"], ["person"]]
    car = regions[0]["value"]
    assert car["framesCount"] == 40 and car["duration"] == 2.0
    # Linear motion: the ends are the only keyframes; the last one ends the track.
    assert [(s["frame"], s["enabled"]) for s in car["sequence"]] == [(1, True), (30, False)]
    first = car["sequence"][0]
    assert first["time"] == pytest.approx(1 / 20.0)
    assert (first["x"], first["y"]) == (
        pytest.approx(100 * 10 / 640),
        pytest.approx(100 * 40 / 360),
    )
    for region, track in zip(regions, (0, 1), strict=True):
        seen = _ls_interpolate(region["value"]["sequence"])
        truth = {
            f + 1: (100 * o.x / 640, 100 * o.y / 360, 100 * o.w / 640, 100 * o.h / 360)
            for f, objs in v.frames.items()
            for o in objs
            if o.track_id == track
        }
        assert seen.keys() == truth.keys()
        for f, box in truth.items():
            assert seen[f] == pytest.approx(box, abs=0.06)
    assert '<VideoRectangle name="box" toName="video" />' in label_studio_config(LABELS)
    assert '<Label value="person"/>' in label_studio_config(LABELS)


def test_label_studio_keeps_a_keyframe_where_motion_turns_and_ends_runs_at_gaps(video):
    from tasks.exports import keyframes, to_label_studio

    frames = list(range(10))
    boxes = [(f if f <= 5 else 10 - f, 0.0) for f in frames]  # right, then back left
    assert keyframes(frames, boxes, tolerance=0.01) == [0, 5, 9]
    assert keyframes([0, 1, 2, 7, 8], [(0,)] * 5, tolerance=0.01) == [0, 2, 3, 4]
    (task,) = json.loads(to_label_studio([video]))
    person = task["annotations"][0]["result"][1]["value"]["sequence"]
    # Frame 0, gone on 1-2, back on 3: two runs, each closed by a disabled keyframe.
    assert [(s["frame"], s["enabled"]) for s in person] == [(1, False), (4, False)]
    untracked = task["annotations"][0]["result"][2]
    assert untracked["id"] == "box-0" and len(untracked["value"]["sequence"]) == 1


def test_yolo_zip_has_normalised_label_files_and_data_yaml(video):
    import yaml

    from tasks.exports import polygon_from_points, to_yolo

    poly = ExportVideo(
        "p", 100, 50, 1, frames={0: [polygon_from_points("person", [(0, 0), (50, 0), (0, 25)])]}
    )
    with zipfile.ZipFile(io.BytesIO(to_yolo([video, poly], LABELS))) as zf:
        data = yaml.safe_load(zf.read("data.yaml"))
        assert data["names"] == {0: "car", 1: "person"} and data["nc"] == 2
        assert sorted(n for n in zf.namelist() if n.startswith("labels/clip/")) == [
            f"labels/clip/frame_{f:06d}.txt" for f in (0, 1, 3, 5)
        ]
        rows = [r.split() for r in zf.read("labels/clip/frame_000000.txt").decode().splitlines()]
        polygon = zf.read("labels/p/frame_000000.txt").decode().split()
    assert len(rows) == 2 and rows[0][0] == "0" and rows[1][0] == "1"
    cx, cy, w, h = map(float, rows[0][1:])
    assert (cx * 640, cy * 360, w * 640, h * 360) == pytest.approx((25, 40, 30, 40), abs=1e-3)
    assert polygon == ["1", "0.000000", "0.000000", "0.500000", "0.000000", "0.000000", "0.500000"]


def test_cvat_video_writes_polygons_as_polygon_shapes():
    from tasks.exports import polygon_from_points

    p = polygon_from_points("car", [(1, 2), (30, 2), (1, 40)])
    v = ExportVideo("p", 64, 48, 5, frames={2: [p]})
    (track,) = ET.fromstring(to_cvat_video(v, LABELS)).findall("track")
    shapes = [(s.tag, s.get("frame"), s.get("outside"), s.get("points")) for s in track]
    assert shapes == [
        ("polygon", "2", "0", "1.00,2.00;30.00,2.00;1.00,40.00"),
        ("polygon", "3", "1", "1.00,2.00;30.00,2.00;1.00,40.00"),
    ]


def test_zip_archives_are_streamed_while_they_are_written():
    from tasks.exports import iter_zip

    produced = []

    def big(name):
        for k in range(200):
            produced.append((name, k))
            yield (f"{name} line {k} " * 200).encode()

    stream = iter_zip([("a.txt", big("a")), ("b.txt", big("b"))])
    first = next(stream)
    assert first.startswith(b"PK") and len(produced) < 200  # sent before "a" was all written
    rest = b"".join(stream)
    with zipfile.ZipFile(io.BytesIO(first + rest)) as zf:
        assert zf.testzip() is None
        assert zf.read("b.txt").count(b"b line 199 ") == 200


def test_counts_are_frames_objects_and_tracks(video):
    from tasks.exports import counts

    assert counts([video]) == {"frames": 4, "objects": 5, "tracks": 2}


def test_activitynet_streams_one_video_per_chunk_with_times_in_seconds():
    from tasks.exports import ExportEvent, ExportVideo, iter_activitynet, to_activitynet

    videos = [
        ExportVideo("a", 640, 360, 300, fps=30.0, events=[ExportEvent("cross", 30, 59)]),
        ExportVideo("b", 640, 360, 50, fps=0.0, events=[ExportEvent("wave", 0, 0, track_id=3)]),
    ]
    chunks = list(iter_activitynet(iter(videos), ["cross", "wave"]))
    assert len(chunks) == 4  # head, one per video, tail
    doc = json.loads(to_activitynet(videos, ["cross", "wave"]))
    assert doc["database"]["a"]["annotations"] == [
        {"segment": [1.0, 2.0], "label": "cross", "frames": [30, 59]}
    ]
    assert doc["database"]["a"]["duration_second"] == 10.0
    # Unknown fps: the default; a one-frame event still lasts one frame.
    assert doc["database"]["b"]["annotations"][0]["segment"] == [0.0, 0.04]
    assert doc["database"]["b"]["annotations"][0]["track_id"] == 3
