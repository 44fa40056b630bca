"""Fraud signals among the submissions of one microtask. Pure.

- ``too_fast``: work time under ``speed_ratio`` (a quarter) of the median of the peers on the
  same microtask (at least two peers with a time).
- ``empty``: no boxes on frames where a majority of the peers found objects, on at least half of
  those frames.
- ``identical``: exactly the same non-empty shapes as an earlier submission of another worker
  (coordinates rounded to a pixel); the later one is flagged, naming the earlier.

Each signal carries its evidence, for an admin to judge; none acts on its own.

One more kind is raised by the claim path, not computed here: ``inflated_time``, a worker
reporting more active time than their wall-clock time allows (``tasks.crediting``; the excess is
never credited, so never paid; the flag says someone tried). And ``blind_accept``, a worker who
leaves model proposals unchanged far more often than the proposals are right, is decided by
:func:`quality.assist.blind_accept_test` over the worker's history, not over one microtask.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .boxes import Annotation

TOO_FAST = "too_fast"
EMPTY = "empty"
IDENTICAL = "identical"
INFLATED_TIME = "inflated_time"
# Accepting model proposals unchanged far more often than they are right (``quality.assist``).
BLIND_ACCEPT = "blind_accept"


@dataclass(frozen=True)
class SubmissionView:
    key: int  # the submission (or assignment) id
    worker: int
    annotation: Annotation
    seconds: float | None = None
    order: float = 0.0  # submission time as a sortable number


@dataclass(frozen=True)
class Signal:
    key: int
    worker: int
    kind: str
    evidence: dict = field(default_factory=dict)


def signature(annotation: Annotation) -> str:
    """A fingerprint of the shapes, stable to sub-pixel noise and frame order."""
    h = hashlib.sha256()
    for f in sorted(annotation):
        fb = annotation[f]
        boxes = np.round(fb.boxes).astype(np.int64)
        order = np.lexsort(boxes.T[::-1]) if len(fb) else np.zeros(0, np.int64)
        h.update(str(int(f)).encode())
        h.update(boxes[order].tobytes())
        h.update(fb.labels[order].astype(np.int64).tobytes())
    return h.hexdigest()


def fraud_signals(
    submissions: Sequence[SubmissionView],
    *,
    speed_ratio: float = 0.25,
    min_peers: int = 2,
    empty_share: float = 0.5,
) -> list[Signal]:
    out: list[Signal] = []
    # Too fast.
    times = {s.key: s.seconds for s in submissions if s.seconds is not None}
    for s in submissions:
        if s.seconds is None:
            continue
        peers = [t for k, t in times.items() if k != s.key]
        if len(peers) < min_peers:
            continue
        median = float(np.median(peers))
        if median > 0 and s.seconds < speed_ratio * median:
            out.append(
                Signal(
                    s.key,
                    s.worker,
                    TOO_FAST,
                    {
                        "seconds": round(s.seconds, 1),
                        "peer_median_seconds": round(median, 1),
                        "ratio": round(s.seconds / median, 3),
                    },
                )
            )
    # Empty where peers found objects.
    for s in submissions:
        peers = [p for p in submissions if p.key != s.key]
        if len(peers) < min_peers:
            continue
        frames = sorted({int(f) for p in peers for f in p.annotation})
        busy: list[int] = []
        missed: list[int] = []
        for f in frames:
            found = sum(1 for p in peers if f in p.annotation and len(p.annotation[f]) > 0)
            if 2 * found > len(peers):
                busy.append(f)
                mine = s.annotation.get(f)
                if mine is None or len(mine) == 0:
                    missed.append(f)
        if busy and missed and len(missed) >= empty_share * len(busy):
            out.append(
                Signal(
                    s.key,
                    s.worker,
                    EMPTY,
                    {"empty_frames": missed[:50], "frames_with_objects": len(busy)},
                )
            )
    # Identical to another worker's earlier submission.
    first: dict[str, SubmissionView] = {}
    for s in sorted(submissions, key=lambda x: (x.order, x.key)):
        if not any(len(fb) for fb in s.annotation.values()):
            continue
        sig = signature(s.annotation)
        prior = first.get(sig)
        if prior is not None and prior.worker != s.worker:
            out.append(
                Signal(
                    s.key,
                    s.worker,
                    IDENTICAL,
                    {"identical_to_submission": prior.key, "other_worker": prior.worker},
                )
            )
        else:
            first.setdefault(sig, s)
    return out
