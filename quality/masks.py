"""Masks: overlap measures, consensus of several raters' masks, agreement per pixel (pure numpy).

Two ways to merge R raters' binary masks of one class on one frame, chosen per job:

- **Trust-weighted pixel vote** (:func:`weighted_vote`): a pixel is in when the raters who drew
  it carry at least half the trust. Agreement per pixel is the share of trust on the winning side.
- **STAPLE** (:func:`staple`; Warfield, Zou & Wells, IEEE TMI 2004): expectation-maximisation
  over the unknown true mask and each rater's sensitivity ``p`` and specificity ``q``. The same
  iteration as ITK's ``STAPLEImageFilter`` (what SimpleITK's ``STAPLE`` runs): start from the
  mean vote ``W``, prior ``g = mean(W) x confidence_weight``; repeat the M-step (``p_j =
  Σ W D_j / Σ W``, ``q_j = Σ (1-W)(1-D_j) / Σ (1-W)``) then the E-step (``W = g·A / (g·A +
  (1-g)·B)``, A and B the products of each rater's likelihood) until no ``p_j`` or ``q_j`` moves
  by more than 1e-7 (ITK: squared change ≤ 1e-14); the output is the probability ``W``,
  thresholded at 0.5.

  Why it is fast: a pixel's likelihood depends only on *which* raters marked it, one of 2^R
  patterns. The masks are folded once into a pattern per pixel and a count per pattern; every
  iteration then costs O(2^R·R), not O(pixels·R). With ``spatial_prior`` the prior ``g`` is per
  pixel (the local mean vote, blurred), quantised to 64 levels, and the counts are per (pattern,
  level): still independent of the frame size.

Instances (:func:`instance_consensus`): each rater's instances of a class are matched across
raters by mask IoU (greedy on the best pair, one instance per rater per group); a group is kept
when the raters in it carry a weighted majority, and fused by the chosen method, the raters who
did not draw it counting as an empty mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter

from tasks import rle

METHODS = ("vote", "staple")
_MAX_PATTERN_RATERS = 16  # 2^16 patterns; more raters fall back to the per-pixel iteration
_PRIOR_LEVELS = 64
_ITK_MIN_CHANGE = 1.0e-14  # ITK compares the squared change of each p and q with this


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice (F1 of pixels) of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 2.0 * np.count_nonzero(a & b) / total if total else 1.0


@dataclass(frozen=True)
class ClassOverlap:
    iou: dict[str, float]
    dice: dict[str, float]

    @property
    def mean_iou(self) -> float:
        return float(np.mean(list(self.iou.values()))) if self.iou else 1.0

    @property
    def mean_dice(self) -> float:
        return float(np.mean(list(self.dice.values()))) if self.dice else 1.0


def per_class(gold: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray]) -> ClassOverlap:
    """IoU and Dice per class over the classes either side drew (a missing class is empty)."""
    ious, dices = {}, {}
    for c in sorted(set(gold) | set(pred)):
        g, p = gold.get(c), pred.get(c)
        ref = g if g is not None else p
        g = g if g is not None else np.zeros_like(ref, dtype=bool)
        p = p if p is not None else np.zeros_like(ref, dtype=bool)
        ious[c], dices[c] = iou(g, p), dice(g, p)
    return ClassOverlap(ious, dices)


@dataclass(frozen=True)
class Fused:
    """A consensus mask with its per-pixel probability and agreement."""

    mask: np.ndarray  # bool, the raters' shape
    probability: np.ndarray  # float32, P(pixel in)
    agreement: float  # mean per-pixel agreement over the pixels any rater marked
    sensitivity: tuple[float, ...] = ()
    specificity: tuple[float, ...] = ()
    iterations: int = 0

    def agreement_map(self) -> np.ndarray:
        """Per pixel, the weight on the winning side: 1 unanimous, 0.5 split."""
        return np.maximum(self.probability, 1.0 - self.probability)


def _stack(masks: Sequence[np.ndarray]) -> np.ndarray:
    stack = np.asarray([np.asarray(m, dtype=bool) for m in masks])
    if stack.ndim < 2 or not len(stack):
        raise ValueError("consensus needs at least one mask")
    return stack


def _agreement(prob: np.ndarray, marked: np.ndarray) -> float:
    if not marked.any():
        return 1.0
    p = prob[marked]
    return float(np.maximum(p, 1.0 - p).mean())


def weighted_vote(masks: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> Fused:
    """Trust-weighted pixel vote: in when the raters marking it carry ≥ half the weight."""
    stack = _stack(masks)
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(stack),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("one non-negative weight per mask, not all zero")
    w = w / w.sum()
    prob = np.tensordot(w.astype(np.float32), stack.astype(np.float32), axes=1)
    marked = stack.any(axis=0)
    return Fused(prob >= 0.5, prob, _agreement(prob, marked))


def _patterns(stack: np.ndarray) -> np.ndarray:
    flat = stack.reshape(len(stack), -1)
    code = np.zeros(flat.shape[1], dtype=np.uint32)
    for j in range(len(flat)):
        code |= flat[j].astype(np.uint32) << j
    return code


def _spatial_prior(stack: np.ndarray, radius: int) -> np.ndarray:
    mean = stack.mean(axis=0, dtype=np.float32)
    return uniform_filter(mean, size=2 * radius + 1, mode="nearest")


def staple(
    masks: Sequence[np.ndarray],
    *,
    confidence_weight: float = 1.0,
    max_iterations: int = 1000,
    spatial_prior: bool = False,
    prior_radius: int = 15,
) -> Fused:
    """STAPLE over binary masks of one shape; see the module's docstring."""
    stack = _stack(masks)
    r = len(stack)
    shape = stack.shape[1:]
    if r > _MAX_PATTERN_RATERS:
        raise ValueError(f"at most {_MAX_PATTERN_RATERS} raters")
    code = _patterns(stack)
    n_pat = 1 << r
    bits = ((np.arange(n_pat)[:, None] >> np.arange(r)[None, :]) & 1).astype(np.float64)
    if spatial_prior:
        local = np.clip(_spatial_prior(stack, prior_radius).ravel(), 1e-3, 1 - 1e-3)
        level = np.minimum((local * _PRIOR_LEVELS).astype(np.int64), _PRIOR_LEVELS - 1)
        g_levels = (np.arange(_PRIOR_LEVELS) + 0.5) / _PRIOR_LEVELS
        key = code.astype(np.int64) * _PRIOR_LEVELS + level
        counts = np.bincount(key, minlength=n_pat * _PRIOR_LEVELS).reshape(n_pat, _PRIOR_LEVELS)
        g = np.clip(g_levels * confidence_weight, 1e-6, 1 - 1e-6)[None, :]
    else:
        counts = np.bincount(code, minlength=n_pat).astype(np.float64)[:, None]
        total = counts.sum()
        g_t = float((counts[:, 0] * bits.mean(axis=1)).sum() / total) * confidence_weight
        g = np.array([[min(max(g_t, 1e-12), 1 - 1e-12)]])
    counts = counts.astype(np.float64)
    # W per (pattern, level); first the mean vote, as ITK starts.
    w = np.repeat(bits.mean(axis=1)[:, None], counts.shape[1], axis=1)
    last_p = last_q = None
    p = q = np.zeros(r)
    it = 0
    for it in range(max_iterations):  # noqa: B007 - reported as the iterations run
        cw = counts * w
        cnw = counts * (1.0 - w)
        sw, snw = cw.sum(axis=1), cnw.sum(axis=1)  # per pattern
        p_den, q_den = sw.sum(), snw.sum()
        p = (bits * sw[:, None]).sum(axis=0) / p_den if p_den > 0 else np.ones(r)
        q = ((1.0 - bits) * snw[:, None]).sum(axis=0) / q_den if q_den > 0 else np.ones(r)
        p, q = np.clip(p, 0.0, 1.0), np.clip(q, 0.0, 1.0)  # rounding may pass 1 by an ulp
        on = bits.astype(bool)
        with np.errstate(divide="ignore"):  # log(0) = -inf: that pattern cannot be this side
            log_a = np.where(on, np.log(p), np.log1p(-p)).sum(axis=1)
            log_b = np.where(on, np.log1p(-q), np.log(q)).sum(axis=1)
        a, b = np.exp(log_a)[:, None], np.exp(log_b)[:, None]
        num = g * a
        den = num + (1.0 - g) * b
        w = np.divide(num, den, out=np.full_like(num, 0.5), where=den > 0)
        if (
            last_p is not None
            and ((p - last_p) ** 2 <= _ITK_MIN_CHANGE).all()
            and ((q - last_q) ** 2 <= _ITK_MIN_CHANGE).all()
        ):
            break
        last_p, last_q = p, q
    if spatial_prior:
        prob = w[code, level].astype(np.float32).reshape(shape)
    else:
        prob = w[code, 0].astype(np.float32).reshape(shape)
    marked = stack.any(axis=0)
    return Fused(
        prob >= 0.5,
        prob,
        _agreement(prob, marked),
        tuple(float(x) for x in p),
        tuple(float(x) for x in q),
        it + 1,
    )


