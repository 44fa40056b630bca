"""Actions and events over time: labelled frame intervals, scored and merged. Pure numpy/scipy.

An event is a label on an inclusive frame interval ``[start, end]`` (``"crossing"`` from frame
120 to 210), on the whole video or on one track (``track``: the id of a track in the same
payload). Frames are whole numbers, so every length counts frames: ``[5, 5]`` is one frame long.

- **Temporal IoU** of two intervals: shared frames over frames covered by either.
- **Matching**: per label (and per track when the events carry one), Hungarian matching
  (``scipy.optimize.linear_sum_assignment``) maximising the summed tIoU of pairs at or above the
  threshold; intervals of different labels never match. Precision, recall, F1 and the mean tIoU
  of the matched pairs; the single ``score`` is F1 x mean tIoU (the panoptic-quality product the
  box scores use), so an annotator who finds every event but with loose edges scores below one
  who gets the edges right.
- **Consensus** (algorithm :data:`EVENTS_ALGORITHM`): per label (and track), every annotator
  votes with their trust weight on each frame they cover (once, however many of their own events
  cover it); a frame belongs to the consensus when its votes reach half of the total weight.
  Runs of such frames are intervals; runs separated by at most ``max_gap`` frames are merged and
  runs shorter than ``min_length`` frames dropped. A spammer's random intervals, a lazy worker's
  missed event and a lone worker's late edge all fall out of the vote without a matching step.
- **Agreement**: each annotator's panoptic quality against the consensus (Σ tIoU of matched
  pairs / (tp + (fp + fn) / 2), 1.0 when both are empty), averaged with the trust weights; per
  frame, the trust share of annotators whose coverage of each label agrees with the consensus.
  Low agreement adds a replica the way boxes do (``quality.policy.decide_overlap``).

Stored per-frame shapes (``tasks.annotations``' format for ``event`` jobs) are one
``{"label", "event"}`` per frame an event covers, ``event`` its index in the payload; the
functions :func:`from_frames` and :func:`to_frames` convert.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from tasks.annotations import event_frames

EVENTS_ALGORITHM = "events-wvote-v1"
DEFAULT_TIOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class Event:
    label: str
    start: int
    end: int
    track: int | None = None

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.label, self.track)

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def events_from_payload(items: Sequence[Mapping]) -> list[Event]:
    """Events from validated payload items (``{"label", "start", "end"[, "track"]}``)."""
    return [Event(str(e["label"]), int(e["start"]), int(e["end"]), e.get("track")) for e in items]


def events_to_payload(events: Sequence[Event]) -> list[dict]:
    out = []
    for e in events:
        item: dict = {"label": e.label, "start": e.start, "end": e.end}
        if e.track is not None:
            item["track"] = e.track
        out.append(item)
    return out


# --- temporal IoU and matching -------------------------------------------------------------------


def tiou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Temporal IoU of two inclusive frame intervals."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union


def tiou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) temporal IoU of inclusive intervals ``a`` (n, 2) and ``b`` (m, 2)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    inter = np.clip(inter, 0, None)
    union = (a[:, 1] - a[:, 0] + 1)[:, None] + (b[:, 1] - b[:, 0] + 1)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def event_tiou_matrix(gold: Sequence[Event], pred: Sequence[Event]) -> np.ndarray:
    """tIoU of every pair, zero across labels (or tracks)."""
    m = tiou_matrix(
        np.array([(e.start, e.end) for e in gold], dtype=np.float64).reshape(-1, 2),
        np.array([(e.start, e.end) for e in pred], dtype=np.float64).reshape(-1, 2),
    )
    if m.size:
        same = np.array([[g.key == p.key for p in pred] for g in gold], dtype=bool)
        m[~same] = 0.0
    return m


def match_events(
    gold: Sequence[Event], pred: Sequence[Event], *, threshold: float = DEFAULT_TIOU_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hungarian matching of ``pred`` to ``gold``: the rows, columns and tIoU of pairs kept."""
    m = event_tiou_matrix(gold, pred)
    if m.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    rows, cols = linear_sum_assignment(m, maximize=True)
    keep = m[rows, cols] >= threshold
    rows, cols = rows[keep], cols[keep]
    return rows, cols, m[rows, cols]


@dataclass(frozen=True)
class EventScore:
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mean_tiou: float
    score: float
    missed: tuple[int, ...]  # indices of gold events without a match
    spurious: tuple[int, ...]  # indices of predicted events without a match


