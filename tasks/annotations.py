"""Annotation payloads: the schema of each annotation type, validated field by field (pure).

Knows nothing of Django. ``validate_payload`` returns the normalised payload and its per-frame
shapes, or raises ``AnnotationInvalid`` whose ``fields`` maps a path in the payload
(``"tracks[0].keyframes[2].box"``) to messages a worker can act on.

Payloads (boxes are ``[x1, y1, x2, y2]`` in pixels of the frame, origin top-left):

* ``bbox``:     ``{"boxes": [{"frame": 30, "label": "car", "box": [x1, y1, x2, y2]}]}``
* ``polygon``:  ``{"polygons": [{"frame": 30, "label": "car", "points": [[x, y], ...]}]}``
* ``classify``: ``{"labels": [{"frame": 30, "label": "car"}]}`` — every frame exactly once
* ``mask``:     ``{"masks": [{"frame": 30, "label": "road", "rle": {"size": [h, w], "counts":
  [n0, n1, ...]}}]}`` — each item one instance, as COCO's uncompressed RLE (``tasks.rle``:
  column-major, counts from a run of 0-pixels, ``size`` the frame's); semantic segmentation is
  the union per class. An item may give ``"points": [[x, y], ...]`` instead of ``rle`` (the
  workspace's polygon-to-mask): it is rasterised and stored as ``rle``; a polygon whose edges
  cross is refused like a polygon's.
* ``track``:    ``{"tracks": [{"id": 1, "label": "car", "keyframes":
  [{"frame": 0, "box": [...], "outside": false}, ...]}]}`` — keyframes strictly increasing;
  an ``outside`` keyframe ends the object's visibility (its ``box`` may be omitted). A track
  payload may also carry ``"events": [{"label", "start", "end", "track": <id>}]``: actions of
  one of its tracks, labelled from the job's ``event_labels``. Masks on tracks: see below.
* ``event``:    ``{"events": [{"label": "crossing", "start": 120, "end": 210}]}`` — labelled
  frame intervals, inclusive, inside the microtask's range; two events of one label (on one
  track) never share a frame.

Masks on tracks (a ``track`` job with ``track_masks``): each keyframe that is not ``outside``
may carry ``"mask": {"size": [h, w], "counts": [...]}``, the same RLE contract as a mask job's
(frame size, bounded runs — ``MAX_MASK_COUNTS_TOTAL`` over the whole payload, at most
``MAX_KEYFRAME_MASKS`` masks — not empty). The keyframe's ``box`` may then be omitted: it is
the mask's extents ``[x, y, x + w, y + h]``. When a box is given, at least
``MASK_INSIDE_BOX_MIN`` of the mask's pixels lie inside it (a box drawn for one object and a
mask painted for another are refused, a brush stroke a pixel over the edge is not). Masks are
not interpolated: between keyframes a track has only its interpolated box; a mask is a
keyframe's own. A mask on a job without ``track_masks``, or on an ``outside`` keyframe, is
refused on ``tracks[i].keyframes[k].mask``.

Boxes, polygons, tracks and keyframes may carry ``"attributes"`` of the job's schema, and the
payload of those three kinds a top-level ``"relations"`` list: see ``tasks.attributes``.

Per-frame shapes: ``{"<frame>": [shape, ...]}`` for every frame of the microtask, where a shape
is ``{"label", "box"}``, ``{"label", "points"}``, ``{"label"}``, ``{"label", "rle"}``,
``{"track", "label", "box"}`` (with ``"rle"`` on a keyframe that has a mask) or, for events,
``{"label", "event"}`` on every frame the event covers (``event``: its index).

Error paths — a contract with the annotation page, which parses them to point at the offending
shape (``parseErrorPath`` in ``static/js/annotate/core.mjs``). A rejected submission answers
``{"error": {"code": "invalid", "message", "fields": {path: [message, ...]}}}`` where every
path is built by ``error_path`` and reads::

    path   := list "[" index "]" [ ".keyframes[" index "]" ] [ "." field ]  |  name
    list   := "tracks" | "boxes" | "polygons" | "labels" | "events" | "masks" | "relations"
    field  := "frame" | "label" | "box" | "points" | "id" | "keyframes" | "outside" | "rle" | "mask"
            | "start" | "end" | "track" | "from_proposal"
            | "attributes" [ "." attribute ] | "subject" | "predicate" | "object"
    answer := question [ "." path ]

``index`` counts from 0 in the list as submitted; ``attribute`` is an attribute's name (an
identifier, ``marketplace.label_schema``; an unknown name that is not one is reported on
``attributes``); ``name`` is a key on its own: ``payload``, a
list key for the list as a whole (``labels``: a frame has no label), or a field the job does
not take. ``from_proposal`` (an item kept from a machine proposal, ``tasks.proposal_sources``)
is checked after the schema, by ``tasks.proposals``. The qualification API puts the
question's id first (``answer_path``); a question on its own means "answer this question".
``tests/vectors/error_paths.json`` holds the cases both sides are tested on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketplace import label_schema

from . import rle as rle_codec
from .attributes import (
    attach_item_relations,
    attach_track_extras,
    check_attributes,
    check_relations,
)
from .interpolation import track_from_payload, tracks_to_frames

MAX_SHAPES = 5_000
MAX_MASKS_PER_FRAME = 50
# All the runs of one submission: bounds the work of checking it (a ragged 1280x720 mask has a
# few thousand runs) and the row it is stored in.
MAX_MASK_COUNTS_TOTAL = 400_000
MAX_POLYGON_POINTS = 500
MAX_KEYFRAMES = 5_000
MAX_EVENTS = 500
# The share of a keyframe mask's pixels that must lie inside the keyframe's box, when one is given.
MASK_INSIDE_BOX_MIN = 0.9
# Keyframe masks in one track payload: each is decoded once to be checked against its box, so
# their number bounds that work (20 objects x 30 keyframes fit).
MAX_KEYFRAME_MASKS = 600

TOP_KEY = {
    "bbox": "boxes",
    "polygon": "polygons",
    "classify": "labels",
    "track": "tracks",
    "event": "events",
    "mask": "masks",
}
# Types whose microtasks are contiguous frame ranges (segments), not sampled frames.
SEGMENT_TYPES = frozenset({"track", "event"})


@dataclass(frozen=True)
class AnnotationContext:
    """What a payload is checked against: the job's schema and the microtask's frames."""

    annotation_type: str
    classes: Sequence[str]
    width: int
    height: int
    frame_start: int
    frame_end: int
    frames: Sequence[int] = ()  # the sampled frames for per-frame types; all of the range if empty
    event_labels: Sequence[str] = ()  # a track job's event labels (an event job's are classes)
    label_attributes: Mapping[str, Any] = field(
        default_factory=dict
    )  # see marketplace.label_schema
    relation_predicates: Sequence[str] = ()
    track_masks: bool = False  # a track job asking for a mask on each keyframe

    def frame_set(self) -> frozenset[int]:
        if self.annotation_type not in SEGMENT_TYPES and self.frames:
            return frozenset(int(f) for f in self.frames)
        return frozenset(range(self.frame_start, self.frame_end + 1))


@dataclass
class ValidatedAnnotation:
    payload: dict[str, Any]
    frames: dict[str, list[dict[str, Any]]]
    shape_count: int


@dataclass
class AnnotationInvalid(Exception):
    """The annotation does not fit the job's schema."""

    fields: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        first = next(iter(self.fields.items()), ("payload", ["is not valid"]))
        more = len(self.fields) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        return f"The annotation is not valid: {first[0]} {first[1][0]}{suffix}."


