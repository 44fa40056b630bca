"""Dataset exporters (pure): COCO JSON, MOT 1.1 and CVAT for video 1.1 XML.

They take plain data — one :class:`ExportVideo` per video with its per-frame objects — and return
bytes, so they are fast to test and know nothing of Django. The Django layer
(:mod:`tasks.selectors`) gathers consensus results into these dataclasses.

Conventions of the formats, as their reference tools read them:
- COCO: one image per annotated frame, ``bbox`` as ``[x, y, width, height]`` in pixels,
  category ids from 1, CVAT's ``attributes.track_id`` on boxes of tracks.
- MOT 1.1 (MOTChallenge ground truth, as CVAT exports it): ``gt/gt.txt`` lines
  ``frame,id,x,y,w,h,not_ignored,class_id,visibility`` with 1-based frames and ids, plus
  ``gt/labels.txt`` with one class name per line (class ids are 1-based line numbers).
- CVAT for video 1.1: ``<track>`` elements with one ``<box>`` per frame; the frame after a track
  ends gets ``outside="1"`` so CVAT does not extend the track.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.etree import ElementTree as ET


@dataclass(frozen=True)
class ExportObject:
    """One object on one frame. ``track_id`` is None for untracked boxes."""

    label: str
    x: float
    y: float
    w: float
    h: float
    track_id: int | None = None
    keyframe: bool = True
    occluded: bool = False
    score: float = 1.0


@dataclass
class ExportVideo:
    name: str
    width: int
    height: int
    frame_count: int
    # frame number (0-based, in the source video) -> objects on it
    frames: dict[int, list[ExportObject]] = field(default_factory=dict)
    # frame number -> image file name as shipped beside the export (COCO ``file_name``)
    image_names: dict[int, str] = field(default_factory=dict)


def _label_ids(labels: Sequence[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(labels, start=1)}


def _round(v: float) -> float:
    return round(float(v), 2)


def _fmt(v: float) -> str:
    """A pixel coordinate as MOT text: two decimals at most, no trailing zeros."""
    return f"{round(float(v), 2):g}"


def to_coco(
    videos: Iterable[ExportVideo], labels: Sequence[str], *, description: str = ""
) -> bytes:
    """COCO detection JSON: each frame with objects (or in ``image_names``) is one image."""
    out = io.BytesIO()
    write_coco(videos, labels, out, description=description)
    return out.getvalue()


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def write_coco(
    videos: Iterable[ExportVideo],
    labels: Sequence[str],
    out: BinaryIO,
    *,
    description: str = "",
    spool_bytes: int = 8 * 1024 * 1024,
) -> None:
    """``to_coco`` written to ``out`` one video at a time, byte for byte the same document.

    Memory holds one video's objects, whatever the number of videos: images go straight to
    ``out`` and annotations to a spooled temporary file (in memory up to ``spool_bytes``, then on
    disk) that is appended after them, since COCO lists every image before any annotation.
    """
    cat_ids = _label_ids(labels)
    head = {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in cat_ids.items()],
    }
    out.write(_dump(head)[:-1] + b',"images":[')
    image_id = annotation_id = 0
    with tempfile.SpooledTemporaryFile(max_size=spool_bytes) as annotations:
        for video_index, video in enumerate(videos, start=1):
            for frame in sorted(set(video.frames) | set(video.image_names)):
                image_id += 1
                image = {
                    "id": image_id,
                    "file_name": video.image_names.get(
                        frame, f"{video.name}/frame_{frame:06d}.jpg"
                    ),
                    "width": video.width,
                    "height": video.height,
                    "video_id": video_index,
                    "frame_id": frame,
                }
                out.write((b"," if image_id > 1 else b"") + _dump(image))
                for obj in video.frames.get(frame, []):
                    annotation_id += 1
                    ann = {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": cat_ids[obj.label],
                        "bbox": [_round(obj.x), _round(obj.y), _round(obj.w), _round(obj.h)],
                        "area": _round(obj.w * obj.h),
                        "iscrowd": 0,
                        "segmentation": [],
                        "attributes": {"occluded": obj.occluded},
                    }
                    if obj.track_id is not None:
                        ann["attributes"].update(track_id=obj.track_id, keyframe=obj.keyframe)
                    if obj.score != 1.0:
                        ann["score"] = round(obj.score, 4)
                    annotations.write((b"," if annotation_id > 1 else b"") + _dump(ann))
        out.write(b'],"annotations":[')
        annotations.seek(0)
        shutil.copyfileobj(annotations, out)
    out.write(b"]}")


def to_mot(video: ExportVideo, labels: Sequence[str]) -> bytes:
    """A MOT 1.1 zip (``gt/gt.txt`` and ``gt/labels.txt``) for one video's tracks."""
    cat_ids = _label_ids(labels)
    # MOT ids are 1-based: track t is written as t + 1; untracked boxes get fresh ids after them.
    next_id = 2 + max(
        (o.track_id for objs in video.frames.values() for o in objs if o.track_id is not None),
        default=-1,
    )
    lines = []
    for frame in sorted(video.frames):
        for obj in video.frames[frame]:
            if obj.track_id is None:
                track = next_id
                next_id += 1
            else:
                track = obj.track_id + 1
            visibility = 0.5 if obj.occluded else 1.0
            lines.append(
                f"{frame + 1},{track},{_fmt(obj.x)},{_fmt(obj.y)},{_fmt(obj.w)},"
                f"{_fmt(obj.h)},1,{cat_ids[obj.label]},{visibility}"
            )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("gt/gt.txt", "\n".join(lines) + ("\n" if lines else ""))
        zf.writestr("gt/labels.txt", "\n".join(labels) + "\n")
    return buf.getvalue()