def score_events(
    gold: Sequence[Event], pred: Sequence[Event], *, threshold: float = DEFAULT_TIOU_THRESHOLD
) -> EventScore:
    """Precision, recall, F1 and mean tIoU of ``pred`` against ``gold`` (module docstring)."""
    rows, cols, ious = match_events(gold, pred, threshold=threshold)
    tp = len(rows)
    fp = len(pred) - tp
    fn = len(gold) - tp
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mean = 1.0 if not gold and not pred else float(ious.mean()) if tp else 0.0
    return EventScore(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=precision,
        recall=recall,
        f1=f1,
        mean_tiou=mean,
        score=f1 * mean,
        missed=tuple(sorted(set(range(len(gold))) - set(rows.tolist()))),
        spurious=tuple(sorted(set(range(len(pred))) - set(cols.tolist()))),
    )


def panoptic_quality(
    gold: Sequence[Event], pred: Sequence[Event], *, threshold: float = DEFAULT_TIOU_THRESHOLD
) -> float:
    """Σ tIoU of matched pairs / (tp + (fp + fn) / 2); 1.0 when both are empty."""
    if not gold and not pred:
        return 1.0
    rows, _, ious = match_events(gold, pred, threshold=threshold)
    tp = len(rows)
    fp, fn = len(pred) - tp, len(gold) - tp
    return float(ious.sum()) / (tp + (fp + fn) / 2)


# --- consensus -----------------------------------------------------------------------------------