def fuse(
    masks: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    *,
    method: str = "vote",
    spatial_prior: bool = False,
) -> Fused:
    """One consensus mask by ``method`` (``"vote"`` or ``"staple"``)."""
    if method == "vote":
        return weighted_vote(masks, weights)
    if method == "staple":
        if len(masks) == 1:
            return weighted_vote(masks)
        return staple(masks, spatial_prior=spatial_prior)
    raise ValueError(f"unknown consensus method {method!r}; use one of {METHODS}")


# --- Instances ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    label: str
    mask: np.ndarray  # bool (h, w)


@dataclass(frozen=True)
class FusedInstance:
    label: str
    fused: Fused
    raters: tuple[int, ...]  # which raters' instances formed the group
    support: float  # their share of the weight


def _box(m: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), the last two exclusive."""
    x, y, w, h = rle.bbox(m)
    return (y, x, y + h, x + w)


def _pair_iou(a: Instance, ba, b: Instance, bb) -> float:
    y0, x0 = max(ba[0], bb[0]), max(ba[1], bb[1])
    y1, x1 = min(ba[2], bb[2]), min(ba[3], bb[3])
    if y1 <= y0 or x1 <= x0:
        return 0.0
    # IoU on the union of both boxes: outside it neither mask has a pixel.
    uy0, ux0 = min(ba[0], bb[0]), min(ba[1], bb[1])
    uy1, ux1 = max(ba[2], bb[2]), max(ba[3], bb[3])
    return iou(a.mask[uy0:uy1, ux0:ux1], b.mask[uy0:uy1, ux0:ux1])


def instance_consensus(
    raters: Sequence[Sequence[Instance]],
    weights: Sequence[float] | None = None,
    *,
    method: str = "vote",
    iou_threshold: float = 0.5,
    min_support: float = 0.5,
) -> list[FusedInstance]:
    """Consensus instances of one frame from each rater's instances (see the module's docs)."""
    n = len(raters)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / max(n, 1))
    items = [(r, inst, _box(inst.mask)) for r, insts in enumerate(raters) for inst in insts]
    pairs = []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (ri, a, ba), (rj, b, bb) = items[i], items[j]
            if ri == rj or a.label != b.label:
                continue
            v = _pair_iou(a, ba, b, bb)
            if v >= iou_threshold:
                pairs.append((v, i, j))
    pairs.sort(reverse=True)
    group = list(range(len(items)))  # union-find over items, one item per rater per group

    def find(x: int) -> int:
        while group[x] != x:
            group[x] = group[group[x]]
            x = group[x]
        return x

    members: dict[int, set[int]] = {i: {items[i][0]} for i in range(len(items))}
    for _, i, j in pairs:
        gi, gj = find(i), find(j)
        if gi == gj or members[gi] & members[gj]:
            continue
        group[gj] = gi
        members[gi] |= members.pop(gj)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for idx in groups.values():
        who = tuple(sorted(items[i][0] for i in idx))
        support = float(w[list(who)].sum())
        if support < min_support:
            continue
        shape = items[idx[0]][1].mask.shape
        by_rater = {items[i][0]: items[i][1].mask for i in idx}
        stack = [by_rater.get(r, np.zeros(shape, dtype=bool)) for r in range(n)]
        out.append(
            FusedInstance(items[idx[0]][1].label, fuse(stack, w, method=method), who, support)
        )
    return out


# --- Stored shapes: one microtask's submissions -------------------------------------------------

Frames = Mapping[str, Sequence[Mapping]]


@dataclass(frozen=True)
class MaskConsensus:
    """The consensus of several submissions of a mask microtask, in stored form.

    ``agreement`` (and per frame) is the mean, over the pixels any rater marked, of the trust
    share of raters on the consensus's side of that pixel (1: unanimous; 2 of 3: 0.67);
    ``annotator_agreement`` is each rater's mean Dice with the consensus, class by class.
    """

    algorithm: str
    frames: dict[str, list[dict]]
    agreement: float
    annotator_agreement: tuple[float, ...]
    frame_agreement: dict[int, float]


def _class_unions(shapes: Sequence[Mapping], size: tuple[int, int]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for s in shapes:
        m = rle.decode(s["rle"])
        out[s["label"]] = out[s["label"]] | m if s["label"] in out else m
    return out


def frame_size(frames_list: Sequence[Frames]) -> tuple[int, int] | None:
    for frames in frames_list:
        for shapes in frames.values():
            for s in shapes:
                if s.get("rle"):
                    h, w = s["rle"]["size"]
                    return int(h), int(w)
    return None


def mask_consensus(
    raters: Sequence[Frames],
    weights: Sequence[float],
    *,
    method: str = "vote",
    iou_threshold: float = 0.5,
) -> MaskConsensus:
    """Instances fused per frame (:func:`instance_consensus`), agreement per pixel per class."""
    if method not in METHODS:
        raise ValueError(f"unknown consensus method {method!r}; use one of {METHODS}")
    n = len(raters)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / max(n, 1))
    size = frame_size(raters)
    keys = sorted({k for r in raters for k in r}, key=int)
    out: dict[str, list[dict]] = {}
    frame_agreement: dict[int, float] = {}
    dice_sum, dice_n = np.zeros(n), np.zeros(n)
    for key in keys:
        per_rater = [list(r.get(key, ())) for r in raters]
        if size is None or not any(per_rater):
            out[key] = []
            frame_agreement[int(key)] = 1.0
            continue
        insts = [
            [Instance(s["label"], rle.decode(s["rle"])) for s in shapes] for shapes in per_rater
        ]
        fused = instance_consensus(insts, w, method=method, iou_threshold=iou_threshold)
        out[key] = [
            {"label": f.label, "rle": rle.encode(f.fused.mask)} for f in fused if f.fused.mask.any()
        ]
        unions = [_class_unions(shapes, size) for shapes in per_rater]
        cons = _class_unions(out[key], size)
        agree_num = agree_den = 0.0
        for c in sorted({c for u in unions for c in u}):
            stack = np.asarray([u.get(c, np.zeros(size, bool)) for u in unions])
            target = cons.get(c, np.zeros(size, bool))
            marked = stack.any(axis=0)
            on_side = np.tensordot(w, stack == target[None], axes=1)
            agree_num += float(on_side[marked].sum())
            agree_den += float(marked.sum())
            for r in range(n):
                dice_sum[r] += dice(stack[r], target)
                dice_n[r] += 1
        frame_agreement[int(key)] = agree_num / agree_den if agree_den else 1.0
    per = tuple(float(s / k) if k else 1.0 for s, k in zip(dice_sum, dice_n, strict=True))
    agreement = float(np.mean(list(frame_agreement.values()))) if frame_agreement else 1.0
    return MaskConsensus(f"masks-{method}-v1", out, agreement, per, frame_agreement)


def score_masks(
    gold: Frames, pred: Frames, *, pass_threshold: float = 0.5
) -> tuple[float, dict[str, float], list[int]]:
    """Gold scoring: (score, metrics, frames off) on per-class IoU and Dice of the union masks.

    The score is the mean IoU over (frame, class) pairs either side drew; a frame is off when its
    mean IoU is under ``pass_threshold``. A frame where neither side drew anything scores 1.
    """
    size = frame_size([gold, pred])
    ious, dices, off = [], [], []
    for key in sorted(gold, key=int):
        g, p = gold.get(key, ()), pred.get(key, ())
        if size is None or (not g and not p):
            ious.append(1.0)
            dices.append(1.0)
            continue
        overlap = per_class(_class_unions(g, size), _class_unions(p, size))
        ious.extend(overlap.iou.values())
        dices.extend(overlap.dice.values())
        if overlap.mean_iou < pass_threshold:
            off.append(int(key))
    mean_iou = float(np.mean(ious)) if ious else 1.0
    mean_dice = float(np.mean(dices)) if dices else 1.0
    return mean_iou, {"mean_iou": round(mean_iou, 4), "mean_dice": round(mean_dice, 4)}, off


# --- Masks on tracks (a track job with ``track_masks``) -----------------------------------------
#
# A track's mask lives on its keyframes only (``tasks.annotations``: "Masks on tracks"); the
# per-frame shapes carry it as ``rle`` beside the box. Nothing here interpolates masks.


def _track_masks(frames: Frames) -> dict[tuple[int, int], np.ndarray]:
    """(frame, track id) -> the decoded keyframe mask, for every track shape that has one."""
    out: dict[tuple[int, int], np.ndarray] = {}
    for key, shapes in frames.items():
        for s in shapes:
            if s.get("rle") and "track" in s:
                out[(int(key), int(s["track"]))] = rle.decode(s["rle"])
    return out


def score_track_masks(gold: Frames, pred: Frames, mapping: Mapping[int, int]) -> float | None:
    """Mean mask IoU over the answer's keyframe masks, each against the mask the submitted track
    matched to its track (``mapping``: gold id -> submitted id, the track scoring's IDF1
    assignment) has on the same frame; a missing mask (no match, or no mask on that frame) scores
    0. None when the answer has no mask (nothing to score)."""
    wanted = _track_masks(gold)
    if not wanted:
        return None
    given = _track_masks(pred)
    total = 0.0
    for (f, gid), m in wanted.items():
        pid = mapping.get(gid)
        p = given.get((f, pid)) if pid is not None else None
        total += iou(m, p) if p is not None else 0.0
    return total / len(wanted)


@dataclass(frozen=True)
class TrackMaskConsensus:
    """Consensus frames with fused keyframe masks; each rater's mean Dice with the fused masks
    where the rater gave one (None where they gave none), and agreement per frame."""

    frames: dict[str, list[dict]]
    annotator_dice: tuple[float | None, ...]
    frame_agreement: dict[int, float]


def track_mask_consensus(
    raters: Sequence[Frames],
    weights: Sequence[float],
    association: Mapping[tuple[int, int], int],
    consensus: Frames,
    *,
    method: str = "vote",
) -> TrackMaskConsensus:
    """Fuse the raters' keyframe masks onto the consensus tracks (``quality.tracks``).

    On each frame, a consensus track (``"track"``: its identity) gets a mask when the raters
    whose associated track (``association``: (rater, rater's track id) -> identity) has a mask on
    that frame carry a strict majority of all the raters' weight — as a box must to be kept —
    fused by ``method`` with those raters' weights; raters without a mask there abstain (their
    keyframes may fall elsewhere), they do not vote "empty"."""
    if method not in METHODS:
        raise ValueError(f"unknown consensus method {method!r}; use one of {METHODS}")
    n = len(raters)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if n and w.sum() > 0 else np.full(n, 1.0 / max(n, 1))
    by_rater = [_track_masks(r) for r in raters]
    # (frame, identity) -> [(rater, mask)]
    offered: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    for a, masks_a in enumerate(by_rater):
        for (f, tid), m in masks_a.items():
            ident = association.get((a, tid))
            if ident is not None:
                offered.setdefault((f, int(ident)), []).append((a, m))
    out: dict[str, list[dict]] = {}
    dice_sum, dice_n = np.zeros(n), np.zeros(n)
    frame_agreement: dict[int, float] = {}
    for key, shapes in consensus.items():
        new_shapes = []
        for s in shapes:
            s = dict(s)
            s.pop("rle", None)
            group = offered.get((int(key), int(s["track"]))) if "track" in s else None
            if group and float(sum(w[a] for a, _ in group)) * 2 > 1.0 + 1e-12:
                fused = fuse([m for _, m in group], [w[a] for a, _ in group], method=method)
                if fused.mask.any():
                    s["rle"] = rle.encode(fused.mask)
                    for a, m in group:
                        dice_sum[a] += dice(m, fused.mask)
                        dice_n[a] += 1
                    frame_agreement.setdefault(int(key), fused.agreement)
                    frame_agreement[int(key)] = min(frame_agreement[int(key)], fused.agreement)
            new_shapes.append(s)
        out[key] = new_shapes
    per = tuple(float(d / k) if k else None for d, k in zip(dice_sum, dice_n, strict=True))
    return TrackMaskConsensus(out, per, frame_agreement)


def carry_track_masks(
    target: dict[str, list[dict]],
    segments: Sequence[Frames],
    identity: Mapping[tuple[int, int], int],
) -> None:
    """Put the segments' keyframe masks on the stitched tracks ``target`` (in place): segment
    ``s``'s track ``t`` is video-wide track ``identity[(s, t)]``; on a frame two segments share,
    the earlier segment's mask wins, as its boxes do (``quality.tracks.stitch_tracks``)."""
    found: dict[tuple[str, int], dict] = {}
    for s, frames in enumerate(segments):
        for key, shapes in frames.items():
            for sh in shapes:
                gid = identity.get((s, int(sh.get("track", -1))))
                if sh.get("rle") and gid is not None:
                    found.setdefault((key, gid), sh["rle"])
    for key, shapes in target.items():
        for sh in shapes:
            value = found.get((key, int(sh["track"])))
            if value is not None:
                sh["rle"] = value
