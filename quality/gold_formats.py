"""Known answers from the standard formats: COCO, CVAT for video (XML 1.1) and MOTChallenge.

Pure: each parser takes the file's text and returns per-frame boxes as plain records
``{frame: [(label, [x1, y1, x2, y2], track_id | None), ...]}`` with frames numbered from 0 like
the ingestion pipeline numbers them.

- COCO: ``images[].id`` → frame by ``frame_id`` when present (COCO-video style), else by the
  number in ``file_name`` (``frame_000123.jpg``), else by the order of the images; boxes are
  ``[x, y, w, h]``; ``categories[].name`` gives the label; ``track_id`` / ``instance_id`` (when
  present) the identity.
- CVAT for video 1.1: ``<track id label><box frame xtl ytl xbr ybr outside keyframe/></track>``;
  boxes with ``outside="1"`` are absent. Also plain ``<image id><box label .../></image>``.
- Segmentation masks, attributes and relations (:func:`parse_coco_shapes`,
  :func:`parse_cvat_shapes`): per frame a list of shapes ``{"label", "box" | "rle"[, "track"]
  [, "attributes"]}`` and per frame the relations ``(subject, predicate, object)`` between
  indexes of that list. COCO: a ``segmentation`` that is an RLE (``{"size", "counts"}``, the
  counts compressed as ``pycocotools.mask.encode`` writes them or a list of runs) is a mask;
  ``attributes`` beside CVAT's own ``occluded``/``track_id``/``keyframe`` are the object's; the
  top-level ``relations`` ``[{"image_id", "subject_id", "predicate", "object_id"}]`` name
  annotation ids of one image (what ``tasks.exports`` writes). CVAT for video 1.1: ``<mask
  rle left top width height>`` (the runs of the mask's box read row by row, 0-run first),
  ``<attribute name>value</attribute>`` children of a shape, typed by the meta's declaration
  (``checkbox`` a boolean, ``number`` a number).
- ActivityNet (:func:`parse_activitynet`): ``database.<video>.annotations[].segment`` in
  seconds (``frames`` ``[start, end]`` when present, as ``tasks.exports`` writes it, wins) and
  the video's ``fps``; :func:`events_in_frames` turns them into inclusive frame intervals.
- MOT: CSV lines ``frame, id, x, y, w, h, conf, class, visibility``; frames are 1-based; rows with
  ``conf == 0`` are ignored (MOT's marker for "do not evaluate"); the label is ``default_label``
  (MOT has class numbers, which ``class_names`` can map).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tasks import rle

Record = tuple[str, list[float], int | None]
Parsed = dict[int, list[Record]]


class GoldFormatError(ValueError):
    """The file is not in the expected format; ``field`` says where (a path into the file,
    ``annotations[3].segmentation``), empty for the file as a whole."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def parse_coco(text: str) -> Parsed:
    try:
        data = json.loads(text)
        images = data["images"]
        annotations = data["annotations"]
        categories = {c["id"]: c["name"] for c in data.get("categories", [])}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # nesting past the limit
        raise GoldFormatError(f"Not a COCO annotation file: {exc}") from None
    frame_of: dict[int, int] = {}
    for k, img in enumerate(sorted(images, key=lambda i: i["id"])):
        if "frame_id" in img:
            frame_of[img["id"]] = int(img["frame_id"])
            continue
        digits = re.findall(r"\d+", str(img.get("file_name", "")))
        frame_of[img["id"]] = int(digits[-1]) if digits else k
    out: Parsed = {f: [] for f in frame_of.values()}
    for ann in annotations:
        if ann.get("image_id") not in frame_of or "bbox" not in ann:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        track = ann.get("track_id", ann.get("instance_id"))
        out[frame_of[ann["image_id"]]].append(
            (
                categories.get(ann.get("category_id"), str(ann.get("category_id"))),
                [x, y, x + w, y + h],
                int(track) if track is not None else None,
            )
        )
    return out


def parse_cvat_xml(text: str) -> Parsed:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise GoldFormatError(f"Not a CVAT XML file: {exc}") from None
    out: Parsed = {}
    for track in root.iter("track"):
        tid = int(track.get("id", "0"))
        label = track.get("label", "")
        for box in track.iter("box"):
            frame = int(box.get("frame", "0"))
            out.setdefault(frame, [])
            if box.get("outside", "0") == "1":
                continue
            coords = [float(box.get(k, "0")) for k in ("xtl", "ytl", "xbr", "ybr")]
            out[frame].append((label, coords, tid))
    for image in root.iter("image"):
        frame = int(image.get("id", "0"))
        out.setdefault(frame, [])
        for box in image.iter("box"):
            coords = [float(box.get(k, "0")) for k in ("xtl", "ytl", "xbr", "ybr")]
            out[frame].append((box.get("label", ""), coords, None))
    if not out:
        raise GoldFormatError("The CVAT file has no tracks or images.")
    return out


