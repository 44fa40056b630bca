"""Dataset exporters (pure): COCO JSON, MOT 1.1, CVAT for video 1.1 XML, Label Studio JSON,
YOLO and ActivityNet JSON (events) — streamed.

They take plain data — one :class:`ExportVideo` per video with its per-frame objects — and yield
the file's bytes in chunks (``iter_*``), so a download starts at once and never holds the whole
file, or a whole zip archive, in memory; ``to_*`` joins the chunks for callers (and tests) that
want bytes. They know nothing of Django: :mod:`quality.exporting` gathers consensus results into
these dataclasses.

Conventions of the formats, as their reference tools read them:

- COCO: one image per annotated frame, ``bbox`` as ``[x, y, width, height]`` in pixels,
  category ids from 1, CVAT's ``attributes.track_id`` on boxes of tracks. A polygon is a
  ``segmentation`` ``[[x1, y1, x2, y2, ...]]`` with its extents as ``bbox`` and its own area
  (pycocotools' ``annToMask`` reads it). The job's attributes of an object are in its
  ``attributes`` (beside CVAT's ``occluded``, ``track_id``, ``keyframe``), as CVAT writes them.
  Relations, which COCO has no key for, are a top-level ``relations`` list (present only when
  there are some): ``{"id", "image_id", "subject_id", "predicate", "object_id"}`` where the
  ids are annotation ids of the same image; readers of plain COCO (pycocotools) ignore it.
- MOT 1.1 (MOTChallenge ground truth, as CVAT exports it): ``gt/gt.txt`` lines
  ``frame,id,x,y,w,h,not_ignored,class_id,visibility`` with 1-based frames and ids, plus
  ``gt/labels.txt`` with one class name per line (class ids are 1-based line numbers). Several
  videos: one folder per video (``<video>/gt/gt.txt``), MOTChallenge's sequence layout.
- CVAT for video 1.1: ``<track>`` elements with one ``<box>`` (or ``<polygon>``) per frame; the
  frame after a track ends gets ``outside="1"`` so CVAT does not extend the track. A mask is
  ``<mask rle="n0, n1, ..." left= top= width= height=>``: the runs of its bounding box read
  row by row, starting with a run of 0-pixels (CVAT's own XML, "Run-length encoding").
- Masks on tracks (a track job with masks): an object with a ``track_id`` and an ``rle`` is a
  track's box on a keyframe that also has a mask. CVAT gets the box in the track's ``<track>``
  and the mask in a second ``<track>`` of ``<mask>`` shapes on the keyframes only (each followed
  by ``outside="1"`` where the next frame has none: masks are not interpolated), the two tracks
  sharing a ``group_id``. COCO gets one annotation whose ``segmentation`` is the mask's RLE,
  ``bbox`` the track's box, ``attributes.track_id`` the track.
- Masks in COCO: ``segmentation`` is ``{"size": [h, w], "counts": "<compressed string>"}``
  (``pycocotools.mask.encode``'s form, ``tasks.rle.to_coco_string``), ``iscrowd`` 0, ``area``
  the pixel count, ``bbox`` the mask's extents.
- Semantic PNG masks: a zip of ``<video>/frame_NNNNNN.png``, one class-index image per annotated
  frame (0 background, class *i* of the job's list is *i* + 1; 8-bit, or 16-bit past 255
  classes; a pixel two classes claim takes the later mask), and ``labelmap.txt`` naming them.
- Attributes in CVAT: the job's attributes are declared per label in the meta (``<attribute>``
  with ``name``, ``mutable``, ``input_type`` checkbox/select/number, ``default_value``,
  ``values`` one per line — a number's are ``min``, ``max``, ``step``) and given per shape as
  ``<attribute name="...">value`` children of each ``<box>``/``<polygon>``. CVAT's format has
  no relations: they are in COCO.
- Label Studio (video object tracking): one task per video, each track one ``videorectangle``
  region whose ``value.sequence`` holds keyframes ``{frame, enabled, rotation, x, y, width,
  height, time}`` — frames 1-based, coordinates in percent of the frame, ``time`` = frame / fps.
  Label Studio interpolates linearly between enabled keyframes; ``enabled: false`` on a keyframe
  ends the track there. Frames linear interpolation reproduces (within ``LS_TOLERANCE`` percent)
  are left out, so a track is its keyframes, not a box per frame.
- YOLO (Ultralytics' layout): ``labels/<video>/frame_NNNNNN.txt`` with one line per object,
  ``class cx cy w h`` normalised to [0, 1] and 0-based classes (a polygon: ``class x1 y1 x2 y2
  ...``, YOLO's segmentation lines), and a ``data.yaml`` naming the classes. The frames
  themselves go in ``images/`` under the same names (the COCO ``file_name``).
- ActivityNet (temporal action localisation, version 1.3's layout as its evaluation kit and
  mmaction read it): ``{"version", "taxonomy", "database": {video: {"subset", "duration",
  "duration_second", "duration_frame", "fps", "url", "annotations": [{"segment": [t0, t1],
  "label"}]}}}`` with times in seconds. An event on frames ``[start, end]`` (inclusive) spans
  ``[start / fps, (end + 1) / fps]``: the end frame is shown until the next one begins. Each
  annotation also carries its exact ``frames`` ``[start, end]``.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from . import rle as rle_codec

Chunks = Iterator[bytes]


@dataclass(frozen=True)
class ExportObject:
    """One object on one frame. ``track_id`` is None for untracked shapes; ``points`` is set for
    a polygon (its vertices in pixels; ``x, y, w, h`` are then its extents)."""

    label: str
    x: float
    y: float
    w: float
    h: float
    track_id: int | None = None
    keyframe: bool = True
    occluded: bool = False
    score: float = 1.0
    points: tuple[tuple[float, float], ...] | None = None
    rle: dict | None = None  # a mask: uncompressed RLE over the whole frame (``tasks.rle``)
    # The job's attributes of this object, and its relations: (predicate, index of the object
    # in the same frame's list) — see ``tasks.attributes``.
    attributes: Mapping[str, Any] | None = None
    relations: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ExportEvent:
    """An event on the source video's frames ``[start, end]`` (inclusive)."""

    label: str
    start: int
    end: int
    track_id: int | None = None


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
    fps: float = 0.0  # 0: unknown (Label Studio's times then assume DEFAULT_FPS)
    events: list[ExportEvent] = field(default_factory=list)  # event jobs: labelled intervals


