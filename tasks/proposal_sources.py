"""Proposal sources: what a machine proposes for a microtask, in the job's payload format (pure).

Knows nothing of Django. A *source* (``ProposalSource``) takes a ``ProposalRequest`` — the job's
schema and the microtask's frames, never a gold answer or another worker's work: there is no field
for them — and returns a ``ProposalOutcome``: shapes in the payload format of
``tasks.annotations`` (``boxes`` / ``polygons`` / ``tracks`` items), one confidence per shape and
one overall. The service (``tasks.proposals``) stores it as a ``tasks.Proposal``.

The contract another module builds on (routing, pricing, the workspace):

* ``Proposal.shapes`` — a list of payload items of the job's type, exactly what a worker could
  submit (``{"frame", "label", "box"}``, ``{"frame", "label", "points"}``,
  ``{"id", "label", "keyframes": [{"frame", "box", "outside"}]}``); every item passes
  ``tasks.annotations.validate_payload`` for its microtask (a source's output that does not is
  refused as ``invalid``, never stored half-valid).
* ``Proposal.confidences`` — one float in [0, 1] per shape, same order; ``Proposal.confidence``
  the overall one in [0, 1].
* A shape is named ``"<proposal id>:<index>"`` (``shape_ref``) wherever it travels: the worker's
  view, a submitted item's ``"from_proposal"``, the submission's provenance.

Provenance (``provenance_of``), one entry per submitted item that carries ``from_proposal``::

    {"path": "boxes[0]", "proposal": 12, "index": 3, "source": "motion",
     "moved": 0.07, "unchanged": false, "label_changed": false}

``moved`` is ``1 - IoU(submitted, proposed)`` (boxes: box IoU; polygons: IoU of their bounding
boxes; tracks: ``1 -`` the mean per-frame box IoU over the microtask's frames where either is
present, a frame where only one is present counting IoU 0), rounded to 4 places; ``unchanged`` is
true only when the label is the same and every coordinate is within ``UNCHANGED_TOLERANCE`` pixels
— computed here from the stored proposal, never taken from the client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .annotations import TOP_KEY, AnnotationContext, AnnotationInvalid, error_path, validate_payload
from .interpolation import track_from_payload, tracks_to_frames

# Built-in sources and the external one; a job enables a subset (``tasks.ProposalConfig``).
MOTION, PEOPLE, SEAM, ML_BACKEND = "motion", "people", "seam", "ml_backend"
SOURCES = (MOTION, PEOPLE, SEAM, ML_BACKEND)
SOURCE_LABELS = {
    MOTION: "Moving regions (frame differencing against the microtask's median background)",
    PEOPLE: "People (OpenCV's HOG people detector)",
    SEAM: "The previous microtask's consensus, carried across the seam by the tracker",
    ML_BACKEND: "Your model, over the Label Studio ML backend protocol",
}
# Types a source can propose for: boxes become rectangle polygons; classification is not proposed.
PROPOSABLE_TYPES = ("bbox", "polygon", "track")
SEAM_TYPES = ("bbox", "track")  # the seam source carries boxes

MAX_PROPOSED_SHAPES = 500  # per proposal: a source proposing more is refused as invalid
UNCHANGED_TOLERANCE = 0.01  # pixels
REF_PATTERN = re.compile(r"^(\d{1,18}):(\d{1,6})$")


@dataclass(frozen=True)
class ProposalRequest:
    """What a source is told about one microtask: the job's schema and the frames, nothing else."""

    microtask_id: int
    annotation_type: str
    classes: Sequence[str]
    width: int
    height: int
    frame_start: int
    frame_end: int
    frames: Sequence[int]  # the frames a source looks at (sampled frames, or track keyframes)
    keyframe_step: int = 1

    def context(self) -> AnnotationContext:
        return AnnotationContext(
            annotation_type=self.annotation_type,
            classes=tuple(self.classes),
            width=self.width,
            height=self.height,
            frame_start=self.frame_start,
            frame_end=self.frame_end,
            frames=() if self.annotation_type == "track" else tuple(self.frames),
        )


@dataclass(frozen=True)
class Detection:
    """One box a detector found on one frame, in pixels of the frame ``[x1, y1, x2, y2]``."""

    frame: int
    box: tuple[float, float, float, float]
    score: float
    label: str


@dataclass
class ProposalOutcome:
    """A source's answer: ``status`` ok/failed/timeout/invalid, and for ok the shapes."""

    status: str
    shapes: list[dict[str, Any]] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    confidence: float = 0.0
    model_version: str = ""
    error: str = ""


class FrameReader(Protocol):
    """Pixels of the microtask's frames: ``frame number -> (h, w, 3) uint8 RGB`` at the size the
    worker annotates (``ProposalRequest.width`` x ``height``)."""

    def __call__(self, frame: int) -> Any: ...


class ProposalSource(Protocol):
    """A source of proposals; ``name`` is one of ``SOURCES``."""

    name: str

    def propose(self, request: ProposalRequest, frames: FrameReader) -> ProposalOutcome: ...