def parse_mot(
    text: str, *, default_label: str = "", class_names: Mapping[int, str] | None = None
) -> Parsed:
    out: Parsed = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        try:
            frame, tid = int(float(row[0])), int(float(row[1]))
            x, y, w, h = (float(v) for v in row[2:6])
            conf = float(row[6]) if len(row) > 6 else 1.0
            cls = int(float(row[7])) if len(row) > 7 else -1
        except (ValueError, IndexError):
            raise GoldFormatError(f"Line {n} is not a MOT row: {','.join(row)[:80]}") from None
        out.setdefault(frame - 1, [])
        if conf == 0:
            continue
        label = (class_names or {}).get(cls, default_label)
        out[frame - 1].append((label, [x, y, x + w, y + h], tid))
    if not out:
        raise GoldFormatError("The MOT file has no rows.")
    return out


PARSERS = {"coco": parse_coco, "cvat": parse_cvat_xml, "mot": parse_mot}


# --- Masks, attributes and relations -----------------------------------------------------------

Shape = dict[str, Any]


@dataclass(frozen=True)
class Shapes:
    """Per frame its shapes, and its relations as indexes into that frame's list."""

    frames: dict[int, list[Shape]]
    relations: dict[int, list[tuple[int, str, int]]] = field(default_factory=dict)


def _coco_frames(images: Any) -> dict[int, int]:
    if not isinstance(images, list):
        raise GoldFormatError("must be a list", field="images")
    frame_of: dict[int, int] = {}
    for k, img in enumerate(images):
        if not isinstance(img, dict) or not isinstance(img.get("id"), int):
            raise GoldFormatError("must be an object with an integer id", field=f"images[{k}]")
    for k, img in enumerate(sorted(images, key=lambda i: i["id"])):
        if "frame_id" in img:
            if not isinstance(img["frame_id"], int) or img["frame_id"] < 0:
                raise GoldFormatError("must be a frame number", field=f"images[{k}].frame_id")
            frame_of[img["id"]] = img["frame_id"]
            continue
        digits = re.findall(r"\d+", str(img.get("file_name", "")))
        frame_of[img["id"]] = int(digits[-1]) if digits else k
    return frame_of


def _coco_rle(seg: Any, path: str) -> dict[str, Any]:
    size = seg.get("size")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and 0 < v <= 100_000 for v in size)
    ):
        raise GoldFormatError("must be [height, width]", field=f"{path}.size")
    counts = seg.get("counts")
    if isinstance(counts, str):
        try:
            out = rle.from_coco_string(counts, size)
        except (ValueError, UnicodeEncodeError):
            raise GoldFormatError("is not a COCO compressed RLE", field=f"{path}.counts") from None
    elif isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts):
        out = {"size": list(size), "counts": counts}
    else:
        raise GoldFormatError(
            "must be a compressed string or a list of runs", field=f"{path}.counts"
        )
    problems = rle.rle_problems(out, height=size[0], width=size[1])
    if problems:
        raise GoldFormatError(problems[0], field=f"{path}.counts")
    return rle.canonical(out)


