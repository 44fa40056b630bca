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

Model-assisted work (``independence``, see :mod:`quality.assist`): a replica that accepted a
proposal unchanged is not independent evidence. Each replica may carry an independence in
[0, 1] (1: drawn by the worker; less: the share of its shapes that are unchanged accepts, at
their discount). Its *evidence* weight, trust weight x independence, is what clusters, fuses and
votes, and a cluster is kept only when its evidence holds a strict majority of the frame's total
*trust* (undiscounted): accepts that carry little evidence cannot reach a majority among
themselves, so "everyone clicked accept" does not settle a microtask; replicas of independence 1
behave exactly as without it.

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

from .boxes import NO_LABEL, Annotation, FrameBoxes, annotation_frames

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


def _pad(frames: Sequence[Sequence[FrameBoxes]], a: int) -> tuple[np.ndarray, np.ndarray]:
    """Annotator ``a``'s boxes on every frame, padded: boxes (F, N, 4) and a mask (F, N)."""
    counts = np.fromiter((len(fr[a]) for fr in frames), np.int64, len(frames))
    n = int(counts.max()) if len(frames) else 0
    boxes = np.zeros((len(frames), n, 4))
    valid = np.arange(n)[None, :] < counts[:, None]
    if n:
        boxes[valid] = np.concatenate([fr[a].boxes for fr in frames if len(fr[a])])
    return boxes, valid