# --- geometry ------------------------------------------------------------------------------------


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes (0 when either has no area)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def polygon_bounds(points: Sequence[Sequence[float]]) -> list[float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def clip_box(box: Sequence[float], width: int, height: int) -> list[float] | None:
    """``box`` clipped to the frame, or None when less than a pixel of it is inside."""
    x1, y1 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x2, y2 = min(float(width), float(box[2])), min(float(height), float(box[3]))
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)]


# --- detections -> payload items -----------------------------------------------------------------


def link_tracks(
    detections: Sequence[Detection], frames: Sequence[int], *, min_iou: float = 0.3
) -> list[list[Detection]]:
    """Greedy frame-to-frame linking of detections into tracks (highest IoU first, same label)."""
    by_frame: dict[int, list[Detection]] = {}
    for d in detections:
        by_frame.setdefault(d.frame, []).append(d)
    tracks: list[list[Detection]] = []
    open_tracks: list[int] = []
    for f in sorted(frames):
        current = sorted(by_frame.get(f, []), key=lambda d: -d.score)
        pairs = []
        for ti in open_tracks:
            last = tracks[ti][-1]
            for di, d in enumerate(current):
                if d.label == last.label:
                    iou = box_iou(last.box, d.box)
                    if iou >= min_iou:
                        pairs.append((iou, ti, di))
        pairs.sort(reverse=True)
        used_t, used_d = set(), set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            tracks[ti].append(current[di])
            used_t.add(ti)
            used_d.add(di)
        still_open = list(used_t)
        for di, d in enumerate(current):
            if di not in used_d:
                tracks.append([d])
                still_open.append(len(tracks) - 1)
        open_tracks = still_open
    return tracks


def detections_to_outcome(
    detections: Sequence[Detection], request: ProposalRequest, *, model_version: str = ""
) -> ProposalOutcome:
    """Shapes of the job's type from per-frame detections (clipped to the frame; tracks linked).

    A track ends with an ``outside`` keyframe at the first looked-at frame after its last
    detection, so it does not run on to the end of the microtask.
    """
    kind = request.annotation_type
    kept = []
    for d in detections:
        box = clip_box(d.box, request.width, request.height)
        if box is not None and d.label in request.classes:
            kept.append(Detection(d.frame, tuple(box), float(min(1.0, max(0.0, d.score))), d.label))
    shapes: list[dict[str, Any]] = []
    confidences: list[float] = []
    if kind == "bbox":
        for d in kept:
            shapes.append({"frame": d.frame, "label": d.label, "box": list(d.box)})
            confidences.append(d.score)
    elif kind == "polygon":
        for d in kept:
            x1, y1, x2, y2 = d.box
            points = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
            shapes.append({"frame": d.frame, "label": d.label, "points": points})
            confidences.append(d.score)
    elif kind == "track":
        looked = sorted(request.frames)
        for tid, track in enumerate(link_tracks(kept, looked)):
            keyframes = [{"frame": d.frame, "box": list(d.box), "outside": False} for d in track]
            after = [f for f in looked if f > track[-1].frame]
            if after:
                keyframes.append({"frame": after[0], "box": list(track[-1].box), "outside": True})
            shapes.append({"id": tid, "label": track[0].label, "keyframes": keyframes})
            confidences.append(sum(d.score for d in track) / len(track))
    else:
        return ProposalOutcome(status="invalid", error=f"no proposals for {kind!r} work")
    return finish(shapes, confidences, request, model_version=model_version)


def finish(
    shapes: list[dict[str, Any]],
    confidences: list[float],
    request: ProposalRequest,
    *,
    model_version: str = "",
    overall: float | None = None,
) -> ProposalOutcome:
    """Check a source's shapes against the microtask's schema: ok, or ``invalid`` with why."""
    if len(shapes) > MAX_PROPOSED_SHAPES:
        return ProposalOutcome(
            status="invalid",
            model_version=model_version,
            error=f"{len(shapes)} shapes proposed; at most {MAX_PROPOSED_SHAPES} are kept",
        )
    if len(confidences) != len(shapes) or not all(
        isinstance(c, float | int) and math.isfinite(c) and 0 <= c <= 1 for c in confidences
    ):
        return ProposalOutcome(
            status="invalid", model_version=model_version, error="confidences must be in [0, 1]"
        )
    key = TOP_KEY[request.annotation_type]
    try:
        validated = validate_payload({key: shapes}, request.context())
    except AnnotationInvalid as exc:
        return ProposalOutcome(status="invalid", model_version=model_version, error=str(exc)[:500])
    conf = [round(float(c), 4) for c in confidences]
    if overall is None:
        overall = sum(conf) / len(conf) if conf else 0.0
    overall = round(min(1.0, max(0.0, float(overall))), 4)
    return ProposalOutcome(
        status="ok",
        shapes=validated.payload[key],
        confidences=conf,
        confidence=overall,
        model_version=model_version[:100],
    )


# --- references and provenance -------------------------------------------------------------------


def shape_ref(proposal_id: int, index: int) -> str:
    return f"{proposal_id}:{index}"