def to_cvat_video(video: ExportVideo, labels: Sequence[str], *, task_name: str = "") -> bytes:
    """CVAT for video 1.1 XML: tracks as ``<track>`` with per-frame ``<box>`` elements."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = task_name or video.name
    ET.SubElement(task, "size").text = str(video.frame_count)
    ET.SubElement(task, "mode").text = "interpolation"
    ET.SubElement(task, "start_frame").text = "0"
    ET.SubElement(task, "stop_frame").text = str(max(video.frame_count - 1, 0))
    labels_el = ET.SubElement(task, "labels")
    for name in labels:
        label_el = ET.SubElement(labels_el, "label")
        ET.SubElement(label_el, "name").text = name
        ET.SubElement(label_el, "attributes")
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text = str(video.width)
    ET.SubElement(size, "height").text = str(video.height)

    tracks: dict[int, list[tuple[int, ExportObject]]] = {}
    singles: list[tuple[int, ExportObject]] = []
    for frame in sorted(video.frames):
        for obj in video.frames[frame]:
            if obj.track_id is None:
                singles.append((frame, obj))
            else:
                tracks.setdefault(obj.track_id, []).append((frame, obj))

    def box(parent: ET.Element, frame: int, obj: ExportObject, *, outside: bool) -> None:
        ET.SubElement(
            parent,
            "box",
            frame=str(frame),
            outside="1" if outside else "0",
            occluded="1" if obj.occluded else "0",
            keyframe="1" if (obj.keyframe or outside) else "0",
            xtl=f"{obj.x:.2f}",
            ytl=f"{obj.y:.2f}",
            xbr=f"{obj.x + obj.w:.2f}",
            ybr=f"{obj.y + obj.h:.2f}",
            z_order="0",
        )

    out_id = 0
    for track_id in sorted(tracks):
        items = tracks[track_id]
        track_el = ET.SubElement(
            root, "track", id=str(out_id), label=items[0][1].label, source="consensus"
        )
        out_id += 1
        previous = None
        for frame, obj in items:
            if previous is not None and frame > previous[0] + 1:
                box(track_el, previous[0] + 1, previous[1], outside=True)  # a gap: hide it
            box(track_el, frame, obj, outside=False)
            previous = (frame, obj)
        if previous is not None and previous[0] + 1 < video.frame_count:
            box(track_el, previous[0] + 1, previous[1], outside=True)
    for frame, obj in singles:  # untracked boxes: one-frame tracks
        track_el = ET.SubElement(root, "track", id=str(out_id), label=obj.label, source="consensus")
        out_id += 1
        box(track_el, frame, obj, outside=False)
        if frame + 1 < video.frame_count:
            box(track_el, frame + 1, obj, outside=True)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")
