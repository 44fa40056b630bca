"""Consensus of tracks and stitching across segment seams. Pure numpy/scipy.

Tracks arrive interpolated to per-frame boxes with track ids (``tasks.interpolation`` does that;
nothing here interpolates).

**Track consensus** (algorithm :data:`TRACKS_ALGORITHM`): first identity, then boxes.

1. Identity association. Annotators are visited in order of trust. Each one's tracks are matched
   to the consensus identities found so far by Hungarian matching on *temporal overlap*: the
   share of frames (of either's span) where the track's box and the identity's current centre
   overlap at the IoU threshold. Matched tracks join the identity; unmatched ones open a new one.
   Matching whole tracks, not boxes frame by frame, is what keeps an identity through crossings.
2. Per frame and identity, the boxes of the annotators who have that identity on that frame are
   kept when they hold a strict trust-weighted majority, and fused by trust-weighted mean.

With ``independence`` (accepted proposals, e.g. a tracker's, :mod:`quality.assist`), evidence
weights (trust x independence) associate, fuse and vote, and the majority is of everyone's
trust, exactly as in :func:`quality.consensus.box_consensus`.

Agreement per annotator is panoptic quality (see :mod:`quality.consensus`) against the consensus
per frame, where a box only counts as a hit if it belongs to the right identity — so identity
switches lower agreement too.

**Seam stitching**: consecutive segments share ``overlap_frames``. Tracks of the left segment are
matched to tracks of the right one by Hungarian matching on their mean IoU over the shared frames
(a frame where only one of the two is present counts as 0). A pair is merged only if its mean IoU
reaches the threshold *and* no rival comes close; otherwise the seam is flagged and the tracks are
left apart, because a wrong merge silently corrupts an identity while a flag costs one review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .boxes import NO_LABEL, Annotation, FrameBoxes, annotation_frames
from .consensus import _f1, _independence, _weights, weighted_vote

TRACKS_ALGORITHM = "tracks-assoc-v1"


def _dense(annotation: Annotation, frames: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per track id: boxes (F, 4) and a presence mask (F,) over ``frames``."""
    pos = {f: i for i, f in enumerate(frames)}
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for f, fb in annotation.items():
        i = pos[int(f)]
        for j in range(len(fb)):
            tid = int(fb.ids[j])
            if tid not in out:
                out[tid] = (np.zeros((len(frames), 4)), np.zeros(len(frames), dtype=bool))
            out[tid][0][i] = fb.boxes[j]
            out[tid][1][i] = True
    return out


