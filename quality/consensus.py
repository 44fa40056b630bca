"""Consensus of several annotators' boxes (and classes) on one microtask. Pure numpy/scipy.

Boxes, per frame (algorithm :data:`BOXES_ALGORITHM`):

1. Annotators are visited in order of trust. Each one's boxes are matched to the clusters found
   so far by Hungarian matching on IoU (class-agnostic, at the job's IoU threshold); matched boxes
   join their cluster, the others open new clusters. A cluster's centre is the trust-weighted mean
   of its members, updated as members join.
2. A cluster is kept when the annotators in it hold a strict trust-weighted majority of the
   frame's total trust. A spammer's random boxes, a lazy worker's misses and a lone extra box all
   fall out here.
3. The fused box is the trust-weighted mean of the members' coordinates; its class is the
   trust-weighted vote of the members' classes.

Every result carries an agreement score in [0, 1]: each annotator's panoptic quality against the
consensus — their boxes in kept clusters are hits worth their IoU with the fused box, boxes in
dropped clusters false alarms, kept clusters they lack misses: ``Σ IoU / (tp + (fp + fn) / 2)`` —
averaged with trust weights. Per-annotator agreement feeds worker trust.

Classes per item (one microtask's few labels): trust-weighted vote; the job-wide aggregation of
many labels uses Dawid-Skene (:mod:`quality.dawid_skene`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .boxes import NO_LABEL, Annotation, FrameBoxes, annotation_frames, iou_matrix

BOXES_ALGORITHM = "boxes-wmaj-v1"
CLASSES_ALGORITHM = "classes-wvote-v1"


def _weights(n: int, weights: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64).reshape(n)
    # A worker of trust 0 still breaks ties among equals; nobody weighs nothing at all.
    return np.clip(w, 1e-3, None)


def weighted_vote(labels: np.ndarray, weights: np.ndarray) -> tuple[int, float]:
    """The label with the most weight (ties to the smallest label) and its share of the weight."""
    known = labels != NO_LABEL
    if not known.any():
        return NO_LABEL, 0.0
    labels = labels[known]
    weights = weights[known]
    uniq, inv = np.unique(labels, return_inverse=True)
    totals = np.bincount(inv, weights=weights)
    k = int(np.argmax(totals))
    return int(uniq[k]), float(totals[k] / totals.sum())


@dataclass(frozen=True)
class FrameConsensus:
    """One frame's consensus: the fused boxes and, per kept box, its support (trust share)."""

    boxes: FrameBoxes
    support: np.ndarray  # (k,) trust share of the kept clusters
    tp: np.ndarray  # (A,) per annotator: boxes in kept clusters
    fp: np.ndarray  # (A,) boxes in dropped clusters
    fn: np.ndarray  # (A,) kept clusters without a box of this annotator
    iou_sum: np.ndarray  # (A,) IoU of the annotator's kept boxes with the fused box


def fuse_frame(
    annotations: Sequence[FrameBoxes],
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    iou_threshold: float = 0.5,
) -> FrameConsensus:
    """Cluster one frame's boxes across annotators and fuse the clusters a majority supports."""
    n_ann = len(annotations)
    w = _weights(n_ann, weights)
    total = float(w.sum())
    order = np.argsort(-w, kind="stable")
    # Per cluster: weighted coordinate sum, weight sum, and its members (annotator, box index).
    sums = np.zeros((0, 4))
    wsum = np.zeros(0)
    members: list[list[tuple[int, int]]] = []
    for a in order:
        fb = annotations[a]
        n = len(fb)
        if n == 0:
            continue
        wa = w[a]
        if len(members):
            centres = sums / wsum[:, None]
            iou = iou_matrix(centres, fb.boxes)
            gain = np.where(iou >= iou_threshold, iou, 0.0)
            rows, cols = linear_sum_assignment(gain, maximize=True)
            ok = gain[rows, cols] > 0
            rows, cols = rows[ok], cols[ok]
        else:
            rows = cols = np.zeros(0, dtype=np.int64)
        if len(rows):
            sums[rows] += wa * fb.boxes[cols]
            wsum[rows] += wa
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                members[r].append((int(a), c))
        new = np.ones(n, dtype=bool)
        new[cols] = False
        if new.any():
            idx = np.flatnonzero(new)
            sums = np.concatenate([sums, wa * fb.boxes[idx]])
            wsum = np.concatenate([wsum, np.full(len(idx), wa)])
            members.extend([[(int(a), int(i))] for i in idx])
    kept = np.flatnonzero(2 * wsum > total + 1e-12) if len(members) else np.zeros(0, np.int64)
    fused = sums[kept] / wsum[kept, None] if len(kept) else np.zeros((0, 4))
    labels = np.full(len(kept), NO_LABEL, dtype=np.int64)
    tp = np.zeros(n_ann)
    fp = np.array([len(fb) for fb in annotations], dtype=np.float64)
    fn = np.zeros(n_ann)
    iou_sum = np.zeros(n_ann)
    for j, k in enumerate(kept.tolist()):
        mem = members[k]
        ann = np.fromiter((m[0] for m in mem), np.int64, len(mem))
        lab = np.fromiter((annotations[a].labels[i] for a, i in mem), np.int64, len(mem))
        labels[j] = weighted_vote(lab, w[ann])[0]
        boxes = np.stack([annotations[a].boxes[i] for a, i in mem])
        ious = iou_matrix(fused[j : j + 1], boxes)[0]
        tp[ann] += 1
        fp[ann] -= 1
        iou_sum[ann] += ious
    fn += len(kept) - tp
    return FrameConsensus(
        boxes=FrameBoxes(fused, labels, np.arange(len(kept), dtype=np.int64)),
        support=wsum[kept] / total if total else np.zeros(len(kept)),
        tp=tp,
        fp=fp,
        fn=fn,
        iou_sum=iou_sum,
    )