def _batched_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a (F, K, 4) with b (F, N, 4): (F, K, N)."""
    lt = np.maximum(a[:, :, None, :2], b[:, None, :, :2])
    rb = np.minimum(a[:, :, None, 2:], b[:, None, :, 2:])
    wh = np.maximum(rb - lt, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a[:, :, None] + area_b[:, None, :] - inter
    return inter / np.maximum(union, 1e-12)


def _independence(n: int, independence: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if independence is None:
        return np.ones(n)
    d = np.asarray(independence, dtype=np.float64).reshape(n)
    return np.clip(np.nan_to_num(d, nan=0.0), 0.0, 1.0)


def fuse_frames(
    frames: Sequence[Sequence[FrameBoxes]],
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    iou_threshold: float = 0.5,
    independence: Sequence[float] | np.ndarray | None = None,
) -> list[FrameConsensus]:
    """:func:`fuse_frame` for many frames with the same annotators, batched.

    All frames advance together, one annotator at a time: the IoU of the annotator's boxes with
    every frame's cluster centres is one padded array operation, and only the Hungarian
    assignment itself runs frame by frame. Fusion, the class vote and the agreement counts then
    run once over all frames' boxes.
    """
    n_frames = len(frames)
    if not n_frames:
        return []
    n_ann = len(frames[0])
    trust_w = _weights(n_ann, weights)
    # Evidence weights cluster, fuse and vote; the majority is of everyone's trust.
    w = _weights(n_ann, trust_w * _independence(n_ann, independence))
    total = float(trust_w.sum())
    padded = [_pad(frames, a) for a in range(n_ann)]
    cmax = max(1, sum(p[0].shape[1] for p in padded))
    sums = np.zeros((n_frames, cmax, 4))
    wsum = np.zeros((n_frames, cmax))
    n_clusters = np.zeros(n_frames, dtype=np.int64)
    assign: list[np.ndarray] = [np.zeros((n_frames, 0), np.int64)] * n_ann
    for a in np.argsort(-w, kind="stable").tolist():
        boxes, valid = padded[a]
        n = boxes.shape[1]
        if n == 0:
            continue
        wa = w[a]
        cl = np.full((n_frames, n), -1, dtype=np.int64)
        k = int(n_clusters.max())
        if k:
            centres = sums[:, :k] / np.maximum(wsum[:, :k], 1e-12)[..., None]
            iou = _batched_iou(centres, boxes)
            iou[(wsum[:, :k] <= 0)[:, :, None] | ~valid[:, None, :]] = 0.0
            iou[iou < iou_threshold] = 0.0
            rows_all: list[np.ndarray] = []
            cols_all: list[np.ndarray] = []
            frames_all: list[np.ndarray] = []
            for f in np.flatnonzero(iou.any(axis=(1, 2))).tolist():
                g = iou[f, : n_clusters[f]]
                r, c = linear_sum_assignment(g, maximize=True)
                ok = g[r, c] > 0
                rows_all.append(r[ok])
                cols_all.append(c[ok])
                frames_all.append(np.full(int(ok.sum()), f, dtype=np.int64))
            if rows_all:
                fr = np.concatenate(frames_all)
                rr = np.concatenate(rows_all)
                cc = np.concatenate(cols_all)
                cl[fr, cc] = rr
                sums[fr, rr] += wa * boxes[fr, cc]
                wsum[fr, rr] += wa
        new = valid & (cl < 0)
        rank = np.cumsum(new, axis=1) - 1
        ids = n_clusters[:, None] + rank
        cl = np.where(new, ids, cl)
        fr, cc = np.nonzero(new)
        sums[fr, ids[fr, cc]] = wa * boxes[fr, cc]
        wsum[fr, ids[fr, cc]] = wa
        n_clusters += new.sum(axis=1)
        assign[a] = cl
    # Every real box, with its annotator, frame and global cluster id (frame * cmax + local).
    parts = []
    for a in range(n_ann):
        boxes, valid = padded[a]
        if boxes.shape[1] == 0:
            continue
        fr, j = np.nonzero(valid)
        labels = np.full(valid.shape, NO_LABEL, dtype=np.int64)
        labels[valid] = np.concatenate(
            [frames[f][a].labels for f in range(n_frames) if len(frames[f][a])]
        )
        parts.append(
            (boxes[fr, j], labels[fr, j], np.full(len(fr), a), fr * cmax + assign[a][fr, j])
        )
    size = n_frames * n_ann
    if not parts:
        zero = np.zeros(n_ann)
        return [
            FrameConsensus(FrameBoxes.empty(), np.zeros(0), zero, zero.copy(), zero.copy(), zero)
            for _ in range(n_frames)
        ]
    box = np.concatenate([p[0] for p in parts])
    lab = np.concatenate([p[1] for p in parts])
    ann = np.concatenate([p[2] for p in parts]).astype(np.int64)
    cl = np.concatenate([p[3] for p in parts])
    flat_w = wsum.ravel()
    fused = sums.reshape(-1, 4) / np.maximum(flat_w, 1e-12)[:, None]
    kept = 2 * flat_w > total + 1e-12
    # Class by weighted vote within each cluster (unknown classes do not vote).
    known = lab >= 0
    n_lab = int(lab.max()) + 1 if known.any() else 1
    wb = w[ann]
    votes = np.bincount(
        cl[known] * n_lab + lab[known], weights=wb[known], minlength=flat_w.size * n_lab
    ).reshape(flat_w.size, n_lab)
    c_label = np.where(votes.any(axis=1), votes.argmax(axis=1), NO_LABEL)
    # Agreement counts per frame and annotator.
    in_kept = kept[cl]
    fb_idx = (cl // cmax) * n_ann + ann
    tp = np.bincount(fb_idx, weights=in_kept, minlength=size).reshape(n_frames, n_ann)
    fp = np.bincount(fb_idx, weights=~in_kept, minlength=size).reshape(n_frames, n_ann)
    f = fused[cl]
    lt = np.maximum(box[:, :2], f[:, :2])
    rb = np.minimum(box[:, 2:], f[:, 2:])
    wh = np.maximum(rb - lt, 0.0)
    inter = wh[:, 0] * wh[:, 1]
    union = (
        (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
        + (f[:, 2] - f[:, 0]) * (f[:, 3] - f[:, 1])
        - inter
    )
    member_iou = np.where(in_kept, inter / np.maximum(union, 1e-12), 0.0)
    iou_sum = np.bincount(fb_idx, weights=member_iou, minlength=size).reshape(n_frames, n_ann)
    kept_idx = np.flatnonzero(kept)
    kept_frame = kept_idx // cmax
    fn = np.bincount(kept_frame, minlength=n_frames)[:, None] - tp
    bounds = np.searchsorted(kept_frame, np.arange(n_frames + 1))
    out: list[FrameConsensus] = []
    for fi in range(n_frames):
        idx = kept_idx[bounds[fi] : bounds[fi + 1]]
        out.append(
            FrameConsensus(
                boxes=FrameBoxes(fused[idx], c_label[idx], np.arange(len(idx), dtype=np.int64)),
                support=flat_w[idx] / total,
                tp=tp[fi],
                fp=fp[fi],
                fn=fn[fi].astype(np.float64),
                iou_sum=iou_sum[fi],
            )
        )
    return out


def fuse_frame(
    annotations: Sequence[FrameBoxes],
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    iou_threshold: float = 0.5,
    independence: Sequence[float] | np.ndarray | None = None,
) -> FrameConsensus:
    """Cluster one frame's boxes across annotators and fuse the clusters a majority supports."""
    return fuse_frames(
        [annotations], weights, iou_threshold=iou_threshold, independence=independence
    )[0]


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
    independence: Sequence[float] | np.ndarray | None = None,
) -> ConsensusOutcome:
    """Consensus of several annotators' per-frame boxes (see the module docstring);
    ``independence`` per annotator discounts accepted proposals (:mod:`quality.assist`)."""
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
    fused = fuse_frames(
        [[a.get(f, empty) for a in annotations] for f in frames],
        w,
        iou_threshold=iou_threshold,
        independence=independence,
    )
    for f, fc in zip(frames, fused, strict=True):
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
