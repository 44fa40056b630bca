"""Scoring an annotation against a known answer (gold). Pure numpy/scipy; no Django.

- Boxes, per frame: Hungarian matching (``scipy.optimize.linear_sum_assignment``) on IoU; a pair
  counts when its IoU reaches the threshold (and, when both sides carry a class, the classes
  agree). Precision, recall, F1 and the mean IoU of the matched pairs, overall and per frame;
  the single ``score`` is the panoptic-quality product F1 x mean IoU, so that a worker who finds
  every object but draws loose boxes does not score like one who draws them tight.
- Tracks (already interpolated to per-frame boxes with ids): the per-frame box score, plus
  identity: ID switches (CLEAR-MOT style, continuing last frame's correspondence when it still
  holds) and IDF1 (one global track-to-track assignment maximising the frames matched).
- Classes: accuracy. Polygons: Hungarian matching on mask IoU. Masks: IoU and Dice per class
  of the union of each side's masks (``quality.masks.score_masks``).
- Events: Hungarian matching per label on temporal IoU (:mod:`quality.events`); the frames off
  are those where the submitted events' labels differ from the answer's.
- Attributes and relations (:func:`score_extras`), on the objects matched frame by frame as
  above: the share of the answer's attribute values given right (a number within its tolerance,
  ``label_schema.AttributeSpec.tolerance``), and the F1 of the relation triplets. They join the
  score with small weights (:data:`ATTRIBUTE_WEIGHT`, :data:`RELATION_WEIGHT`), only when the
  job asks for them, so that finding and drawing the objects still dominates.
- Masks on tracks (a track job with ``track_masks``): the mean mask IoU of the answer's keyframe
  masks against the masks of the submitted tracks matched to them (the IDF1 assignment) on the
  same frames (``quality.masks.score_track_masks``), with weight :data:`TRACK_MASK_WEIGHT`.

:func:`score_stored` applies the right one to stored per-frame shapes (``tasks.annotations``'
format) by annotation type: what a gold submission and a qualification answer are scored with.

Every result says which frames were off, so a worker can be told *where* a check failed without
being shown the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy.optimize import linear_sum_assignment

from marketplace import label_schema

from . import events as events_mod
from . import masks, shapes
from .boxes import NO_LABEL, Annotation, FrameBoxes, iou_matrix

DEFAULT_IOU_THRESHOLD = 0.5
# A track job with masks: the keyframe masks' share of the score (the boxes and identities keep
# the rest, so a worker who paints well but loses the object still fails).
TRACK_MASK_WEIGHT = 0.4


def _f1(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def class_aware_iou(gold: FrameBoxes, pred: FrameBoxes) -> np.ndarray:
    """IoU matrix with pairs of different (known) classes set to zero."""
    iou = iou_matrix(gold.boxes, pred.boxes)
    if iou.size:
        g = gold.labels[:, None]
        p = pred.labels[None, :]
        clash = (g != p) & (g != NO_LABEL) & (p != NO_LABEL)
        iou[clash] = 0.0
    return iou


def match(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching maximising the IoU of pairs at or above ``threshold``.

    Returns the row and column indices of the accepted pairs.
    """
    if iou.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    gain = np.where(iou >= threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    keep = gain[rows, cols] > 0
    return rows[keep], cols[keep]


@dataclass(frozen=True)
class BoxScore:
    """Detection quality over the gold frames; ``score`` is what a pass threshold applies to."""

    precision: float
    recall: float
    f1: float
    mean_iou: float
    tp: int
    fp: int
    fn: int
    frames: tuple[int, ...] = ()
    frame_f1: tuple[float, ...] = ()
    frame_iou: tuple[float, ...] = ()

    @property
    def quality(self) -> float:
        """Matched IoU per box, misses and false alarms counting half (panoptic quality)."""
        denom = self.tp + 0.5 * (self.fp + self.fn)
        return self.mean_iou * self.tp / denom if denom else 1.0

    @property
    def score(self) -> float:
        # Detection and localisation both: F1 times the mean IoU of the matched boxes.
        return self.quality

    def frames_off(self, threshold: float) -> list[int]:
        """Frames whose F1 is below ``threshold``: where the annotation was off."""
        return [f for f, s in zip(self.frames, self.frame_f1, strict=True) if s < threshold]


def _tally(frames: list[int], matrices) -> BoxScore:
    """A :class:`BoxScore` from ``(iou, rows, cols)`` per frame: the IoU matrix (gold rows by
    predicted columns) and its one-to-one matches at the threshold."""
    tp = fp = fn = 0
    iou_sum = 0.0
    frame_f1: list[float] = []
    frame_iou: list[float] = []
    for iou, rows, cols in matrices:
        n_gold, n_pred = iou.shape
        ftp = len(rows)
        s = float(iou[rows, cols].sum()) if ftp else 0.0
        tp += ftp
        fp += n_pred - ftp
        fn += n_gold - ftp
        iou_sum += s
        frame_f1.append(_f1(ftp, n_pred - ftp, n_gold - ftp)[2])
        frame_iou.append(s / ftp if ftp else (1.0 if not n_gold and not n_pred else 0.0))
    precision, recall, f1 = _f1(tp, fp, fn)
    return BoxScore(
        precision=precision,
        recall=recall,
        f1=f1,
        mean_iou=iou_sum / tp if tp else (1.0 if fp == fn == 0 else 0.0),
        tp=tp,
        fp=fp,
        fn=fn,
        frames=tuple(frames),
        frame_f1=tuple(frame_f1),
        frame_iou=tuple(frame_iou),
    )


def score_boxes(
    gold: Annotation, pred: Annotation, *, iou_threshold: float = DEFAULT_IOU_THRESHOLD
) -> BoxScore:
    """Score ``pred`` on the frames of ``gold`` (a frame missing from ``pred`` counts as empty)."""
    frames = sorted(int(f) for f in gold)
    empty = FrameBoxes.empty()

    def matrices():
        for f in frames:
            iou = class_aware_iou(gold[f], pred.get(f, empty))
            yield (iou, *match(iou, iou_threshold))

    return _tally(frames, matrices())


@dataclass(frozen=True)
class TrackScore:
    """Per-frame detection quality plus identity: ID switches, IDF1 and MOTA."""

    boxes: BoxScore
    id_switches: int
    idf1: float
    idp: float
    idr: float
    mota: float
    id_mapping: dict[int, int] = field(default_factory=dict)

    @property
    def score(self) -> float:
        # Where the boxes are and whether they keep their identity both matter.
        return 0.5 * (self.boxes.quality + self.idf1)

    @property
    def mean_iou(self) -> float:
        return self.boxes.mean_iou

    def frames_off(self, threshold: float) -> list[int]:
        return self.boxes.frames_off(threshold)


def score_tracks(
    gold: Annotation, pred: Annotation, *, iou_threshold: float = DEFAULT_IOU_THRESHOLD
) -> TrackScore:
    """Score interpolated tracks: per frame, then identity across frames."""
    frames = sorted(int(f) for f in gold)
    empty = FrameBoxes.empty()
    gold_ids = sorted({int(i) for f in frames for i in gold[f].ids})
    pred_ids = sorted({int(i) for f in frames for i in pred.get(f, empty).ids})
    gpos = {g: k for k, g in enumerate(gold_ids)}
    ppos = {p: k for k, p in enumerate(pred_ids)}
    # co[g, p]: frames where gold track g and predicted track p overlap at the threshold (IDF1).
    co = np.zeros((len(gold_ids), len(pred_ids)))
    last: dict[int, int] = {}
    switches = 0
    tp = fp = fn = 0
    iou_sum = 0.0
    n_gold = n_pred = 0
    frame_f1: list[float] = []
    frame_iou: list[float] = []
    for f in frames:
        g = gold[f]
        p = pred.get(f, empty)
        n_gold += len(g)
        n_pred += len(p)
        iou = class_aware_iou(g, p)
        if iou.size:
            ok = iou >= iou_threshold
            gi = np.fromiter((gpos[int(i)] for i in g.ids), np.int64, len(g))
            pi = np.fromiter((ppos[int(i)] for i in p.ids), np.int64, len(p))
            r, c = np.nonzero(ok)
            np.add.at(co, (gi[r], pi[c]), 1.0)
            # Continue last frame's correspondences where they still hold (CLEAR MOT).
            gain = np.where(ok, iou, 0.0)
            for row, gid in enumerate(g.ids):
                prev = last.get(int(gid))
                if prev is not None:
                    hit = (p.ids == prev) & ok[row]
                    gain[row, hit] += 10.0
            rows, cols = linear_sum_assignment(gain, maximize=True)
            keep = gain[rows, cols] > 0
            rows, cols = rows[keep], cols[keep]
        else:
            rows = cols = np.zeros(0, dtype=np.int64)
        for row, col in zip(rows, cols, strict=True):
            gid, pid = int(g.ids[row]), int(p.ids[col])
            if gid in last and last[gid] != pid:
                switches += 1
            last[gid] = pid
        ftp = len(rows)
        s = float(iou[rows, cols].sum()) if ftp else 0.0
        tp += ftp
        fp += len(p) - ftp
        fn += len(g) - ftp
        iou_sum += s
        frame_f1.append(_f1(ftp, len(p) - ftp, len(g) - ftp)[2])
        frame_iou.append(s / ftp if ftp else (1.0 if not len(g) and not len(p) else 0.0))
    mapping: dict[int, int] = {}
    idtp = 0.0
    if co.size:
        rows, cols = linear_sum_assignment(co, maximize=True)
        for r, c in zip(rows, cols, strict=True):
            if co[r, c] > 0:
                mapping[gold_ids[r]] = pred_ids[c]
                idtp += co[r, c]
    idf1 = 2 * idtp / (n_gold + n_pred) if n_gold + n_pred else 1.0
    idp = idtp / n_pred if n_pred else 1.0
    idr = idtp / n_gold if n_gold else 1.0
    precision, recall, f1 = _f1(tp, fp, fn)
    boxes = BoxScore(
        precision=precision,
        recall=recall,
        f1=f1,
        mean_iou=iou_sum / tp if tp else (1.0 if fp == fn == 0 else 0.0),
        tp=tp,
        fp=fp,
        fn=fn,
        frames=tuple(frames),
        frame_f1=tuple(frame_f1),
        frame_iou=tuple(frame_iou),
    )
    mota = 1.0 - (fn + fp + switches) / n_gold if n_gold else (1.0 if not fp else 0.0)
    return TrackScore(
        boxes=boxes,
        id_switches=switches,
        idf1=idf1,
        idp=idp,
        idr=idr,
        mota=mota,
        id_mapping=mapping,
    )


@dataclass(frozen=True)
class ClassScore:
    accuracy: float
    correct: tuple[bool, ...]
    items: tuple[int, ...] = ()

    @property
    def score(self) -> float:
        return self.accuracy

    def frames_off(self, threshold: float = 1.0) -> list[int]:
        return [i for i, ok in zip(self.items, self.correct, strict=True) if not ok]


def score_classes(gold: Mapping[int, int], pred: Mapping[int, int]) -> ClassScore:
    """Accuracy of ``pred`` on the items (frames) of ``gold``; a missing answer is wrong."""
    items = sorted(int(k) for k in gold)
    if not items:
        return ClassScore(1.0, (), ())
    g = np.fromiter((gold[k] for k in items), np.int64, len(items))
    p = np.fromiter((pred.get(k, NO_LABEL) for k in items), np.int64, len(items))
    correct = g == p
    return ClassScore(float(correct.mean()), tuple(bool(c) for c in correct), tuple(items))


# --- Polygons -----------------------------------------------------------------------------------

Polygon = np.ndarray  # (k, 2) vertices in pixels
MASK_MAX_SIDE = 512


def _masks(polygons: Sequence[Polygon], origin: np.ndarray, scale: float, shape: tuple[int, int]):
    out = np.zeros((len(polygons), shape[0] * shape[1]), dtype=np.float32)
    for k, poly in enumerate(polygons):
        img = Image.new("1", (shape[1], shape[0]), 0)
        pts = ((np.asarray(poly, dtype=np.float64) - origin) * scale).ravel().tolist()
        if len(pts) >= 6:
            ImageDraw.Draw(img).polygon(pts, fill=1, outline=1)
        out[k] = np.asarray(img, dtype=np.float32).ravel()
    return out


def mask_iou_matrix(a: Sequence[Polygon], b: Sequence[Polygon]) -> np.ndarray:
    """Mask IoU of every polygon in ``a`` with every polygon in ``b``, rasterised together."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    pts = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in (*a, *b)])
    lo = np.floor(pts.min(axis=0))
    hi = np.ceil(pts.max(axis=0)) + 1
    span = hi - lo
    scale = min(1.0, MASK_MAX_SIDE / float(span.max()))
    shape = (max(1, int(np.ceil(span[1] * scale))), max(1, int(np.ceil(span[0] * scale))))
    ma = _masks(a, lo, scale, shape)
    mb = _masks(b, lo, scale, shape)
    inter = ma @ mb.T
    union = ma.sum(1)[:, None] + mb.sum(1)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def score_polygons(
    gold: Mapping[int, Sequence[Polygon]],
    pred: Mapping[int, Sequence[Polygon]],
    *,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
) -> BoxScore:
    """Like :func:`score_boxes`, on mask IoU of polygons."""
    frames = sorted(int(f) for f in gold)

    def matrices():
        for f in frames:
            iou = mask_iou_matrix(gold[f], pred.get(f, ()))
            yield (iou, *match(iou, iou_threshold))

    return _tally(frames, matrices())


# --- Stored shapes, by annotation type ----------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """One annotation scored against its known answer: the score a pass threshold applies to,
    metrics for people, and the frames that were off."""

    score: float
    metrics: dict[str, float]
    frames_off: list[int]
    frames_total: int


def score_stored(
    annotation_type: str,
    answer: shapes.Frames,
    submitted: shapes.Frames,
    *,
    classes: Sequence[str],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    pass_threshold: float = 0.7,
    attributes: Mapping | None = None,
    relations: bool = False,
) -> Score:
    """Score per-frame shapes ``submitted`` against ``answer`` (both as ``tasks.annotations``
    stores them) the way ``annotation_type`` is scored; ``pass_threshold`` marks frames off.

    ``attributes`` (the job's ``label_attributes``) and ``relations`` (the job takes relations)
    add attribute accuracy and relation F1 to the score (:func:`score_extras`)."""
    classes = list(classes)
    if annotation_type == "event":
        return score_stored_events(answer, submitted, tiou_threshold=iou_threshold)
    if annotation_type == "classify":
        c = score_classes(shapes.to_labels(answer, classes), shapes.to_labels(submitted, classes))
        return Score(c.score, {"accuracy": c.accuracy}, c.frames_off(), len(c.items))
    if annotation_type == "mask":
        value, metrics, off = masks.score_masks(answer, submitted, pass_threshold=pass_threshold)
        return Score(value, metrics, off, len(answer))
    extra: dict[str, float] = {}
    event_score = 1.0
    mask_iou: float | None = None
    s: BoxScore | TrackScore
    if annotation_type == "polygon":
        s = box = score_polygons(
            shapes.to_polygons(answer), shapes.to_polygons(submitted), iou_threshold=iou_threshold
        )
    elif annotation_type == "track":
        s = score_tracks(
            shapes.to_annotation(answer, classes),
            shapes.to_annotation(submitted, classes),
            iou_threshold=iou_threshold,
        )
        box = s.boxes
        extra = {"id_switches": s.id_switches, "idf1": round(s.idf1, 4), "mota": round(s.mota, 4)}
        mask_iou = masks.score_track_masks(answer, submitted, s.id_mapping)
        gold_events = events_mod.from_frames(answer)
        sub_events = events_mod.from_frames(submitted)
        if gold_events or sub_events:
            # A track job with events: the submitted tracks' events move to the gold tracks
            # their tracks matched (IDF1's assignment); events of unmatched tracks match nothing.
            to_gold = {p: g for g, p in s.id_mapping.items()}
            mapped = [
                events_mod.Event(e.label, e.start, e.end, to_gold.get(e.track, -1 - k))
                for k, e in enumerate(sub_events)
            ]
            es = events_mod.score_events(gold_events, mapped, threshold=iou_threshold)
            extra.update(event_f1=round(es.f1, 4), event_mean_tiou=round(es.mean_tiou, 4))
            event_score = es.score
    else:
        s = box = score_boxes(
            shapes.to_annotation(answer, classes),
            shapes.to_annotation(submitted, classes),
            iou_threshold=iou_threshold,
        )
    metrics = {
        "precision": round(box.precision, 4),
        "recall": round(box.recall, 4),
        "f1": round(box.f1, 4),
        "mean_iou": round(box.mean_iou, 4),
        **extra,
    }
    score = float(s.score) * event_score  # both the shapes and the events must be right
    accuracy, relation_f1 = score_extras(
        annotation_type,
        answer,
        submitted,
        classes=classes,
        attributes=attributes,
        relations=relations,
        iou_threshold=iou_threshold,
    )
    parts = [(1.0, score)]
    if mask_iou is not None:
        metrics["keyframe_mask_iou"] = round(mask_iou, 4)
        parts.append((TRACK_MASK_WEIGHT, mask_iou))
    if accuracy is not None:
        metrics["attribute_accuracy"] = round(accuracy, 4)
        parts.append((ATTRIBUTE_WEIGHT, accuracy))
    if relation_f1 is not None:
        metrics["relation_f1"] = round(relation_f1, 4)
        parts.append((RELATION_WEIGHT, relation_f1))
    if len(parts) > 1:
        box_weight = 1.0 - sum(w for w, _ in parts[1:])
        score = box_weight * score + sum(w * v for w, v in parts[1:])
    return Score(score, metrics, box.frames_off(pass_threshold), len(box.frames))


def _labels_by_frame(frames: shapes.Frames) -> dict[int, frozenset[str]]:
    return {int(f): frozenset(str(s.get("label")) for s in shs) for f, shs in frames.items()}


def score_stored_events(
    answer: shapes.Frames, submitted: shapes.Frames, *, tiou_threshold: float
) -> Score:
    """Events scored by tIoU with Hungarian matching (``quality.events.score_events``)."""
    e = events_mod.score_events(
        events_mod.from_frames(answer), events_mod.from_frames(submitted), threshold=tiou_threshold
    )
    want, got = _labels_by_frame(answer), _labels_by_frame(submitted)
    off = sorted(f for f in want if got.get(f, frozenset()) != want[f])
    metrics = {
        "precision": round(e.precision, 4),
        "recall": round(e.recall, 4),
        "f1": round(e.f1, 4),
        "mean_tiou": round(e.mean_tiou, 4),
    }
    return Score(float(e.score), metrics, off, len(want))


# --- Attributes and relations on matched objects ------------------------------------------------

ATTRIBUTE_WEIGHT = 0.2
RELATION_WEIGHT = 0.1


def frame_matches(
    annotation_type: str,
    gold: Sequence[Mapping],
    pred: Sequence[Mapping],
    *,
    classes: Sequence[str],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
) -> dict[int, int]:
    """One frame's stored shapes matched one to one, as gold scoring matches them: ``{gold
    index: pred index}`` (class-aware IoU for boxes and tracks, mask IoU for polygons)."""
    if not gold or not pred:
        return {}
    if annotation_type == "polygon":
        iou = mask_iou_matrix(
            [np.asarray(g["points"], dtype=np.float64) for g in gold],
            [np.asarray(p["points"], dtype=np.float64) for p in pred],
        )
    else:
        frame = {"0": gold}
        g = shapes.to_annotation(frame, classes)[0]
        p = shapes.to_annotation({"0": pred}, classes)[0]
        iou = class_aware_iou(g, p)
    rows, cols = match(iou, iou_threshold)
    return dict(zip(rows.tolist(), cols.tolist(), strict=True))


def attribute_agrees(spec: label_schema.AttributeSpec | None, truth, given) -> bool:
    """Whether ``given`` counts as ``truth`` for ``spec`` (a number within its tolerance)."""
    if spec is not None and spec.type == "number":
        try:
            return abs(float(given) - float(truth)) <= spec.tolerance(float(truth))
        except (TypeError, ValueError):
            return False
    return given == truth


def score_extras(
    annotation_type: str,
    answer: shapes.Frames,
    submitted: shapes.Frames,
    *,
    classes: Sequence[str],
    attributes: Mapping | None = None,
    relations: bool = False,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
) -> tuple[float | None, float | None]:
    """(attribute accuracy, relation F1) of ``submitted`` against ``answer``; None for what the
    job does not ask (no attributes declared; ``relations`` False and the answer has none).

    Accuracy counts every attribute value of the answer on a matched object (a missed object's
    values count as wrong); relation triplets ``(frame, subject, predicate, object)`` are
    compared through the same matching."""
    schema = label_schema.parse(attributes) if attributes else {}
    asked = bool(schema)
    tp = fp = fn = 0
    right = total = 0
    for key, gold in answer.items():
        pred = submitted.get(key, [])
        m = frame_matches(annotation_type, gold, pred, classes=classes, iou_threshold=iou_threshold)
        if asked:
            for gi, g in enumerate(gold):
                specs = schema.get(g.get("label"), {})
                given = pred[m[gi]].get("attributes", {}) if gi in m else {}
                for name, truth in (g.get("attributes") or {}).items():
                    total += 1
                    right += name in given and attribute_agrees(specs.get(name), truth, given[name])
        truth_rel = {
            (gi, r["predicate"], r["object"])
            for gi, g in enumerate(gold)
            for r in g.get("relations", ())
        }
        back = {pj: gi for gi, pj in m.items()}
        pred_rel = set()
        for pj, p in enumerate(pred):
            for r in p.get("relations", ()):
                s, o = back.get(pj), back.get(r["object"])
                pred_rel.add(
                    (s, r["predicate"], o)
                    if s is not None and o is not None
                    else (-1 - pj, r["predicate"], -1)
                )
        relations = relations or bool(truth_rel)
        hit = len(truth_rel & pred_rel)
        tp += hit
        fp += len(pred_rel) - hit
        fn += len(truth_rel) - hit
    accuracy = (right / total if total else 1.0) if asked else None
    relation_f1 = _f1(tp, fp, fn)[2] if relations else None
    return accuracy, relation_f1