@dataclass(frozen=True)
class ConsensusOutcome:
    """A microtask's consensus, with agreement overall, per annotator and per frame."""

    algorithm: str
    frames: dict[int, FrameBoxes]
    support: dict[int, np.ndarray]
    agreement: float
    annotator_agreement: np.ndarray  # (A,) quality of each annotator against the consensus
    annotator_iou: np.ndarray  # (A,) mean IoU of each annotator's kept boxes
    frame_agreement: dict[int, float]


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, hits: np.ndarray | None = None):
    """F1 per annotator; with ``hits`` (the IoU sum of the hits) the panoptic quality."""
    denom = 2 * tp + fp + fn
    num = 2 * (tp if hits is None else hits)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, num / np.where(denom > 0, denom, 1), 1.0)


def box_consensus(
    annotations: Sequence[Annotation],
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    iou_threshold: float = 0.5,
) -> ConsensusOutcome:
    """Consensus of several annotators' per-frame boxes (see the module docstring)."""
    n_ann = len(annotations)
    w = _weights(n_ann, weights)
    frames = annotation_frames(*annotations)
    empty = FrameBoxes.empty()
    out: dict[int, FrameBoxes] = {}
    support: dict[int, np.ndarray] = {}
    frame_agreement: dict[int, float] = {}
    tp = np.zeros(n_ann)
    fp = np.zeros(n_ann)
    fn = np.zeros(n_ann)
    iou_sum = np.zeros(n_ann)
    for f in frames:
        fc = fuse_frame([a.get(f, empty) for a in annotations], w, iou_threshold=iou_threshold)
        out[f] = fc.boxes
        support[f] = fc.support
        frame_agreement[f] = float(np.average(_f1(fc.tp, fc.fp, fc.fn, fc.iou_sum), weights=w))
        tp += fc.tp
        fp += fc.fp
        fn += fc.fn
        iou_sum += fc.iou_sum
    per_annotator = _f1(tp, fp, fn, iou_sum)
    with np.errstate(divide="ignore", invalid="ignore"):
        ann_iou = np.where(tp > 0, iou_sum / np.where(tp > 0, tp, 1), 0.0)
    return ConsensusOutcome(
        algorithm=BOXES_ALGORITHM,
        frames=out,
        support=support,
        agreement=float(np.average(per_annotator, weights=w)) if n_ann else 0.0,
        annotator_agreement=per_annotator,
        annotator_iou=ann_iou,
        frame_agreement=frame_agreement,
    )


@dataclass(frozen=True)
class ClassConsensus:
    algorithm: str
    labels: dict[int, int]
    confidence: dict[int, float]
    agreement: float
    annotator_agreement: np.ndarray


def class_consensus(
    annotations: Sequence[Mapping[int, int]],
    weights: Sequence[float] | np.ndarray | None = None,
) -> ClassConsensus:
    """Per item (frame), the trust-weighted vote of the annotators' classes."""
    n_ann = len(annotations)
    w = _weights(n_ann, weights)
    items = sorted({int(k) for a in annotations for k in a})
    labels: dict[int, int] = {}
    confidence: dict[int, float] = {}
    agree = np.zeros(n_ann)
    seen = np.zeros(n_ann)
    for item in items:
        lab = np.array([a.get(item, NO_LABEL) for a in annotations], dtype=np.int64)
        label, share = weighted_vote(lab, w)
        labels[item] = label
        confidence[item] = share
        agree += lab == label
        seen += lab != NO_LABEL
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(seen > 0, agree / np.where(seen > 0, seen, 1), 0.0)
    return ClassConsensus(
        algorithm=CLASSES_ALGORITHM,
        labels=labels,
        confidence=confidence,
        agreement=float(np.average(per, weights=w)) if n_ann else 0.0,
        annotator_agreement=per,
    )