def parse_coco_shapes(text: str) -> Shapes:
    """Boxes or RLE masks, with their attributes and the top-level relations (see above)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GoldFormatError(f"Not a COCO annotation file: {exc}") from None
    if not isinstance(data, dict):
        raise GoldFormatError("Not a COCO annotation file: not a JSON object.")
    frame_of = _coco_frames(data.get("images"))
    cats = data.get("categories", [])
    if not isinstance(cats, list) or not all(
        isinstance(c, dict) and "id" in c and isinstance(c.get("name"), str) for c in cats
    ):
        raise GoldFormatError("must be a list of {id, name}", field="categories")
    names = {c["id"]: c["name"] for c in cats}
    anns = data.get("annotations")
    if not isinstance(anns, list):
        raise GoldFormatError("must be a list", field="annotations")
    out: dict[int, list[Shape]] = {f: [] for f in frame_of.values()}
    where: dict[Any, tuple[int, int, Any]] = {}  # annotation id -> (frame, index, image id)
    for k, ann in enumerate(anns):
        path = f"annotations[{k}]"
        if not isinstance(ann, dict):
            raise GoldFormatError("must be an object", field=path)
        if ann.get("image_id") not in frame_of:
            raise GoldFormatError("names no image of the file", field=f"{path}.image_id")
        label = names.get(ann.get("category_id"))
        if label is None:
            raise GoldFormatError("names no category of the file", field=f"{path}.category_id")
        shape: Shape = {"label": label}
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            shape["rle"] = _coco_rle(seg, f"{path}.segmentation")
        else:
            box = ann.get("bbox")
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
            ):
                raise GoldFormatError("must be [x, y, width, height]", field=f"{path}.bbox")
            x, y, w, h = (float(v) for v in box)
            shape["box"] = [x, y, x + w, y + h]
        attrs = ann.get("attributes")
        if attrs is not None and not isinstance(attrs, dict):
            raise GoldFormatError("must be an object", field=f"{path}.attributes")
        attrs = dict(attrs or {})
        track = ann.get("track_id", ann.get("instance_id", attrs.get("track_id")))
        if track is not None:
            if not isinstance(track, int) or isinstance(track, bool):
                raise GoldFormatError("must be an integer", field=f"{path}.track_id")
            shape["track"] = track
        attrs.pop("track_id", None)  # the identity, read above
        if attrs:
            shape["attributes"] = attrs
        frame = frame_of[ann["image_id"]]
        where[ann.get("id", ("no id", k))] = (frame, len(out[frame]), ann["image_id"])
        out[frame].append(shape)
    relations: dict[int, list[tuple[int, str, int]]] = {}
    rels = data.get("relations", [])
    if not isinstance(rels, list):
        raise GoldFormatError("must be a list", field="relations")
    for k, r in enumerate(rels):
        path = f"relations[{k}]"
        if not isinstance(r, dict) or not isinstance(r.get("predicate"), str):
            raise GoldFormatError("must be {subject_id, predicate, object_id}", field=path)
        subj, obj = where.get(r.get("subject_id")), where.get(r.get("object_id"))
        if subj is None:
            raise GoldFormatError("names no annotation of the file", field=f"{path}.subject_id")
        if obj is None:
            raise GoldFormatError("names no annotation of the file", field=f"{path}.object_id")
        if subj[0] != obj[0] or subj[2] != obj[2]:
            raise GoldFormatError("relates annotations of two images", field=path)
        relations.setdefault(subj[0], []).append((subj[1], r["predicate"], obj[1]))
    return Shapes(out, relations)


#: CVAT's own attributes of a shape, which a COCO file from CVAT has beside a job's: dropped on
#: import unless the job declares one of the name for the label (``occluded`` often is).
CVAT_SHAPE_ATTRIBUTES = ("occluded", "track_id", "keyframe", "z_order", "outside")


def cvat_mask_rle(
    runs: Sequence[int], *, left: int, top: int, width: int, height: int, size: Sequence[int]
) -> dict[str, Any]:
    """The full-frame RLE (``tasks.rle``'s column-major form) of CVAT's mask: ``runs`` of its
    ``width`` x ``height`` box at (``left``, ``top``) read row by row, 0-run first."""
    fh, fw = int(size[0]), int(size[1])
    if sum(runs) != width * height or any(r < 0 for r in runs):
        raise ValueError(f"the runs must add up to the box's {width}x{height} pixels")
    if left < 0 or top < 0 or left + width > fw or top + height > fh:
        raise ValueError(f"the box must lie inside the {fw}x{fh} frame")
    flat = np.zeros(width * height, dtype=bool)
    pos = 0
    for i, r in enumerate(runs):
        if i % 2:
            flat[pos : pos + r] = True
        pos += r
    frame = np.zeros((fh, fw), dtype=bool)
    frame[top : top + height, left : left + width] = flat.reshape(height, width)
    return rle.encode(frame)


def _cvat_types(root: ET.Element) -> dict[tuple[str, str], str]:
    types: dict[tuple[str, str], str] = {}
    for label in root.iter("label"):
        name = label.findtext("name") or ""
        for a in label.iter("attribute"):
            types[(name, a.findtext("name") or "")] = a.findtext("input_type") or "text"
    return types


def _cvat_value(text: str, kind: str, path: str) -> Any:
    if kind == "checkbox":
        if text.strip().lower() not in ("true", "false"):
            raise GoldFormatError("must be true or false", field=path)
        return text.strip().lower() == "true"
    if kind == "number":
        try:
            value = float(text)
        except ValueError:
            raise GoldFormatError("must be a number", field=path) from None
        return int(value) if value.is_integer() else value
    return text


def parse_cvat_shapes(text: str, *, size: Sequence[int]) -> Shapes:
    """Boxes or masks of CVAT for video 1.1 tracks (and images) with their attributes; masks on
    a frame of ``size`` ``[height, width]``."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise GoldFormatError(f"Not a CVAT XML file: {exc}") from None
    types = _cvat_types(root)
    out: dict[int, list[Shape]] = {}

    def shape_of(el: ET.Element, label: str, path: str) -> Shape | None:
        shape: Shape = {"label": label}
        if el.tag == "box":
            try:
                shape["box"] = [float(el.get(k, "")) for k in ("xtl", "ytl", "xbr", "ybr")]
            except ValueError:
                raise GoldFormatError("needs numeric xtl, ytl, xbr, ybr", field=path) from None
        elif el.tag == "mask":
            try:
                runs = [int(v) for v in (el.get("rle") or "").split(",") if v.strip()]
                box = {k: int(float(el.get(k, ""))) for k in ("left", "top", "width", "height")}
            except ValueError:
                raise GoldFormatError(
                    "needs rle runs and numeric left, top, width, height", field=path
                ) from None
            try:
                shape["rle"] = cvat_mask_rle(runs, size=size, **box)
            except ValueError as exc:
                raise GoldFormatError(str(exc), field=f"{path}.rle") from None
        else:
            return None
        attrs = {}
        for a in el.findall("attribute"):
            name = a.get("name", "")
            kind = types.get((label, name), "text")
            attrs[name] = _cvat_value(a.text or "", kind, f"{path}.attribute[{name}]")
        if attrs:
            shape["attributes"] = attrs
        return shape

    for t, track in enumerate(root.iter("track")):
        tid_text, label = track.get("id", str(t)), track.get("label", "")
        if not tid_text.lstrip("-").isdigit():
            raise GoldFormatError("must be an integer", field=f"track[{t}].id")
        for k, el in enumerate(track):
            path = f"track[{t}].{el.tag}[{k}]"
            if el.tag not in ("box", "mask"):
                continue
            frame_text = el.get("frame", "")
            if not frame_text.isdigit():
                raise GoldFormatError("must be a frame number", field=f"{path}.frame")
            frame = int(frame_text)
            out.setdefault(frame, [])
            if el.get("outside", "0") == "1":
                continue
            shape = shape_of(el, label, path)
            if shape is not None:
                shape["track"] = int(tid_text)
                out[frame].append(shape)
    for i, image in enumerate(root.iter("image")):
        frame_text = image.get("id", "")
        if not frame_text.isdigit():
            raise GoldFormatError("must be a frame number", field=f"image[{i}].id")
        frame = int(frame_text)
        out.setdefault(frame, [])
        for k, el in enumerate(image):
            shape = shape_of(el, el.get("label", ""), f"image[{i}].{el.tag}[{k}]")
            if shape is not None:
                out[frame].append(shape)
    if not out:
        raise GoldFormatError("The CVAT file has no tracks or images.")
    return Shapes(out)


# --- Events (ActivityNet) ----------------------------------------------------------------------


@dataclass(frozen=True)
class AnetVideo:
    """One video's entry: its fps (None when the file gives none) and events as
    ``(label, start second, end second, [start frame, end frame] | None, track | None)``."""

    fps: float | None
    events: list[tuple[str, float, float, tuple[int, int] | None, int | None]]


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def parse_activitynet(text: str) -> dict[str, AnetVideo]:
    """The videos of an ActivityNet (1.3) ground-truth file, by their key in ``database``."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GoldFormatError(f"Not an ActivityNet file: {exc}") from None
    db = data.get("database") if isinstance(data, dict) else None
    if not isinstance(db, dict) or not db:
        raise GoldFormatError("must be an object of videos", field="database")
    out: dict[str, AnetVideo] = {}
    for name, entry in db.items():
        base = f"database.{name}"
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations"), list):
            raise GoldFormatError("must have an annotations list", field=base)
        fps = entry.get("fps")
        if fps is not None and (not _number(fps) or fps <= 0):
            raise GoldFormatError("must be a positive number", field=f"{base}.fps")
        events = []
        for k, a in enumerate(entry["annotations"]):
            path = f"{base}.annotations[{k}]"
            if not isinstance(a, dict) or not isinstance(a.get("label"), str):
                raise GoldFormatError("must be {segment, label}", field=path)
            seg = a.get("segment")
            if (
                not isinstance(seg, list)
                or len(seg) != 2
                or not all(_number(v) for v in seg)
                or not 0 <= seg[0] <= seg[1]
            ):
                raise GoldFormatError(
                    "must be [start, end] seconds, start ≤ end", field=f"{path}.segment"
                )
            frames = a.get("frames")
            if frames is not None:
                if (
                    not isinstance(frames, list)
                    or len(frames) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in frames)
                    or not 0 <= frames[0] <= frames[1]
                ):
                    raise GoldFormatError(
                        "must be [start, end] frames, start ≤ end", field=f"{path}.frames"
                    )
                frames = (frames[0], frames[1])
            track = a.get("track_id")
            if track is not None and (not isinstance(track, int) or isinstance(track, bool)):
                raise GoldFormatError("must be an integer", field=f"{path}.track_id")
            events.append((a["label"], float(seg[0]), float(seg[1]), frames, track))
        out[str(name)] = AnetVideo(float(fps) if fps is not None else None, events)
    return out


def events_in_frames(video: AnetVideo, *, fps: float) -> list[dict[str, Any]]:
    """The entry's events as inclusive frame intervals ``{"label", "start", "end"[, "track"]}``:
    their ``frames`` when given, else ``[start·fps, end·fps)`` (the export's convention: an
    event on frames ``[s, e]`` spans ``[s / fps, (e + 1) / fps]``) at the file's fps, else
    ``fps``."""
    rate = video.fps or fps
    out = []
    for label, t0, t1, frames, track in video.events:
        if frames is not None:
            start, end = frames
        else:
            start = round(t0 * rate)
            end = max(start, round(t1 * rate) - 1)
        item: dict[str, Any] = {"label": label, "start": start, "end": end}
        if track is not None:
            item["track"] = track
        out.append(item)
    return out


def payload_from_shapes(
    parsed: Shapes, frames: Sequence[int], *, annotation_type: str
) -> dict[str, Any]:
    """A submission payload (``tasks.annotations``' format) of ``parsed``'s shapes on
    ``frames``: boxes or masks with their attributes and relations (indexes into the payload's
    list), or tracks with a keyframe per frame carrying the frame's attributes and relations
    between track ids."""
    if annotation_type == "track":
        per_track: dict[int, dict[str, Any]] = {}
        relations: set[tuple[int, str, int]] = set()
        ordered = sorted(frames)
        for f in ordered:
            shapes_ = parsed.frames.get(f, [])
            for sh in shapes_:
                tid = int(sh.get("track", -1))
                track = per_track.setdefault(
                    tid, {"id": tid, "label": sh["label"], "keyframes": []}
                )
                key: dict[str, Any] = {"frame": f, "box": [round(v, 2) for v in sh["box"]]}
                if sh.get("attributes"):
                    key["attributes"] = sh["attributes"]
                track["keyframes"].append(key)
            for i, predicate, j in parsed.relations.get(f, ()):
                relations.add(
                    (int(shapes_[i].get("track", -1)), predicate, int(shapes_[j].get("track", -1)))
                )
        tracks = []
        for _tid, track in sorted(per_track.items()):
            last = track["keyframes"][-1]["frame"]
            if last < ordered[-1]:
                track["keyframes"].append(
                    {"frame": ordered[ordered.index(last) + 1], "outside": True}
                )
            tracks.append(track)
        out: dict[str, Any] = {"tracks": tracks}
        if relations:
            out["relations"] = [
                {"subject": s, "predicate": p, "object": o} for s, p, o in sorted(relations)
            ]
        return out
    key_name = "masks" if annotation_type == "mask" else "boxes"
    items: list[dict[str, Any]] = []
    rels: list[dict[str, Any]] = []
    for f in sorted(frames):
        base = len(items)
        for sh in parsed.frames.get(f, []):
            item: dict[str, Any] = {"frame": f, "label": sh["label"]}
            if annotation_type == "mask":
                if "rle" not in sh:
                    raise GoldFormatError(
                        f"frame {f} has a box where this mask job needs a mask", field="content"
                    )
                item["rle"] = sh["rle"]
            else:
                if "box" not in sh:
                    raise GoldFormatError(
                        f"frame {f} has a mask where this box job needs a box", field="content"
                    )
                item["box"] = [round(v, 2) for v in sh["box"]]
            if sh.get("attributes"):
                item["attributes"] = sh["attributes"]
            items.append(item)
        rels.extend(
            {"subject": base + i, "predicate": p, "object": base + j}
            for i, p, j in parsed.relations.get(f, ())
        )
    out = {key_name: items}
    if rels:
        out["relations"] = rels
    return out