def parse_ref(value: Any) -> tuple[int, int] | None:
    """``(proposal id, index)`` of a ``"<proposal id>:<index>"`` reference, or None."""
    if not isinstance(value, str):
        return None
    m = REF_PATTERN.match(value)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class StoredProposal:
    """What provenance needs of a stored proposal."""

    id: int
    source: str
    shapes: Sequence[dict[str, Any]]


def claimed_refs(payload: Any, annotation_type: str) -> list[tuple[int, Any]]:
    """``(item index, from_proposal value)`` of every submitted item that carries one."""
    key = TOP_KEY.get(annotation_type)
    if not isinstance(payload, dict) or key is None or not isinstance(payload.get(key), list):
        return []
    return [
        (i, item["from_proposal"])
        for i, item in enumerate(payload[key])
        if isinstance(item, dict) and "from_proposal" in item
    ]


def check_refs(
    payload: Any, annotation_type: str, proposals: Sequence[StoredProposal]
) -> dict[str, list[str]]:
    """Field errors (``boxes[0].from_proposal``) for references not to this microtask's shapes."""
    by_id = {p.id: p for p in proposals}
    key = TOP_KEY.get(annotation_type, "")
    errors: dict[str, list[str]] = {}
    seen: dict[tuple[int, int], int] = {}
    for i, value in claimed_refs(payload, annotation_type):
        path = error_path(key, i, field="from_proposal")
        ref = parse_ref(value)
        if ref is None:
            errors[path] = ['must be "<proposal>:<index>" as the proposals you were shown name it']
            continue
        proposal = by_id.get(ref[0])
        if proposal is None or not 0 <= ref[1] < len(proposal.shapes):
            errors[path] = [f"{value} is not one of the proposals of this microtask"]
            continue
        if ref in seen:
            errors[path] = [f"{value} is already used by {key}[{seen[ref]}]; use a proposal once"]
            continue
        seen[ref] = i
    return errors


def _track_frames(item: dict[str, Any], start: int, end: int) -> dict[int, list[float]]:
    frames = tracks_to_frames([track_from_payload({**item, "id": 0})], start, end)
    return {int(f): shapes[0]["box"] for f, shapes in frames.items() if shapes}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= UNCHANGED_TOLERANCE
    return a == b


def _same_geometry(submitted: dict[str, Any], proposed: dict[str, Any]) -> bool:
    for name in ("frame", "box", "points"):
        if (name in submitted or name in proposed) and not _close(
            submitted.get(name), proposed.get(name)
        ):
            return False
    if "keyframes" in submitted or "keyframes" in proposed:
        a, b = submitted.get("keyframes") or [], proposed.get("keyframes") or []
        if len(a) != len(b):
            return False
        for ka, kb in zip(a, b, strict=True):
            if ka["frame"] != kb["frame"] or bool(ka["outside"]) != bool(kb["outside"]):
                return False
            if not ka["outside"] and not _close(ka["box"], kb["box"]):
                return False
    return True


def moved(
    submitted: dict[str, Any],
    proposed: dict[str, Any],
    *,
    annotation_type: str,
    start: int,
    end: int,
) -> float:
    """``1 - IoU`` of a submitted item and the proposed one (see the module docstring)."""
    if annotation_type == "bbox":
        if submitted["frame"] != proposed["frame"]:
            return 1.0
        return 1.0 - box_iou(submitted["box"], proposed["box"])
    if annotation_type == "polygon":
        if submitted["frame"] != proposed["frame"]:
            return 1.0
        a, b = polygon_bounds(submitted["points"]), polygon_bounds(proposed["points"])
        return 1.0 - box_iou(a, b)
    a = _track_frames(submitted, start, end)
    b = _track_frames(proposed, start, end)
    frames = set(a) | set(b)
    if not frames:
        return 0.0
    total = sum(box_iou(a[f], b[f]) if f in a and f in b else 0.0 for f in frames)
    return 1.0 - total / len(frames)


def provenance_of(
    raw_payload: Any,
    normalised_items: Sequence[dict[str, Any]],
    *,
    annotation_type: str,
    proposals: Sequence[StoredProposal],
    frame_start: int,
    frame_end: int,
) -> list[dict[str, Any]]:
    """Provenance of a valid submission whose references passed ``check_refs``.

    ``normalised_items`` are the validated items, in the submitted order (validation keeps every
    item of a valid payload, in order, so index ``i`` is the same item in both).
    """
    by_id = {p.id: p for p in proposals}
    key = TOP_KEY[annotation_type]
    out = []
    for i, value in claimed_refs(raw_payload, annotation_type):
        pid, index = parse_ref(value)  # type: ignore[misc]  # checked by check_refs
        proposal = by_id[pid]
        proposed = proposal.shapes[index]
        submitted = normalised_items[i]
        distance = moved(
            submitted, proposed, annotation_type=annotation_type, start=frame_start, end=frame_end
        )
        label_changed = submitted.get("label") != proposed.get("label")
        out.append(
            {
                "path": error_path(key, i),
                "proposal": pid,
                "index": index,
                "source": proposal.source,
                "moved": round(max(0.0, distance), 4),
                "unchanged": not label_changed and _same_geometry(submitted, proposed),
                "label_changed": label_changed,
            }
        )
    return out