def runs(mask: np.ndarray, origin: int = 0) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` of every run of True in ``mask``, offset by ``origin``."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return []
    d = np.diff(np.concatenate(([0], m.astype(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return [(int(s) + origin, int(e) + origin) for s, e in zip(starts, ends, strict=True)]


def merge_runs(
    intervals: Sequence[tuple[int, int]], *, max_gap: int = 0, min_length: int = 1
) -> list[tuple[int, int]]:
    """Join sorted intervals whose gap is at most ``max_gap`` frames; drop the short ones."""
    out: list[list[int]] = []
    for s, e in intervals:
        if out and s - out[-1][1] - 1 <= max_gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out if e - s + 1 >= min_length]


def coverage(
    events: Sequence[Event], key: Hashable, frame_start: int, frame_end: int
) -> np.ndarray:
    """Which frames of ``[frame_start, frame_end]`` the events of ``key`` cover (bool array)."""
    cov = np.zeros(frame_end - frame_start + 1, dtype=bool)
    for e in events:
        if e.key == key:
            s = max(e.start, frame_start) - frame_start
            t = min(e.end, frame_end) - frame_start
            if t >= s:
                cov[s : t + 1] = True
    return cov


def _weights(n: int, weights: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    # As in quality.consensus: a worker of trust 0 still breaks ties among equals.
    return np.clip(np.asarray(weights, dtype=np.float64).reshape(n), 1e-3, None)


@dataclass(frozen=True)
class EventConsensus:
    algorithm: str
    events: list[Event]
    support: list[float]  # per consensus event: the mean vote share over its frames
    agreement: float
    annotator_agreement: np.ndarray  # (A,) panoptic quality of each annotator against it
    frame_agreement: dict[int, float]


def vote_intervals(
    annotations: Sequence[Sequence[Event]],
    weights: Sequence[float] | np.ndarray | None,
    *,
    frame_start: int,
    frame_end: int,
    share: float = 0.5,
    max_gap: int = 0,
    min_length: int = 1,
) -> tuple[list[Event], list[float], dict[Hashable, np.ndarray]]:
    """The weighted vote over time (module docstring): events, their support, and per key the
    consensus coverage."""
    w = _weights(len(annotations), weights)
    total = float(w.sum())
    keys = sorted({e.key for a in annotations for e in a}, key=lambda k: (k[0], k[1] or -1))
    events: list[Event] = []
    support: list[float] = []
    covered: dict[Hashable, np.ndarray] = {}
    for key in keys:
        votes = np.zeros(frame_end - frame_start + 1)
        for a, weight in zip(annotations, w, strict=True):
            votes += weight * coverage(a, key, frame_start, frame_end)
        # A tiny tolerance so that exactly half (1 of 2 equals) counts as "reaches half".
        keep = votes >= share * total - 1e-9
        spans = merge_runs(runs(keep, frame_start), max_gap=max_gap, min_length=min_length)
        cov = np.zeros_like(keep)
        for s, e in spans:
            cov[s - frame_start : e - frame_start + 1] = True
            events.append(Event(key[0], s, e, key[1]))
            support.append(float(votes[s - frame_start : e - frame_start + 1].mean() / total))
        covered[key] = cov
    return events, support, covered


def event_consensus(
    annotations: Sequence[Sequence[Event]],
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    frame_start: int,
    frame_end: int,
    tiou_threshold: float = DEFAULT_TIOU_THRESHOLD,
    max_gap: int = 0,
    min_length: int = 1,
) -> EventConsensus:
    """Consensus events of several annotators on ``[frame_start, frame_end]`` (module docstring)."""
    n = len(annotations)
    w = _weights(n, weights)
    events, support, covered = vote_intervals(
        annotations,
        w,
        frame_start=frame_start,
        frame_end=frame_end,
        max_gap=max_gap,
        min_length=min_length,
    )
    per = np.array(
        [panoptic_quality(events, list(a), threshold=tiou_threshold) for a in annotations]
    )
    frames = frame_end - frame_start + 1
    agree = np.ones((n, frames), dtype=bool)
    for key, cov in covered.items():
        for i, a in enumerate(annotations):
            agree[i] &= coverage(a, key, frame_start, frame_end) == cov
    share = (w[:, None] * agree).sum(axis=0) / w.sum() if n else np.ones(frames)
    return EventConsensus(
        algorithm=EVENTS_ALGORITHM,
        events=events,
        support=support,
        agreement=float(np.average(per, weights=w)) if n else 0.0,
        annotator_agreement=per,
        frame_agreement={frame_start + i: float(v) for i, v in enumerate(share)},
    )


# --- stored per-frame shapes ---------------------------------------------------------------------


def to_frames(events: Sequence[Event], frame_start: int, frame_end: int) -> dict[str, list[dict]]:
    """Per-frame shapes of ``events`` as ``tasks.annotations`` stores them for an event job."""
    return event_frames(events_to_payload(events), frame_start, frame_end)


def from_frames(frames: Mapping[str, Sequence[Mapping]]) -> list[Event]:
    """The events of stored per-frame shapes (the inverse of :func:`to_frames`)."""
    spans: dict[int, list] = {}
    for f, shapes in frames.items():
        for s in shapes:
            if "event" not in s:
                continue
            i = int(s["event"])
            frame = int(f)
            if i in spans:
                spans[i][1] = min(spans[i][1], frame)
                spans[i][2] = max(spans[i][2], frame)
            else:
                spans[i] = [s, frame, frame]
    return [
        Event(str(s["label"]), lo, hi, s.get("track")) for _, (s, lo, hi) in sorted(spans.items())
    ]


# --- events on tracks --------------------------------------------------------------------------


def track_event_consensus(
    annotations: Sequence[Sequence[Event]],
    weights: Sequence[float] | np.ndarray | None,
    association: Mapping[tuple[int, int], int],
    kept: frozenset[int] | set[int],
    *,
    frame_start: int,
    frame_end: int,
    tiou_threshold: float = DEFAULT_TIOU_THRESHOLD,
) -> tuple[list[Event], np.ndarray]:
    """Consensus events of tracks, and each annotator's agreement with them (panoptic quality,
    as :func:`event_consensus`): each annotator's events move to the consensus identity their
    track was associated with (``quality.tracks.TrackConsensus.association``: (annotator, track
    id) -> identity), then vote over time per (label, identity). Events of a track that joined
    no kept identity (a spammer's stray box) drop out of the vote and count against their
    annotator's agreement."""
    mapped = [
        [
            Event(e.label, e.start, e.end, association[(a, e.track)])
            if e.track is not None and association.get((a, e.track)) in kept
            else Event(e.label, e.start, e.end, -1 - k)  # on no kept identity: matches nothing
            for k, e in enumerate(events)
        ]
        for a, events in enumerate(annotations)
    ]
    voters = [[e for e in m if e.track is not None and e.track >= 0] for m in mapped]
    events, _, _ = vote_intervals(voters, weights, frame_start=frame_start, frame_end=frame_end)
    per = np.array([panoptic_quality(events, m, threshold=tiou_threshold) for m in mapped])
    return events, per


def join_events(events: Sequence[Event]) -> list[Event]:
    """Events of one key (label, track) that share or touch a frame joined into one: the same
    event seen by two segments of a video (track segments overlap; event segments meet)."""
    out: list[Event] = []
    last: dict[tuple[str, int | None], int] = {}
    for e in sorted(
        events, key=lambda e: (e.label, e.track if e.track is not None else -1, e.start)
    ):
        k = last.get(e.key)
        if k is not None and e.start <= out[k].end + 1:
            out[k] = Event(e.label, out[k].start, max(out[k].end, e.end), e.track)
        else:
            last[e.key] = len(out)
            out.append(e)
    return sorted(out, key=lambda e: (e.start, e.end, e.label))