def error_path(
    key: str, index: int | None = None, *, keyframe: int | None = None, field: str | None = None
) -> str:
    """The path of a problem in a payload, in the declared format ("Error paths" above)."""
    if index is None:
        if keyframe is not None or field is not None:
            raise ValueError("only an item in a list has keyframes or fields")
        return key
    path = f"{key}[{index}]"
    if keyframe is not None:
        path += f".keyframes[{keyframe}]"
    if field is not None:
        path += f".{field}"
    return path


def answer_path(question_id: int, path: str | None = None) -> str:
    """The path of a problem in one answer of a qualification test (``path`` None: the answer)."""
    return str(question_id) if path is None else f"{question_id}.{path}"


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields)


def _is_number(value: Any) -> bool:
    # An integer too large for a float (10**400 parses as JSON) is no coordinate: not a 500.
    return label_schema.is_number(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_frame(
    value: Any, path: str, ctx: AnnotationContext, allowed: frozenset[int], err
) -> bool:
    if not _is_int(value):
        err.add(path, "must be a whole frame number")
        return False
    if value not in allowed:
        if ctx.annotation_type in SEGMENT_TYPES or not ctx.frames:
            err.add(
                path, f"frame {value} is outside this microtask ({ctx.frame_start}-{ctx.frame_end})"
            )
        else:
            err.add(path, f"frame {value} is not one of this microtask's frames")
        return False
    return True


def _check_label(value: Any, path: str, ctx: AnnotationContext, err) -> bool:
    if not isinstance(value, str) or value not in ctx.classes:
        shown = value if isinstance(value, str) else type(value).__name__
        err.add(path, f"unknown class {shown!r}; use one of: {', '.join(ctx.classes)}")
        return False
    return True


def _check_box(value: Any, path: str, ctx: AnnotationContext, err) -> list[float] | None:
    if not isinstance(value, list | tuple) or len(value) != 4 or not all(map(_is_number, value)):
        err.add(path, "must be four numbers [x1, y1, x2, y2]")
        return None
    x1, y1, x2, y2 = (float(v) for v in value)
    ok = True
    if x2 <= x1 or y2 <= y1:
        err.add(path, "must have a positive width and height (x2 > x1, y2 > y1)")
        ok = False
    if x1 < 0 or y1 < 0 or x2 > ctx.width or y2 > ctx.height:
        err.add(path, f"must lie inside the {ctx.width}x{ctx.height} frame")
        ok = False
    return [x1, y1, x2, y2] if ok else None


def _object_list(payload: Any, key: str, err, *, optional: Sequence[str] = ()) -> list | None:
    if not isinstance(payload, dict):
        err.add("payload", f'must be a JSON object like {{"{key}": [...]}}')
        return None
    unknown = sorted(set(payload) - {key, *optional})
    for name in unknown:
        err.add(name, f'unexpected field; this job takes "{key}"')
    items = payload.get(key)
    if not isinstance(items, list):
        err.add(key, "must be a list")
        return None
    if len(items) > MAX_SHAPES:
        err.add(key, f"has {len(items)} items; at most {MAX_SHAPES} are allowed")
        return None
    return items


def _segments_cross(p1, p2, p3, p4) -> bool:
    def orient(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2 = orient(p3, p4, p1), orient(p3, p4, p2)
    d3, d4 = orient(p1, p2, p3), orient(p1, p2, p4)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True

    def on_segment(a, b, c) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    return (
        (d1 == 0 and on_segment(p3, p4, p1))
        or (d2 == 0 and on_segment(p3, p4, p2))
        or (d3 == 0 and on_segment(p1, p2, p3))
        or (d4 == 0 and on_segment(p1, p2, p4))
    )


def polygon_self_intersects(points: Sequence[Sequence[float]]) -> bool:
    """Whether two non-adjacent edges of the closed polygon touch or cross (O(n²), n ≤ 500)."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a vertex
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def polygon_area(points: Sequence[Sequence[float]]) -> float:
    n = len(points)
    twice = sum(
        points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
        for i in range(n)
    )
    return abs(twice) / 2.0


def _empty_frames(ctx: AnnotationContext) -> dict[str, list]:
    return {str(f): [] for f in sorted(ctx.frame_set())}


def _validate_boxes(items: list, ctx: AnnotationContext, err) -> ValidatedAnnotation:
    allowed = ctx.frame_set()
    schema = label_schema.parse(ctx.label_attributes)
    out, frames = [], _empty_frames(ctx)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            err.add(error_path("boxes", i), 'must be an object {"frame", "label", "box"}')
            continue
        path = error_path("boxes", i, field="frame")
        ok_f = _check_frame(item.get("frame"), path, ctx, allowed, err)
        ok_l = _check_label(item.get("label"), error_path("boxes", i, field="label"), ctx, err)
        box = _check_box(item.get("box"), error_path("boxes", i, field="box"), ctx, err)
        attrs = check_attributes(
            item.get("attributes"), ok_l and item["label"], error_path("boxes", i), schema, err
        )
        if ok_f and ok_l and box is not None:
            shape = {"label": item["label"], "box": box, **({"attributes": attrs} if attrs else {})}
            out.append({"frame": item["frame"], **shape})
            frames[str(item["frame"])].append(shape)
    return ValidatedAnnotation({"boxes": out}, frames, len(out))


def _check_points(pts: Any, path: str, ctx: AnnotationContext, err) -> list[list[float]] | None:
    """A simple polygon inside the frame, or None with the problem said at ``path``."""
    if not isinstance(pts, list) or not all(
        isinstance(p, list | tuple) and len(p) == 2 and all(map(_is_number, p)) for p in pts
    ):
        err.add(path, "must be a list of [x, y] points")
        return None
    if len(pts) < 3:
        err.add(path, "a polygon needs at least 3 points")
        return None
    if len(pts) > MAX_POLYGON_POINTS:
        err.add(path, f"at most {MAX_POLYGON_POINTS} points are allowed")
        return None
    points = [[float(x), float(y)] for x, y in pts]
    if any(x < 0 or y < 0 or x > ctx.width or y > ctx.height for x, y in points):
        err.add(path, f"every point must lie inside the {ctx.width}x{ctx.height} frame")
        return None
    if polygon_self_intersects(points):
        err.add(path, "the polygon's edges cross each other")
        return None
    if polygon_area(points) <= 0:
        err.add(path, "the polygon has no area (points on one line)")
        return None
    return points


def _validate_polygons(items: list, ctx: AnnotationContext, err) -> ValidatedAnnotation:
    allowed = ctx.frame_set()
    schema = label_schema.parse(ctx.label_attributes)
    out, frames = [], _empty_frames(ctx)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            err.add(error_path("polygons", i), 'must be an object {"frame", "label", "points"}')
            continue
        path = error_path("polygons", i, field="frame")
        ok_f = _check_frame(item.get("frame"), path, ctx, allowed, err)
        ok_l = _check_label(item.get("label"), error_path("polygons", i, field="label"), ctx, err)
        attrs = check_attributes(
            item.get("attributes"), ok_l and item["label"], error_path("polygons", i), schema, err
        )
        points = _check_points(
            item.get("points"), error_path("polygons", i, field="points"), ctx, err
        )
        if points is None:
            continue
        if ok_f and ok_l:
            shape = {"label": item["label"], "points": points}
            if attrs:
                shape["attributes"] = attrs
            out.append({"frame": item["frame"], **shape})
            frames[str(item["frame"])].append(shape)
    return ValidatedAnnotation({"polygons": out}, frames, len(out))


def _validate_masks(items: list, ctx: AnnotationContext, err) -> ValidatedAnnotation:
    allowed = ctx.frame_set()
    out, frames = [], _empty_frames(ctx)
    per_frame: dict[int, int] = {}
    runs = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            err.add(error_path("masks", i), 'must be an object {"frame", "label", "rle"}')
            continue
        for name in sorted(set(item) - {"frame", "label", "rle", "points"}):
            err.add(error_path("masks", i), f"unexpected field {name!r}")
        path = error_path("masks", i, field="frame")
        ok_f = _check_frame(item.get("frame"), path, ctx, allowed, err)
        ok_l = _check_label(item.get("label"), error_path("masks", i, field="label"), ctx, err)
        if ok_f:
            per_frame[item["frame"]] = per_frame.get(item["frame"], 0) + 1
            if per_frame[item["frame"]] > MAX_MASKS_PER_FRAME:
                err.add(path, f"at most {MAX_MASKS_PER_FRAME} masks on one frame")
                ok_f = False
        has_rle, has_points = "rle" in item, "points" in item
        if has_rle == has_points:
            err.add(error_path("masks", i, field="rle"), 'give either "rle" or "points"')
            continue
        if has_points:
            points = _check_points(item["points"], error_path("masks", i, field="points"), ctx, err)
            if points is None:
                continue
            mask = rle_codec.from_polygon(points, height=ctx.height, width=ctx.width)
            value = rle_codec.encode(mask)
        else:
            rpath = error_path("masks", i, field="rle")
            problems = rle_codec.rle_problems(item["rle"], height=ctx.height, width=ctx.width)
            if not problems:
                runs += len(item["rle"]["counts"])
                if runs > MAX_MASK_COUNTS_TOTAL:
                    problems = [f"the masks have over {MAX_MASK_COUNTS_TOTAL} runs in all"]
            for message in problems:
                err.add(rpath, message)
            if problems:
                continue
            value = rle_codec.canonical(item["rle"])
        if ok_f and ok_l:
            shape = {"label": item["label"], "rle": value}
            out.append({"frame": item["frame"], **shape})
            frames[str(item["frame"])].append(shape)
    return ValidatedAnnotation({"masks": out}, frames, len(out))


def _validate_labels(items: list, ctx: AnnotationContext, err) -> ValidatedAnnotation:
    allowed = ctx.frame_set()
    out, frames, seen = [], _empty_frames(ctx), set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            err.add(error_path("labels", i), 'must be an object {"frame", "label"}')
            continue
        path = error_path("labels", i, field="frame")
        ok_f = _check_frame(item.get("frame"), path, ctx, allowed, err)
        ok_l = _check_label(item.get("label"), error_path("labels", i, field="label"), ctx, err)
        if ok_f and item["frame"] in seen:
            err.add(path, f"frame {item['frame']} is labelled twice")
            continue
        if ok_f and ok_l:
            seen.add(item["frame"])
            out.append({"frame": item["frame"], "label": item["label"]})
            frames[str(item["frame"])].append({"label": item["label"]})
    missing = sorted(allowed - seen)
    if missing and not err:
        shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        err.add("labels", f"every frame needs a label; missing: {shown}")
    return ValidatedAnnotation({"labels": out}, frames, len(out))


def _validate_tracks(items: list, ctx: AnnotationContext, err) -> ValidatedAnnotation:
    allowed = ctx.frame_set()
    schema = label_schema.parse(ctx.label_attributes)
    out, ids = [], set()
    total_keyframes = 0
    runs = n_masks = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            err.add(error_path("tracks", i), 'must be an object {"id", "label", "keyframes"}')
            continue
        tid = item.get("id")
        ok = True
        if not _is_int(tid) or tid < 0:
            err.add(error_path("tracks", i, field="id"), "must be a non-negative whole number")
            ok = False
        elif tid in ids:
            err.add(error_path("tracks", i, field="id"), f"track id {tid} is used twice")
            ok = False
        else:
            ids.add(tid)
        label_ok = _check_label(item.get("label"), error_path("tracks", i, field="label"), ctx, err)
        ok &= label_ok
        label = label_ok and item["label"]
        track_attrs = check_attributes(
            item.get("attributes"), label, error_path("tracks", i), schema, err
        )
        kfs = item.get("keyframes")
        if not isinstance(kfs, list) or not kfs:
            err.add(
                error_path("tracks", i, field="keyframes"), "must be a non-empty list of keyframes"
            )
            continue
        total_keyframes += len(kfs)
        if total_keyframes > MAX_KEYFRAMES:
            err.add(
                error_path("tracks", i, field="keyframes"),
                f"at most {MAX_KEYFRAMES} keyframes in all",
            )
            break
        norm: list[dict[str, Any]] = []
        prev_frame: int | None = None
        prev_box: list[float] | None = None
        for k, kf in enumerate(kfs):
            if not isinstance(kf, dict):
                err.add(
                    error_path("tracks", i, keyframe=k),
                    'must be an object {"frame", "box", "outside"}',
                )
                ok = False
                continue
            outside = kf.get("outside", False)
            outside_path = error_path("tracks", i, keyframe=k, field="outside")
            if not isinstance(outside, bool):
                err.add(outside_path, "must be true or false")
                ok = False
            frame_path = error_path("tracks", i, keyframe=k, field="frame")
            frame_ok = _check_frame(kf.get("frame"), frame_path, ctx, allowed, err)
            if frame_ok and prev_frame is not None and kf["frame"] <= prev_frame:
                err.add(
                    frame_path,
                    "keyframes must be in increasing frame order "
                    f"({kf['frame']} after {prev_frame})",
                )
                frame_ok = False
            if k == 0 and outside is True:
                err.add(outside_path, "a track cannot start outside the frame")
                ok = False
            mask = pixels = None
            if "mask" in kf:
                n_masks += 1
                budget = [MAX_MASK_COUNTS_TOTAL - runs]
                if n_masks > MAX_KEYFRAME_MASKS:
                    err.add(
                        error_path("tracks", i, keyframe=k, field="mask"),
                        f"at most {MAX_KEYFRAME_MASKS} keyframe masks in all",
                    )
                else:
                    mask = _check_keyframe_mask(kf, outside, (i, k), ctx, err, budget)
                runs = MAX_MASK_COUNTS_TOTAL - budget[0]
                if mask is None:
                    ok = False
                    continue
                pixels = rle_codec.decode(mask)
            box_path = error_path("tracks", i, keyframe=k, field="box")
            if outside is True and kf.get("box") is None:
                box = prev_box
            elif pixels is not None and kf.get("box") is None:
                x, y, w, h = rle_codec.bbox(pixels)
                box = [float(x), float(y), float(x + w), float(y + h)]
            else:
                box = _check_box(kf.get("box"), box_path, ctx, err)
                if box is not None and pixels is not None:
                    share = _share_inside(pixels, box)
                    if share < MASK_INSIDE_BOX_MIN:
                        err.add(
                            error_path("tracks", i, keyframe=k, field="mask"),
                            f"only {share:.0%} of the mask lies inside the keyframe's box; "
                            f"at least {MASK_INSIDE_BOX_MIN:.0%} must (or omit the box)",
                        )
                        box = None
            if not frame_ok or box is None:
                ok = False
                continue
            kf_attrs = check_attributes(
                kf.get("attributes"),
                label,
                error_path("tracks", i, keyframe=k),
                schema,
                err,
            )
            prev_frame, prev_box = kf["frame"], box
            norm.append({"frame": kf["frame"], "box": box, "outside": bool(outside)})
            if mask is not None:
                norm[-1]["mask"] = mask
            if kf_attrs:
                norm[-1]["attributes"] = kf_attrs
        if ok:
            out.append({"id": tid, "label": item["label"], "keyframes": norm})
            if track_attrs:
                out[-1]["attributes"] = track_attrs
    if err:
        return ValidatedAnnotation({"tracks": []}, {}, 0)
    frames = tracks_to_frames([track_from_payload(t) for t in out], ctx.frame_start, ctx.frame_end)
    attach_keyframe_masks(frames, out)
    return ValidatedAnnotation({"tracks": out}, frames, total_keyframes)


def _check_keyframe_mask(
    kf: dict, outside: Any, where: tuple[int, int], ctx: AnnotationContext, err, budget: list[int]
) -> dict[str, Any] | None:
    """The canonical RLE of a keyframe's ``mask``, or None with the problem said on its path;
    ``budget[0]``: the runs the payload may still use (decreased by this mask's)."""
    path = error_path("tracks", where[0], keyframe=where[1], field="mask")
    if not ctx.track_masks:
        err.add(path, "this job does not ask for masks on keyframes")
        return None
    if outside is True:
        err.add(path, "an outside keyframe has no mask (the object is not visible)")
        return None
    value = kf["mask"]
    problems = rle_codec.rle_problems(value, height=ctx.height, width=ctx.width)
    if not problems and len(value["counts"]) > budget[0]:
        problems = [f"the masks have over {MAX_MASK_COUNTS_TOTAL} runs in all"]
    for message in problems:
        err.add(path, message)
    if problems:
        return None
    budget[0] -= len(value["counts"])
    return rle_codec.canonical(value)


def _share_inside(m: Any, box: Sequence[float]) -> float:
    """The share of the (decoded, boolean) mask's pixels whose pixel square meets the box."""
    h, w = m.shape
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(-(-box[2] // 1))), min(h, int(-(-box[3] // 1)))
    total = int(m.sum())
    inside = int(m[y1:y2, x1:x2].sum()) if x2 > x1 and y2 > y1 else 0
    return inside / total if total else 1.0


def attach_keyframe_masks(
    frames: dict[str, list[dict[str, Any]]], tracks: Sequence[Mapping[str, Any]]
) -> None:
    """Put each keyframe's mask, as ``rle``, on its track's shape of that frame (in place).

    Only keyframes: masks are not interpolated, the frames between keep only their box."""
    for t in tracks:
        for kf in t["keyframes"]:
            if kf.get("mask") is None:
                continue
            for shape in frames.get(str(kf["frame"]), ()):
                if shape.get("track") == t["id"] and "box" in shape:
                    shape["rle"] = kf["mask"]


def _check_events(
    items: Any,
    ctx: AnnotationContext,
    err,
    *,
    labels: Sequence[str],
    track_ids: frozenset[int] | None,
) -> list[dict[str, Any]]:
    """The events of ``items`` normalised; ``track_ids`` None: events on the whole video (an
    ``event`` job), else each names one of these tracks."""
    key = "events"
    if not isinstance(items, list):
        err.add(key, "must be a list")
        return []
    if len(items) > MAX_EVENTS:
        err.add(key, f"has {len(items)} events; at most {MAX_EVENTS} are allowed")
        return []
    if not labels:
        if items:
            err.add(key, "this job names no event labels")
        return []
    out: list[dict[str, Any]] = []
    kept: dict[tuple[str, int | None], list[tuple[int, int, int]]] = {}
    lo, hi = ctx.frame_start, ctx.frame_end
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            shape = '{"label", "start", "end"' + (', "track"}' if track_ids is not None else "}")
            err.add(error_path(key, i), f"must be an object {shape}")
            continue
        ok = True
        label = item.get("label")
        if not isinstance(label, str) or label not in labels:
            shown = label if isinstance(label, str) else type(label).__name__
            err.add(
                error_path(key, i, field="label"),
                f"unknown event label {shown!r}; use one of: {', '.join(labels)}",
            )
            ok = False
        bounds_ok = True
        for name in ("start", "end"):
            value = item.get(name)
            if not _is_int(value):
                err.add(error_path(key, i, field=name), "must be a whole frame number")
                bounds_ok = False
            elif not lo <= value <= hi:
                err.add(
                    error_path(key, i, field=name),
                    f"frame {value} is outside this microtask ({lo}-{hi})",
                )
                bounds_ok = False
        if bounds_ok and item["end"] < item["start"]:
            err.add(
                error_path(key, i, field="end"),
                f"must not come before the start ({item['end']} < {item['start']})",
            )
            bounds_ok = False
        track = item.get("track")
        if track_ids is None:
            if "track" in item:
                err.add(error_path(key, i, field="track"), "this job's events are not on tracks")
                ok = False
        elif not _is_int(track) or track not in track_ids:
            shown = track if _is_int(track) else type(track).__name__
            err.add(
                error_path(key, i, field="track"),
                f"no track with id {shown} in this annotation",
            )
            ok = False
        if not (ok and bounds_ok):
            continue
        start, end = item["start"], item["end"]
        clash = next(
            (j for j, s, e in kept.get((label, track), []) if s <= end and start <= e), None
        )
        if clash is not None:
            where = f" on track {track}" if track_ids is not None else ""
            err.add(
                error_path(key, i, field="start"),
                f"overlaps event {clash} ({label!r}{where}); join them into one event",
            )
            continue
        kept.setdefault((label, track), []).append((i, start, end))
        event = {"label": label, "start": start, "end": end}
        if track_ids is not None:
            event["track"] = track
        out.append(event)
    return out


def event_frames(
    events: Sequence[dict[str, Any]], frame_start: int, frame_end: int
) -> dict[str, list[dict[str, Any]]]:
    """Per-frame shapes of validated events: ``{"label", "event"[, "track"]}`` on every frame an
    event covers, ``event`` its index (so two adjacent events of one label stay apart)."""
    frames: dict[str, list[dict[str, Any]]] = {
        str(f): [] for f in range(frame_start, frame_end + 1)
    }
    for i, e in enumerate(events):
        shape: dict[str, Any] = {"label": e["label"], "event": i}
        if e.get("track") is not None:
            shape["track"] = e["track"]
        for f in range(max(e["start"], frame_start), min(e["end"], frame_end) + 1):
            frames[str(f)].append(shape)
    return frames


def _validate_events(items: list, ctx: AnnotationContext, err) -> ValidatedAnnotation:
    events = _check_events(items, ctx, err, labels=list(ctx.classes), track_ids=None)
    if err:
        return ValidatedAnnotation({"events": []}, {}, 0)
    frames = event_frames(events, ctx.frame_start, ctx.frame_end)
    return ValidatedAnnotation({"events": events}, frames, len(events))


_VALIDATORS = {
    "bbox": _validate_boxes,
    "polygon": _validate_polygons,
    "classify": _validate_labels,
    "track": _validate_tracks,
    "event": _validate_events,
    "mask": _validate_masks,
}


def validate_payload(payload: Any, ctx: AnnotationContext) -> ValidatedAnnotation:
    """Check ``payload`` against ``ctx``; return it normalised with per-frame shapes."""
    if ctx.annotation_type not in _VALIDATORS:
        raise AnnotationInvalid({"annotation_type": [f"unknown type {ctx.annotation_type!r}"]})
    err = _Errors()
    key = TOP_KEY[ctx.annotation_type]
    is_track = ctx.annotation_type == "track"
    related = ctx.annotation_type in label_schema.KINDS
    optional = (
        *(("events",) if is_track and ctx.event_labels else ()),
        *(("relations",) if related else ()),
    )
    items = _object_list(payload, key, err, optional=optional)
    if items is None or err:
        raise AnnotationInvalid(err.fields)
    result = _VALIDATORS[ctx.annotation_type](items, ctx, err)
    if related:
        _relations(payload.get("relations"), items, result, ctx, err)
    if is_track and "events" in payload:
        # Against the ids as submitted: a track with a bad box still names the events' track.
        ids = frozenset(t["id"] for t in items if isinstance(t, dict) and _is_int(t.get("id")))
        events = _check_events(
            payload["events"], ctx, err, labels=list(ctx.event_labels), track_ids=ids
        )
        if not err:
            result.payload["events"] = events
            result.shape_count += len(events)
            # Beside the tracks' boxes, box-less event shapes (box readers skip them).
            for f, shapes in event_frames(events, ctx.frame_start, ctx.frame_end).items():
                if shapes:
                    result.frames.setdefault(f, []).extend(shapes)
    if err:
        raise AnnotationInvalid(err.fields)
    return result


def _relations(given: Any, items: list, result: ValidatedAnnotation, ctx, err) -> None:
    """Check the payload's relations against its objects and put them on the stored shapes."""
    if ctx.annotation_type == "track":
        refs = {t["id"]: None for t in items if isinstance(t, dict) and _is_int(t.get("id"))}
        by = "a track id"
    else:
        refs = {i: t.get("frame") if isinstance(t, dict) else None for i, t in enumerate(items)}
        by = f"an index into {TOP_KEY[ctx.annotation_type]}"
    relations = check_relations(
        given, refs=refs, predicates=list(ctx.relation_predicates), by=by, err=err
    )
    if err:
        return
    key = TOP_KEY[ctx.annotation_type]
    if ctx.annotation_type == "track":
        attach_track_extras(result.frames, result.payload[key], relations)
    else:
        attach_item_relations(result.frames, result.payload[key], relations)
    if relations:
        result.payload["relations"] = relations
