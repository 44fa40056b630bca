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
- MOT: CSV lines ``frame, id, x, y, w, h, conf, class, visibility``; frames are 1-based; rows with
  ``conf == 0`` are ignored (MOT's marker for "do not evaluate"); the label is ``default_label``
  (MOT has class numbers, which ``class_names`` can map).
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

Record = tuple[str, list[float], int | None]
Parsed = dict[int, list[Record]]


class GoldFormatError(ValueError):
    """The file is not in the expected format."""


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