DEFAULT_FPS = 25.0
KEYFRAME_MAX_SPAN = 250
LS_TOLERANCE = 0.05  # percent of the frame: a keyframe is kept when interpolation misses by more


def polygon_from_points(label: str, points: Sequence[Sequence[float]], **kw) -> ExportObject:
    """An :class:`ExportObject` for a polygon, its box the polygon's extents."""
    pts = tuple((float(x), float(y)) for x, y in points)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return ExportObject(
        label, min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), points=pts, **kw
    )


def mask_object(label: str, rle: dict, **kw) -> ExportObject:
    """An :class:`ExportObject` for a mask, its box the mask's extents."""
    x, y, w, h = rle_codec.bbox(rle_codec.decode(rle))
    return ExportObject(label, float(x), float(y), float(w), float(h), rle=dict(rle), **kw)


def _label_ids(labels: Sequence[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(labels, start=1)}


def _round(v: float) -> float:
    return round(float(v), 2)


def _fmt(v: float) -> str:
    """A pixel coordinate as MOT text: two decimals at most, no trailing zeros."""
    return f"{round(float(v), 2):g}"


def _area(points: Sequence[tuple[float, float]]) -> float:
    """The shoelace area of a simple polygon."""
    n = len(points)
    s = sum(
        points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
        for i in range(n)
    )
    return abs(s) / 2.0


def _frame_name(video: ExportVideo, frame: int, ext: str = "jpg") -> str:
    return f"{video.name}/frame_{frame:06d}.{ext}"


def counts(videos: Iterable[ExportVideo]) -> dict[str, int]:
    """Frames with objects, objects and tracks: what every format of these videos carries."""
    frames = objects = 0
    tracks: set[tuple[str, int]] = set()
    for video in videos:
        for objs in video.frames.values():
            if objs:
                frames += 1
            objects += len(objs)
            tracks.update((video.name, o.track_id) for o in objs if o.track_id is not None)
    return {"frames": frames, "objects": objects, "tracks": len(tracks)}


# --- zip archives, streamed ------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """A write-only, unseekable file collecting what ``zipfile`` writes until it is taken.

    On an unseekable file ``zipfile`` writes each entry's sizes in a data descriptor after its
    data instead of seeking back, so an archive can be sent while it is written."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._chunks.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def iter_zip(entries: Iterable[tuple[str, Iterable[bytes]]]) -> Chunks:
    """A zip archive of ``(name, chunks)`` entries, yielded as it is written (deflated)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, chunks in entries:
            with zf.open(name, "w") as member:
                for chunk in chunks:
                    member.write(chunk)
                    if len(sink._chunks) > 16:
                        yield sink.take()
            yield sink.take()
    yield sink.take()


# --- COCO -------------------------------------------------------------------------------------


def _coco_images(videos: Iterable[ExportVideo]) -> Iterator[tuple[int, ExportVideo, int, dict]]:
    image_id = 0
    for video_index, video in enumerate(videos, start=1):
        for frame in sorted(set(video.frames) | set(video.image_names)):
            image_id += 1
            yield (
                image_id,
                video,
                frame,
                {
                    "id": image_id,
                    "file_name": video.image_names.get(frame, _frame_name(video, frame)),
                    "width": video.width,
                    "height": video.height,
                    "video_id": video_index,
                    "frame_id": frame,
                },
            )


def _coco_annotation(ann_id: int, image_id: int, obj: ExportObject, cat: int) -> dict:
    ann = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat,
        "bbox": [_round(obj.x), _round(obj.y), _round(obj.w), _round(obj.h)],
        "area": _round(obj.w * obj.h),
        "iscrowd": 0,
        "segmentation": [],
        "attributes": {"occluded": obj.occluded},
    }
    if obj.points is not None:
        ann["segmentation"] = [[_round(v) for p in obj.points for v in p]]
        ann["area"] = _round(_area(obj.points))
    if obj.rle is not None:
        ann["segmentation"] = {
            "size": list(obj.rle["size"]),
            "counts": rle_codec.to_coco_string(obj.rle),
        }
        ann["area"] = rle_codec.area(obj.rle)
    if obj.track_id is not None:
        ann["attributes"].update(track_id=obj.track_id, keyframe=obj.keyframe)
    if obj.attributes:
        ann["attributes"].update(obj.attributes)
    if obj.score != 1.0:
        ann["score"] = round(obj.score, 4)
    return ann


def iter_coco(
    videos: Iterable[ExportVideo],
    labels: Sequence[str],
    *,
    description: str = "",
    spool_bytes: int = 8 * 1024 * 1024,
) -> Chunks:
    """COCO detection JSON: each frame with objects (or in ``image_names``) is one image.

    ``videos`` is read once, one video at a time: memory holds one video's objects whatever the
    number of videos. Images are yielded as they come and annotations go to a spooled temporary
    file (in memory up to ``spool_bytes``, then on disk) yielded after them, since COCO lists
    every image before any annotation."""
    cat_ids = _label_ids(labels)

    def dump(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    yield b'{"info":' + dump({"description": description, "version": "1.0"})
    yield b',"licenses":[],"categories":' + dump(
        [{"id": i, "name": n, "supercategory": ""} for n, i in cat_ids.items()]
    )
    yield b',"images":['
    ann_id = rel_id = 0
    with (
        tempfile.SpooledTemporaryFile(max_size=spool_bytes) as annotations,
        tempfile.SpooledTemporaryFile(max_size=spool_bytes) as relations,
    ):
        for image_id, video, frame, image in _coco_images(videos):
            yield (b"," if image_id > 1 else b"") + dump(image)
            first = ann_id + 1  # the frame's objects get consecutive ids from here
            for obj in video.frames.get(frame, []):
                ann_id += 1
                ann = _coco_annotation(ann_id, image_id, obj, cat_ids[obj.label])
                annotations.write((b"," if ann_id > 1 else b"") + dump(ann))
                for predicate, other in obj.relations:
                    rel_id += 1
                    rel = {
                        "id": rel_id,
                        "image_id": image_id,
                        "subject_id": ann_id,
                        "predicate": predicate,
                        "object_id": first + other,
                    }
                    relations.write((b"," if rel_id > 1 else b"") + dump(rel))
        yield b'],"annotations":['
        annotations.seek(0)
        while block := annotations.read(64 * 1024):
            yield block
        if rel_id:
            yield b'],"relations":['
            relations.seek(0)
            while block := relations.read(64 * 1024):
                yield block
    yield b"]}"


def write_coco(
    videos: Iterable[ExportVideo],
    labels: Sequence[str],
    out: BinaryIO,
    *,
    description: str = "",
    spool_bytes: int = 8 * 1024 * 1024,
) -> None:
    """:func:`iter_coco` written to ``out``."""
    for chunk in iter_coco(videos, labels, description=description, spool_bytes=spool_bytes):
        out.write(chunk)


# --- MOT --------------------------------------------------------------------------------------


def _mot_lines(video: ExportVideo, cat_ids: dict[str, int]) -> Iterator[bytes]:
    # MOT ids are 1-based: track t is written as t + 1; untracked boxes get fresh ids after them.
    next_id = 2 + max(
        (o.track_id for objs in video.frames.values() for o in objs if o.track_id is not None),
        default=-1,
    )
    for frame in sorted(video.frames):
        lines = []
        for obj in video.frames[frame]:
            if obj.track_id is None:
                track = next_id
                next_id += 1
            else:
                track = obj.track_id + 1
            visibility = 0.5 if obj.occluded else 1.0
            lines.append(
                f"{frame + 1},{track},{_fmt(obj.x)},{_fmt(obj.y)},{_fmt(obj.w)},"
                f"{_fmt(obj.h)},1,{cat_ids[obj.label]},{visibility}\n"
            )
        yield "".join(lines).encode()


def iter_mot(
    videos: Iterable[ExportVideo], labels: Sequence[str], *, single: bool | None = None
) -> Chunks:
    """A MOT 1.1 zip: ``gt/gt.txt`` and ``gt/labels.txt`` (one folder per video when several;
    ``single`` says which when ``videos`` is an iterator, read once)."""
    cat_ids = _label_ids(labels)
    names = "\n".join(labels).encode() + b"\n"
    if single is None:
        videos = list(videos)
        single = len(videos) == 1

    def entries():
        for v in videos:
            prefix = "" if single else f"{v.name}/"
            yield f"{prefix}gt/gt.txt", _mot_lines(v, cat_ids)
            yield f"{prefix}gt/labels.txt", [names]

    return iter_zip(entries())


# --- CVAT for video ---------------------------------------------------------------------------


def _cvat_attribute_spec(parent: ET.Element, spec: Mapping[str, Any]) -> None:
    el = ET.SubElement(parent, "attribute")
    ET.SubElement(el, "name").text = str(spec["name"])
    ET.SubElement(el, "mutable").text = "True"  # a track may change it at a keyframe
    kind = spec.get("type")
    if kind == "bool":
        input_type, default, values = "checkbox", "false", ["false"]
    elif kind == "choice":
        input_type, default, values = "select", spec["values"][0], list(spec["values"])
    else:
        lo, hi = spec.get("min"), spec.get("max")
        lo = 0 if lo is None else lo
        hi = lo + 1e6 if hi is None else hi
        input_type, default, values = "number", f"{lo:g}", [f"{lo:g}", f"{hi:g}", "1"]
    ET.SubElement(el, "input_type").text = input_type
    ET.SubElement(el, "default_value").text = default
    ET.SubElement(el, "values").text = "\n".join(values)


def _cvat_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _cvat_meta(
    video: ExportVideo,
    labels: Sequence[str],
    task_name: str,
    label_attributes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> ET.Element:
    meta = ET.Element("meta")
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
        attributes_el = ET.SubElement(label_el, "attributes")
        for spec in (label_attributes or {}).get(name, ()):
            _cvat_attribute_spec(attributes_el, spec)
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text = str(video.width)
    ET.SubElement(size, "height").text = str(video.height)
    return meta


TrackKey = tuple[int, bool]  # (track id, whether this is the track's keyframe masks)


def _tracks_and_singles(
    video: ExportVideo,
) -> tuple[dict[TrackKey, list[tuple[int, ExportObject]]], list[tuple[int, ExportObject]]]:
    tracks: dict[TrackKey, list[tuple[int, ExportObject]]] = {}
    singles: list[tuple[int, ExportObject]] = []
    for frame in sorted(video.frames):
        for obj in video.frames[frame]:
            if obj.track_id is None:
                singles.append((frame, obj))
                continue
            if obj.rle is not None:  # a keyframe mask: its own mask track, the box in the box one
                tracks.setdefault((obj.track_id, True), []).append((frame, obj))
                obj = replace(obj, rle=None)
            tracks.setdefault((obj.track_id, False), []).append((frame, obj))
    return tracks, singles


def _cvat_shape(parent: ET.Element, frame: int, obj: ExportObject, *, outside: bool) -> None:
    common = {
        "frame": str(frame),
        "outside": "1" if outside else "0",
        "occluded": "1" if obj.occluded else "0",
        "keyframe": "1" if (obj.keyframe or outside) else "0",
    }
    if obj.points is not None:
        points = ";".join(f"{x:.2f},{y:.2f}" for x, y in obj.points)
        shape = ET.SubElement(parent, "polygon", **common, points=points, z_order="0")
    elif obj.rle is not None:
        runs, left, top, width, height = cvat_mask_rle(rle_codec.decode(obj.rle))
        shape = ET.SubElement(
            parent,
            "mask",
            **common,
            rle=", ".join(map(str, runs)),
            left=str(left),
            top=str(top),
            width=str(width),
            height=str(height),
            z_order="0",
        )
    else:
        shape = ET.SubElement(
            parent,
            "box",
            **common,
            xtl=f"{obj.x:.2f}",
            ytl=f"{obj.y:.2f}",
            xbr=f"{obj.x + obj.w:.2f}",
            ybr=f"{obj.y + obj.h:.2f}",
            z_order="0",
        )
    for name, value in (obj.attributes or {}).items():
        ET.SubElement(shape, "attribute", name=name).text = _cvat_value(value)


def cvat_mask_rle(mask: np.ndarray) -> tuple[list[int], int, int, int, int]:
    """CVAT's mask: (runs of the bounding box row by row from a 0-run, left, top, w, h).

    Row by row over the crop is column by column over its transpose: ``tasks.rle``'s order."""
    left, top, width, height = rle_codec.bbox(mask)
    if not width:
        return [0], 0, 0, 0, 0
    crop = np.asarray(mask, dtype=bool)[top : top + height, left : left + width]
    return rle_codec.encode(crop.T)["counts"], left, top, width, height


def cvat_mask_decode(
    runs: Sequence[int],
    left: int,
    top: int,
    width: int,
    height: int,
    *,
    frame_height: int,
    frame_width: int,
) -> np.ndarray:
    """The frame-sized mask of a CVAT ``<mask>`` (for reading our export back in tests)."""
    crop = rle_codec.decode({"size": [width, height], "counts": list(runs)}).T
    out = np.zeros((frame_height, frame_width), dtype=bool)
    out[top : top + height, left : left + width] = crop
    return out


def _cvat_tracks(video: ExportVideo) -> Iterator[ET.Element]:
    tracks, singles = _tracks_and_singles(video)
    out_id = 0
    for key in sorted(tracks):
        items = tracks[key]
        track_el = ET.Element("track", id=str(out_id), label=items[0][1].label, source="consensus")
        if (key[0], True) in tracks:  # a box track and its mask track: one object
            track_el.set("group_id", str(key[0] + 1))
        out_id += 1
        previous = None
        for frame, obj in items:
            if previous is not None and frame > previous[0] + 1:
                _cvat_shape(track_el, previous[0] + 1, previous[1], outside=True)  # a gap
            _cvat_shape(track_el, frame, obj, outside=False)
            previous = (frame, obj)
        if previous is not None and previous[0] + 1 < video.frame_count:
            _cvat_shape(track_el, previous[0] + 1, previous[1], outside=True)
        yield track_el
    for frame, obj in singles:  # untracked shapes: one-frame tracks
        track_el = ET.Element("track", id=str(out_id), label=obj.label, source="consensus")
        out_id += 1
        _cvat_shape(track_el, frame, obj, outside=False)
        if frame + 1 < video.frame_count:
            _cvat_shape(track_el, frame + 1, obj, outside=True)
        yield track_el


def _indented(el: ET.Element) -> bytes:
    ET.indent(el, space="  ", level=1)
    return b"  " + ET.tostring(el, encoding="utf-8", xml_declaration=False) + b"\n"


def iter_cvat_video(
    video: ExportVideo,
    labels: Sequence[str],
    *,
    task_name: str = "",
    label_attributes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Chunks:
    """CVAT for video 1.1 XML: tracks as ``<track>`` with per-frame ``<box>``, ``<polygon>`` or
    ``<mask>`` (their attributes as ``<attribute>`` children, declared in the meta's labels)."""
    yield b'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n'
    yield b"  <version>1.1</version>\n"
    yield _indented(_cvat_meta(video, labels, task_name, label_attributes))
    for track_el in _cvat_tracks(video):
        yield _indented(track_el)
    yield b"</annotations>\n"


def iter_cvat_videos(
    videos: Iterable[ExportVideo],
    labels: Sequence[str],
    *,
    label_attributes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Chunks:
    """Several videos: a zip of one CVAT XML file per video."""
    return iter_zip(
        (f"{v.name}.xml", iter_cvat_video(v, labels, label_attributes=label_attributes))
        for v in videos
    )


# --- Semantic PNG masks ------------------------------------------------------------------------


def _png(index: np.ndarray) -> bytes:
    buf = io.BytesIO()
    mode = "L" if index.max(initial=0) <= 255 else "I;16"
    img = Image.fromarray(index.astype(np.uint8 if mode == "L" else np.uint16), mode=mode)
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def semantic_index(objects: Sequence[ExportObject], cat_ids: dict[str, int], h: int, w: int):
    """The class-index image of one frame's masks (0 background, later masks on top)."""
    index = np.zeros((h, w), dtype=np.uint16)
    for obj in objects:
        if obj.rle is not None:
            index[rle_codec.decode(obj.rle)] = cat_ids[obj.label]
    return index


def iter_semantic_pngs(videos: Iterable[ExportVideo], labels: Sequence[str]) -> Chunks:
    """A zip of per-frame class-index PNGs (``<video>/frame_NNNNNN.png``) and ``labelmap.txt``;
    one frame decoded at a time."""
    cat_ids = _label_ids(labels)
    labelmap = "0 background\n" + "".join(f"{i} {n}\n" for n, i in cat_ids.items())

    def entries():
        yield "labelmap.txt", [labelmap.encode()]
        for video in videos:
            for frame in sorted(video.frames):
                objects = video.frames[frame]
                if not any(o.rle is not None for o in objects):
                    continue
                h, w = next(o.rle["size"] for o in objects if o.rle is not None)
                index = semantic_index(objects, cat_ids, int(h), int(w))
                yield _frame_name(video, frame, "png"), [_png(index)]

    return iter_zip(entries())


# --- Label Studio -----------------------------------------------------------------------------


def _pct(v: float, size: int) -> float:
    return round(100.0 * float(v) / size, 4) if size else 0.0


def _ls_box(video: ExportVideo, obj: ExportObject) -> tuple[float, float, float, float]:
    return (
        _pct(obj.x, video.width),
        _pct(obj.y, video.height),
        _pct(obj.w, video.width),
        _pct(obj.h, video.height),
    )


def keyframes(
    frames: Sequence[int], boxes: Sequence[Sequence[float]], *, tolerance: float
) -> list[int]:
    """Indices of the frames to keep so that linear interpolation between consecutive kept ones
    reproduces every other box within ``tolerance``: greedy, the first and last of every run of
    consecutive frames kept, and at most ``KEYFRAME_MAX_SPAN`` frames between two keyframes (so
    the work stays linear in the track's length)."""
    n = len(frames)
    if n == 0:
        return []
    kept, anchor = [0], 0
    for j in range(1, n):
        if frames[j] != frames[j - 1] + 1:  # a gap: the run ends at j - 1, a new one starts
            if kept[-1] != j - 1:
                kept.append(j - 1)
            kept.append(j)
            anchor = j
        elif j - anchor >= 2 and (
            j - anchor > KEYFRAME_MAX_SPAN or not _interpolates(frames, boxes, anchor, j, tolerance)
        ):
            kept.append(j - 1)
            anchor = j - 1
    if kept[-1] != n - 1:
        kept.append(n - 1)
    return kept


def _interpolates(frames, boxes, a: int, b: int, tolerance: float) -> bool:
    fa, fb = frames[a], frames[b]
    for k in range(a + 1, b):
        t = (frames[k] - fa) / (fb - fa)
        for va, vb, vk in zip(boxes[a], boxes[b], boxes[k], strict=True):
            if abs(va + (vb - va) * t - vk) > tolerance:
                return False
    return True


def _ls_region(video: ExportVideo, region_id: str, items: list[tuple[int, ExportObject]]) -> dict:
    fps = video.fps or DEFAULT_FPS
    frames = [f for f, _ in items]
    boxes = [_ls_box(video, o) for _, o in items]
    keep = keyframes(frames, boxes, tolerance=LS_TOLERANCE)
    sequence = []
    for k in keep:
        frame, (x, y, w, h) = frames[k] + 1, boxes[k]
        # A keyframe followed by a gap (or the last one) ends the track: enabled is false.
        last_of_run = k == len(frames) - 1 or frames[k + 1] != frames[k] + 1
        sequence.append(
            {
                "frame": frame,
                "enabled": not last_of_run,
                "rotation": 0,
                "x": x,
                "y": y,
                "width": w,
                "height": h,
                "time": round(frame / fps, 6),
            }
        )
    return {
        "id": region_id,
        "from_name": "box",
        "to_name": "video",
        "type": "videorectangle",
        "origin": "manual",
        "value": {
            "framesCount": video.frame_count,
            "duration": round(video.frame_count / fps, 6),
            "sequence": sequence,
            "labels": [items[0][1].label],
        },
    }


def _ls_task(video: ExportVideo, task_id: int) -> dict:
    tracks, singles = _tracks_and_singles(video)
    result = [_ls_region(video, f"track-{t}", tracks[t]) for t in sorted(tracks)]
    result += [
        _ls_region(video, f"box-{k}", [(frame, obj)]) for k, (frame, obj) in enumerate(singles)
    ]
    return {
        "id": task_id,
        "data": {"video": f"{video.name}.mp4"},
        "annotations": [{"id": task_id, "result": result}],
    }


LABEL_STUDIO_CONFIG = """<View>
  <Video name="video" value="$video" />
  <VideoRectangle name="box" toName="video" />
  <Labels name="videoLabels" toName="video">
{labels}
  </Labels>
</View>"""


def label_studio_config(labels: Sequence[str]) -> str:
    """The labeling interface the export's ``from_name``/``to_name`` refer to."""
    lines = "\n".join(f'    <Label value="{escape(n, {chr(34): "&quot;"})}"/>' for n in labels)
    return LABEL_STUDIO_CONFIG.format(labels=lines)


def iter_label_studio(videos: Iterable[ExportVideo]) -> Chunks:
    """Label Studio JSON: a list of tasks, one per video, its tracks as ``videorectangle``
    regions (boxes of untracked jobs as one-keyframe regions)."""
    yield b"["
    for k, video in enumerate(videos, start=1):
        yield (b"," if k > 1 else b"") + json.dumps(_ls_task(video, k)).encode()
    yield b"]"


# --- YOLO -------------------------------------------------------------------------------------


def _norm(v: float, size: int) -> str:
    return f"{min(max(float(v) / size, 0.0), 1.0):.6f}" if size else "0"


def _yolo_line(video: ExportVideo, obj: ExportObject, cls: int) -> str:
    W, H = video.width, video.height
    if obj.points is not None:
        coords = " ".join(f"{_norm(x, W)} {_norm(y, H)}" for x, y in obj.points)
        return f"{cls} {coords}\n"
    cx, cy = obj.x + obj.w / 2, obj.y + obj.h / 2
    return f"{cls} {_norm(cx, W)} {_norm(cy, H)} {_norm(obj.w, W)} {_norm(obj.h, H)}\n"


def yolo_data_yaml(labels: Sequence[str]) -> str:
    names = "\n".join(f"  {i}: {json.dumps(n)}" for i, n in enumerate(labels))
    return (
        "# Ultralytics YOLO dataset: put each frame in images/ under its label file's name\n"
        "# (labels/<video>/frame_NNNNNN.txt <-> images/<video>/frame_NNNNNN.jpg).\n"
        f"path: .\ntrain: images\nval: images\nnc: {len(labels)}\nnames:\n{names}\n"
    )


def iter_yolo(videos: Iterable[ExportVideo], labels: Sequence[str]) -> Chunks:
    """A YOLO zip: one label file per annotated frame and ``data.yaml``."""
    cls = {name: i for i, name in enumerate(labels)}

    def entries():
        yield "data.yaml", [yolo_data_yaml(labels).encode()]
        for video in videos:
            for frame in sorted(video.frames):
                objs = video.frames[frame]
                text = "".join(_yolo_line(video, o, cls[o.label]) for o in objs)
                yield f"labels/{_frame_name(video, frame, 'txt')}", [text.encode()]

    return iter_zip(entries())


# --- bytes, for callers that want the whole file ----------------------------------------------


def to_coco(
    videos: Iterable[ExportVideo], labels: Sequence[str], *, description: str = ""
) -> bytes:
    return b"".join(iter_coco(videos, labels, description=description))


def to_mot(video: ExportVideo, labels: Sequence[str]) -> bytes:
    return b"".join(iter_mot([video], labels))


def to_cvat_video(video: ExportVideo, labels: Sequence[str], *, task_name: str = "") -> bytes:
    return b"".join(iter_cvat_video(video, labels, task_name=task_name))


def to_label_studio(videos: Sequence[ExportVideo]) -> bytes:
    return b"".join(iter_label_studio(list(videos)))


def to_yolo(videos: Sequence[ExportVideo], labels: Sequence[str]) -> bytes:
    return b"".join(iter_yolo(list(videos), labels))


# --- ActivityNet (events) ---------------------------------------------------------------------

ACTIVITYNET_VERSION = "VERSION 1.3"


def _anet_entry(video: ExportVideo) -> dict:
    fps = video.fps or DEFAULT_FPS
    return {
        "subset": "training",
        "url": "",
        "fps": fps,
        "duration": round(video.frame_count / fps, 6),
        "duration_second": round(video.frame_count / fps, 6),
        "duration_frame": video.frame_count,
        "resolution": f"{video.width}x{video.height}",
        "annotations": [
            {
                "segment": [round(e.start / fps, 6), round((e.end + 1) / fps, 6)],
                "label": e.label,
                "frames": [e.start, e.end],
                **({"track_id": e.track_id} if e.track_id is not None else {}),
            }
            for e in sorted(video.events, key=lambda e: (e.start, e.end, e.label))
        ],
    }


def iter_activitynet(videos: Iterable[ExportVideo], labels: Sequence[str]) -> Chunks:
    """ActivityNet JSON, one video's entry per chunk (see the module's conventions)."""
    taxonomy = [
        {"nodeId": i, "nodeName": name, "parentId": 0, "parentName": "Root"}
        for i, name in enumerate(labels, start=1)
    ]
    head = {"version": ACTIVITYNET_VERSION, "taxonomy": taxonomy}
    yield json.dumps(head)[:-1].encode() + b', "database": {'
    for k, video in enumerate(videos):
        yield (b", " if k else b"") + json.dumps({video.name: _anet_entry(video)})[1:-1].encode()
    yield b"}}"


def to_activitynet(videos: Iterable[ExportVideo], labels: Sequence[str]) -> bytes:
    return b"".join(iter_activitynet(videos, labels))