def _paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of a[..., 4] with b[..., 4] elementwise (broadcasting)."""
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True)
class TrackConsensus:
    algorithm: str
    frames: dict[int, FrameBoxes]
    agreement: float
    annotator_agreement: np.ndarray
    frame_agreement: dict[int, float]
    # (annotator index, annotator's track id) -> consensus identity
    association: dict[tuple[int, int], int] = field(default_factory=dict)


def track_consensus(
    annotations: Sequence[Annotation],
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    iou_threshold: float = 0.5,
    min_track_overlap: float = 0.5,
    independence: Sequence[float] | np.ndarray | None = None,
) -> TrackConsensus:
    """Consensus tracks of several annotators (see the module docstring)."""
    n_ann = len(annotations)
    trust_w = _weights(n_ann, weights)
    w = _weights(n_ann, trust_w * _independence(n_ann, independence))
    total = float(trust_w.sum())
    frames = annotation_frames(*annotations)
    n_f = len(frames)
    dense = [_dense(a, frames) for a in annotations]
    # Consensus identities: weighted coordinate sums (I, F, 4), weights (I, F), and members.
    sums = np.zeros((0, n_f, 4))
    wsum = np.zeros((0, n_f))
    members: list[list[tuple[int, int]]] = []
    association: dict[tuple[int, int], int] = {}
    for a in np.argsort(-w, kind="stable").tolist():
        tids = sorted(dense[a])
        if not tids:
            continue
        boxes = np.stack([dense[a][t][0] for t in tids])  # (T, F, 4)
        present = np.stack([dense[a][t][1] for t in tids])  # (T, F)
        rows = cols = np.zeros(0, dtype=np.int64)
        agree = np.zeros((0, 0, n_f), dtype=bool)
        if len(members):
            have = wsum > 0  # (I, F)
            centres = sums / np.where(have, wsum, 1)[..., None]
            iou = _paired_iou(centres[:, None], boxes[None, :])  # (I, T, F)
            both = have[:, None] & present[None, :]
            agree = (iou >= iou_threshold) & both
            hits = agree.sum(axis=2)
            span = np.maximum(have.sum(1)[:, None], present.sum(1)[None, :])
            overlap = hits / np.maximum(span, 1)
            gain = np.where(overlap >= min_track_overlap, overlap, 0.0)
            rows, cols = linear_sum_assignment(gain, maximize=True)
            ok = gain[rows, cols] > 0
            rows, cols = rows[ok], cols[ok]
        if len(rows):
            # A matched track adds its boxes where it agrees with the identity, and where the
            # identity has nothing yet; a box elsewhere (after an ID switch) supports nothing.
            have = wsum[rows] > 0
            use = present[cols] & (agree[rows, cols] | ~have)
            sums[rows] += w[a] * boxes[cols] * use[..., None]
            wsum[rows] += w[a] * use
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                members[r].append((a, tids[c]))
                association[(a, tids[c])] = r
        new = np.ones(len(tids), dtype=bool)
        new[cols] = False
        for c in np.flatnonzero(new).tolist():
            sums = np.concatenate([sums, (w[a] * boxes[c] * present[c][:, None])[None]])
            wsum = np.concatenate([wsum, (w[a] * present[c])[None]])
            members.append([(a, tids[c])])
            association[(a, tids[c])] = len(members) - 1
    # Identity labels by weighted vote over every member box.
    id_label = []
    for mem in members:
        labs: list[int] = []
        wts: list[float] = []
        for a, tid in mem:
            for fb in annotations[a].values():
                sel = fb.ids == tid
                labs.extend(fb.labels[sel].tolist())
                wts.extend([w[a]] * int(sel.sum()))
        id_label.append(weighted_vote(np.array(labs, np.int64), np.array(wts))[0] if labs else -1)
    kept = 2 * wsum > total + 1e-12  # (I, F)
    fused = sums / np.where(wsum > 0, wsum, 1)[..., None]
    out: dict[int, FrameBoxes] = {}
    tp = np.zeros(n_ann)
    fp = np.zeros(n_ann)
    fn = np.zeros(n_ann)
    hits = np.zeros(n_ann)
    frame_agreement: dict[int, float] = {}
    for fi, f in enumerate(frames):
        ids = np.flatnonzero(kept[:, fi]) if len(members) else np.zeros(0, np.int64)
        out[f] = FrameBoxes(
            fused[ids, fi].reshape(-1, 4),
            np.array([id_label[i] for i in ids], dtype=np.int64),
            ids.astype(np.int64),
        )
        ftp = np.zeros(n_ann)
        ffp = np.zeros(n_ann)
        fhit = np.zeros(n_ann)
        for a in range(n_ann):
            fb = annotations[a].get(f)
            if fb is None:
                continue
            for j in range(len(fb)):
                ident = association.get((a, int(fb.ids[j])))
                iou = _paired_iou(fb.boxes[j], fused[ident, fi]) if ident is not None else 0.0
                if ident is not None and kept[ident, fi] and iou >= iou_threshold:
                    ftp[a] += 1
                    fhit[a] += iou
                else:
                    ffp[a] += 1
        ffn = len(ids) - ftp
        frame_agreement[f] = (
            float(np.average(_f1(ftp, ffp, ffn, fhit), weights=trust_w)) if n_ann else 0.0
        )
        hits += fhit
        tp += ftp
        fp += ffp
        fn += ffn
    per = _f1(tp, fp, fn, hits)
    return TrackConsensus(
        algorithm=TRACKS_ALGORITHM,
        frames=out,
        agreement=float(np.average(per, weights=trust_w)) if n_ann else 0.0,
        annotator_agreement=per,
        frame_agreement=frame_agreement,
        association=association,
    )


# --- Seams --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeamResult:
    """How the right segment's tracks continue the left segment's ones across one seam."""

    overlap_frames: tuple[int, ...]
    mapping: dict[int, int]  # right track id -> left track id (merged)
    scores: dict[tuple[int, int], float]  # (left id, right id) -> mean IoU on the overlap
    issues: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        return bool(self.issues)


def stitch_seam(
    left: Annotation,
    right: Annotation,
    *,
    overlap_frames: Sequence[int] | None = None,
    iou_threshold: float = 0.5,
    ambiguity_margin: float = 0.15,
) -> SeamResult:
    """Match the tracks of two consecutive segments on their shared frames."""
    shared = sorted(
        set(int(f) for f in (overlap_frames if overlap_frames is not None else left))
        & set(int(f) for f in left)
        & set(int(f) for f in right)
    )
    if not shared:
        return SeamResult((), {}, {}, ("the segments share no frame to stitch on",))
    dl = _dense({f: left[f] for f in shared}, shared)
    dr = _dense({f: right[f] for f in shared}, shared)
    lids, rids = sorted(dl), sorted(dr)
    if not lids or not rids:
        issues = []
        for side, ids in (("left", lids), ("right", rids)):
            if ids:
                issues.append(f"{len(ids)} track(s) on the {side} of the seam have no partner")
        return SeamResult(tuple(shared), {}, {}, tuple(issues))
    lb = np.stack([dl[i][0] for i in lids])
    lp = np.stack([dl[i][1] for i in lids])
    rb = np.stack([dr[i][0] for i in rids])
    rp = np.stack([dr[i][1] for i in rids])
    iou = _paired_iou(lb[:, None], rb[None, :])  # (L, R, F)
    both = lp[:, None] & rp[None, :]
    either = lp[:, None] | rp[None, :]
    score = np.where(both, iou, 0.0).sum(axis=2) / np.maximum(either.sum(axis=2), 1)
    rows, cols = linear_sum_assignment(score, maximize=True)
    mapping: dict[int, int] = {}
    issues: list[str] = []
    scores = {
        (lids[r], rids[c]): float(score[r, c]) for r in range(len(lids)) for c in range(len(rids))
    }
    matched_l: set[int] = set()
    matched_r: set[int] = set()
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        s = score[r, c]
        if s < iou_threshold:
            if s > 0.1:
                issues.append(
                    f"left track {lids[r]} and right track {rids[c]} overlap only "
                    f"{s:.2f} mean IoU on the seam"
                )
                matched_l.add(r)
                matched_r.add(c)
            continue
        rival_r = np.delete(score[r], c)
        rival_c = np.delete(score[:, c], r)
        rival = max(rival_r.max(initial=0.0), rival_c.max(initial=0.0))
        if rival >= iou_threshold and s - rival < ambiguity_margin:
            issues.append(
                f"left track {lids[r]} could continue as right track {rids[c]} ({s:.2f}) or "
                f"another ({rival:.2f}); not merged"
            )
            matched_l.add(r)
            matched_r.add(c)
            continue
        mapping[rids[c]] = lids[r]
        matched_l.add(r)
        matched_r.add(c)
    # A track present through most of the overlap on one side only: one segment lost an object.
    half = len(shared) / 2
    for side, ids, present, matched in (
        ("left", lids, lp, matched_l),
        ("right", rids, rp, matched_r),
    ):
        for i, tid in enumerate(ids):
            if i not in matched and present[i].sum() > half:
                issues.append(f"{side} track {tid} crosses the seam with no partner")
    return SeamResult(tuple(shared), mapping, scores, tuple(issues))


@dataclass(frozen=True)
class StitchedTracks:
    frames: dict[int, FrameBoxes]
    seams: tuple[SeamResult, ...]
    # (segment index, segment-local track id) -> global track id
    identity: dict[tuple[int, int], int]


def stitch_tracks(segments: Sequence[Annotation], *, iou_threshold: float = 0.5) -> StitchedTracks:
    """Join consecutive segments' tracks into global tracks (segments ordered in time).

    On the shared frames the left segment's boxes are kept; right tracks that continue a left
    track take its global id, all others get new ids.
    """
    identity: dict[tuple[int, int], int] = {}
    next_id = 0
    out: dict[int, FrameBoxes] = {}
    seams: list[SeamResult] = []
    for s, seg in enumerate(segments):
        local_ids = sorted({int(i) for fb in seg.values() for i in fb.ids})
        mapping: dict[int, int] = {}
        if s > 0:
            seam = stitch_seam(segments[s - 1], seg, iou_threshold=iou_threshold)
            seams.append(seam)
            mapping = seam.mapping
        for tid in local_ids:
            if tid in mapping and (s - 1, mapping[tid]) in identity:
                identity[(s, tid)] = identity[(s - 1, mapping[tid])]
            else:
                identity[(s, tid)] = next_id
                next_id += 1
        for f, fb in seg.items():
            gids = np.array([identity[(s, int(i))] for i in fb.ids], dtype=np.int64)
            if f in out:
                # Shared frame: keep the left boxes, add right tracks the left did not continue.
                prev = out[f]
                extra = ~np.isin(gids, prev.ids)
                out[f] = FrameBoxes(
                    np.concatenate([prev.boxes, fb.boxes[extra]]),
                    np.concatenate([prev.labels, fb.labels[extra]]),
                    np.concatenate([prev.ids, gids[extra]]),
                )
            else:
                out[int(f)] = FrameBoxes(fb.boxes, fb.labels, gids)
    return StitchedTracks(dict(sorted(out.items())), tuple(seams), identity)


__all__ = [
    "NO_LABEL",
    "TRACKS_ALGORITHM",
    "SeamResult",
    "StitchedTracks",
    "TrackConsensus",
    "stitch_seam",
    "stitch_tracks",
    "track_consensus",
]
