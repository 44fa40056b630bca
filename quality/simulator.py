"""A crowd simulator: workers with profiles annotating from known truth.

Reusable by tests, the demo and the benchmarks. The pure part here turns truth (per-frame boxes
with track ids and classes, e.g. from ``tasks.synthetic``) into what a worker of a given profile
would submit; :mod:`quality.crowd` drives the same workers through the real services.

Profiles:

- ``precise``: small jitter (2 % of the box size), right classes.
- ``sloppy``: large jitter (6 %), now and then a wrong class.
- ``lazy``: skips most small objects (area under 1.5 % of the frame), otherwise precise.
- ``biased``: every box shifted right and down by a fraction of its size.
- ``spammer``: random boxes of random classes, with random ids; fast.
- ``copycat``: hands in an exact copy of another worker's answer; very fast.
- ``clicker``: draws like a precise worker, but accepts every model proposal without looking.

Model-assisted work (:mod:`quality.assist`): a :class:`SimulatedModel` of set accuracy proposes
boxes with confidences, and :func:`verify` is what a worker of a profile does with a proposal —
precise and biased workers check nearly every shape, sloppy ones most, lazy ones some, spammers
and copycats accept everything unchanged — with measured times: checking a shape is faster than
drawing it, and fixing one takes longer the further off it was. :func:`simulate_assisted_run`
runs a job with or without model-assisted routing on the same clips, crowd and seed, priced by
``payments.pricing``.

Categorical answers (classification) follow the same profiles: precise is right 95 % of the time,
sloppy 75 %, lazy answers the most common class half the time, biased confuses each class with the
next, a spammer answers uniformly at random, a copycat copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from payments import pricing
from tasks.synthetic import make_scene

from . import assist
from .boxes import Annotation, FrameBoxes, iou_matrix
from .events import Event

PRECISE = "precise"
SLOPPY = "sloppy"
LAZY = "lazy"
BIASED = "biased"
SPAMMER = "spammer"
COPYCAT = "copycat"
CLICKER = "clicker"
PROFILES = (PRECISE, SLOPPY, LAZY, BIASED, SPAMMER, COPYCAT, CLICKER)


@dataclass(frozen=True)
class Profile:
    name: str
    jitter: float = 0.02  # std of corner noise, as a fraction of box width/height
    shift: float = 0.0  # constant shift right/down, fraction of box size
    small_area: float = 0.0  # boxes below this fraction of the frame area...
    small_miss: float = 0.0  # ...are missed with this probability
    class_accuracy: float = 0.98
    seconds_per_box: float = 4.0
    seconds_per_frame: float = 1.0
    # Verifying a model's proposal (see :func:`verify`): the chance of really looking at a
    # proposed shape, and the IoU with what they see below which they fix it.
    verify_care: float = 0.97
    accept_iou: float = 0.85

    def seconds(self, n_boxes: int, n_frames: int, rng: np.random.Generator) -> float:
        base = self.seconds_per_box * n_boxes + self.seconds_per_frame * n_frames
        return float(base * rng.lognormal(0.0, 0.2))


PROFILE_SETTINGS: dict[str, Profile] = {
    PRECISE: Profile(PRECISE),
    SLOPPY: Profile(
        SLOPPY,
        jitter=0.06,
        class_accuracy=0.85,
        seconds_per_box=2.5,
        verify_care=0.85,
        accept_iou=0.7,
    ),
    LAZY: Profile(LAZY, small_area=0.015, small_miss=0.85, seconds_per_box=2.0, verify_care=0.6),
    BIASED: Profile(BIASED, shift=0.08),
    SPAMMER: Profile(
        SPAMMER,
        class_accuracy=0.0,
        seconds_per_box=0.3,
        seconds_per_frame=0.1,
        verify_care=0.0,
    ),
    COPYCAT: Profile(COPYCAT, seconds_per_box=0.1, seconds_per_frame=0.05, verify_care=0.0),
    # Draws like a precise worker (so passes gold drawn from scratch) but, shown a proposal,
    # accepts it without looking: the fraud model-assisted work invites.
    CLICKER: Profile(CLICKER, verify_care=0.0),
}


@dataclass
class SimulatedWorker:
    """A worker of one profile with its own random stream."""

    name: str
    profile: str
    seed: int = 0

    def __post_init__(self) -> None:
        if self.profile not in PROFILE_SETTINGS:
            raise ValueError(f"unknown profile {self.profile!r}")
        self.rng = np.random.default_rng(self.seed)

    @property
    def settings(self) -> Profile:
        return PROFILE_SETTINGS[self.profile]

    def annotate(
        self,
        truth: Annotation,
        *,
        frame_size: tuple[int, int],
        n_classes: int = 1,
        source: Annotation | None = None,
    ) -> Annotation:
        """What this worker submits for a microtask whose true boxes are ``truth``.

        A copycat needs ``source`` (another worker's answer) and returns a copy of it; without
        one it behaves like a spammer.
        """
        return annotate(
            truth,
            profile=self.profile,
            rng=self.rng,
            frame_size=frame_size,
            n_classes=n_classes,
            source=source,
        )

    def seconds(self, annotation: Annotation) -> float:
        n_boxes = sum(len(fb) for fb in annotation.values())
        return self.settings.seconds(n_boxes, len(annotation), self.rng)

    def label(
        self, truth: Mapping[int, int], *, n_classes: int, source: Mapping[int, int] | None = None
    ) -> dict[int, int]:
        return label_items(
            truth, profile=self.profile, rng=self.rng, n_classes=n_classes, source=source
        )


def _clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    # Keep a positive size after clipping.
    out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 1)
    out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 1)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    out[:, 0] = np.minimum(out[:, 0], out[:, 2] - 1)
    out[:, 1] = np.minimum(out[:, 1], out[:, 3] - 1)
    return out


def random_boxes(n: int, *, frame_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``n`` boxes of random place and size (5-30 % of each side) inside the frame."""
    width, height = frame_size
    bw = rng.uniform(0.05, 0.3, n) * width
    bh = rng.uniform(0.05, 0.3, n) * height
    x1 = rng.uniform(0, 1, n) * (width - bw)
    y1 = rng.uniform(0, 1, n) * (height - bh)
    return np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)


def annotate(
    truth: Annotation,
    *,
    profile: str,
    rng: np.random.Generator,
    frame_size: tuple[int, int],
    n_classes: int = 1,
    source: Annotation | None = None,
) -> Annotation:
    """Pure: the annotation a worker of ``profile`` produces from ``truth``."""
    width, height = frame_size
    if profile == COPYCAT and source is not None:
        return {
            f: FrameBoxes(fb.boxes.copy(), fb.labels.copy(), fb.ids.copy())
            for f, fb in source.items()
        }
    p = PROFILE_SETTINGS[profile]
    out: dict[int, FrameBoxes] = {}
    if profile in (SPAMMER, COPYCAT):
        # Random boxes, random classes, and ids that change from frame to frame.
        n_typical = max(1, int(np.rint(np.mean([len(fb) for fb in truth.values()] or [1]))))
        next_id = 1000
        for f in sorted(truth):
            n = int(rng.integers(0, n_typical + 2))
            boxes = random_boxes(n, frame_size=frame_size, rng=rng)
            labels = rng.integers(0, max(n_classes, 1), n)
            ids = np.arange(next_id, next_id + n)
            next_id += n
            out[f] = FrameBoxes(boxes, labels, ids)
        return out
    # Per-track constants (shift, whether a small object is skipped) stay the same over frames, as
    # a real annotator's habits do; jitter is drawn per frame.
    skip: dict[int, bool] = {}
    for f in sorted(truth):
        fb = truth[f]
        if len(fb) == 0:
            out[f] = FrameBoxes.empty()
            continue
        boxes = fb.boxes.astype(np.float64).copy()
        size = np.stack(
            [boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1
        )  # (n, 4): w, h, w, h
        boxes += rng.normal(0.0, p.jitter, boxes.shape) * size
        if p.shift:
            boxes += p.shift * size[:, [0, 1, 0, 1]]
        keep = np.ones(len(fb), dtype=bool)
        if p.small_area:
            area = (fb.boxes[:, 2] - fb.boxes[:, 0]) * (fb.boxes[:, 3] - fb.boxes[:, 1])
            small = area < p.small_area * width * height
            for i in np.flatnonzero(small).tolist():
                tid = int(fb.ids[i])
                if tid not in skip:
                    skip[tid] = bool(rng.random() < p.small_miss)
                keep[i] = not skip[tid]
        labels = fb.labels.copy()
        if n_classes > 1 and p.class_accuracy < 1:
            wrong = rng.random(len(fb)) > p.class_accuracy
            labels[wrong] = (
                labels[wrong] + rng.integers(1, n_classes, int(wrong.sum()))
            ) % n_classes
        boxes = _clip(boxes, width, height)
        out[f] = FrameBoxes(boxes[keep], labels[keep], fb.ids[keep].copy())
    return out


CLASS_ACCURACY = {PRECISE: 0.95, SLOPPY: 0.75, LAZY: 0.9, BIASED: 0.9, CLICKER: 0.95}


def label_items(
    truth: Mapping[int, int],
    *,
    profile: str,
    rng: np.random.Generator,
    n_classes: int,
    source: Mapping[int, int] | None = None,
) -> dict[int, int]:
    """Pure: the class a worker of ``profile`` gives each item (frame) whose true class is known."""
    items = sorted(truth)
    if profile == COPYCAT and source is not None:
        return {i: int(source[i]) for i in items if i in source}
    true = np.array([truth[i] for i in items], dtype=np.int64)
    n = len(items)
    if profile in (SPAMMER, COPYCAT):
        given = rng.integers(0, n_classes, n)
    else:
        given = true.copy()
        wrong = rng.random(n) > CLASS_ACCURACY[profile]
        if profile == BIASED:
            given[wrong] = (true[wrong] + 1) % n_classes
        else:
            given[wrong] = (true[wrong] + rng.integers(1, n_classes, int(wrong.sum()))) % n_classes
        if profile == LAZY:
            lazy = rng.random(n) < 0.5
            given[lazy] = 0
    return {i: int(g) for i, g in zip(items, given, strict=True)}


def make_crowd(counts: Mapping[str, int], *, seed: int = 0) -> list[SimulatedWorker]:
    """Workers by profile: ``make_crowd({"precise": 8, "spammer": 2})``."""
    crowd: list[SimulatedWorker] = []
    k = 0
    for profile, n in counts.items():
        for _ in range(n):
            crowd.append(SimulatedWorker(f"{profile}-{k}", profile, seed=seed * 10_000 + k))
            k += 1
    return crowd


def categorical_crowd(
    *,
    n_tasks: int,
    n_classes: int,
    workers: list[SimulatedWorker],
    labels_per_task: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A categorical labelling run, vectorised: (tasks, workers, labels, truth) arrays.

    Every task gets ``labels_per_task`` distinct workers at random. Each worker's answers follow
    its profile's confusion (see :func:`label_items`); copycats copy the first worker on the task.
    """
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    n_w = len(workers)
    k = labels_per_task
    # Distinct workers per task: argsort of random keys, first k columns, in chunks (memory).
    chosen = np.empty((n_tasks, k), dtype=np.int64)
    chunk = 100_000
    for s in range(0, n_tasks, chunk):
        e = min(s + chunk, n_tasks)
        chosen[s:e] = np.argpartition(rng.random((e - s, n_w)), k - 1, axis=1)[:, :k]
    tasks = np.repeat(np.arange(n_tasks), k)
    who = chosen.ravel()
    true = truth[tasks]
    profile = np.array([w.profile for w in workers])[who]
    given = true.copy()
    u = rng.random(tasks.size)
    off = rng.integers(1, max(n_classes, 2), tasks.size)
    for name, acc in CLASS_ACCURACY.items():
        sel = (profile == name) & (u > acc)
        if name == BIASED:
            given[sel] = (true[sel] + 1) % n_classes
        else:
            given[sel] = (true[sel] + off[sel]) % n_classes
    lazy = (profile == LAZY) & (rng.random(tasks.size) < 0.5)
    given[lazy] = 0
    spam = profile == SPAMMER
    given[spam] = rng.integers(0, n_classes, int(spam.sum()))
    copy = (profile == COPYCAT).reshape(n_tasks, k)
    g2 = given.reshape(n_tasks, k)
    first = g2[:, :1]
    g2[:] = np.where(copy, first, g2)
    # A copycat in the first column has nobody to copy: it answers at random.
    lone = copy[:, 0]
    g2[lone, 0] = rng.integers(0, n_classes, int(lone.sum()))
    return tasks, who, g2.ravel(), truth


# --- A whole crowd run, on the pure modules -----------------------------------------------------


@dataclass
class RunResult:
    """What a simulated run produced, measured against the truth."""

    task_iou: list[float]  # per regular microtask: mean IoU of the result vs truth (misses = 0)
    machine_iou: list[float]  # the same for the consensus, before any review
    replicas: list[int]  # per regular microtask: annotations used (a review counts as one)
    reviewed: int  # microtasks sent to review
    suspended_after_gold: dict[str, int]  # worker -> gold microtasks done when suspended
    gold_done: dict[str, int]
    trust: dict[str, float]

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.task_iou)) if self.task_iou else 0.0

    @property
    def mean_replicas(self) -> float:
        return float(np.mean(self.replicas)) if self.replicas else 0.0


def simulate_run(
    *,
    crowd: list[SimulatedWorker],
    truths: list[Annotation],
    gold_truths: list[Annotation],
    frame_size: tuple[int, int],
    n_classes: int = 2,
    overlap_min: int = 3,
    overlap_max: int = 3,
    agreement_threshold: float = 0.7,
    min_confidence: float = 0.0,
    gold_rate: float = 0.2,
    gold_pass_threshold: float = 0.7,
    iou_threshold: float = 0.5,
    seed: int = 0,
) -> RunResult:
    """Workers claim at random; gold is mixed in at ``gold_rate``; trust, suspension, consensus
    with trust weights and dynamic overlap run as the services run them, on the pure modules.

    Microtasks are worked in order, each until its consensus is accepted or sent to review (a
    reviewed microtask's result is taken as right: a person fixed it).
    """
    from datetime import UTC, datetime, timedelta

    from .consensus import box_consensus
    from .policy import OverlapAction, decide_overlap
    from .scoring import score_boxes
    from .trust import AGREEMENT, GOLD, Evidence, should_suspend, trust_estimate, vote_weight

    rng = np.random.default_rng(seed)
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    evidence: dict[str, list[Evidence]] = {w.name: [] for w in crowd}
    gold_done = {w.name: 0 for w in crowd}
    gold_seen: dict[str, set[int]] = {w.name: set() for w in crowd}
    suspended: dict[str, int] = {}
    last_answer: Annotation | None = None

    def trust(name: str) -> float:
        return trust_estimate(evidence.get(name, []), now=clock).trust

    def active() -> list[SimulatedWorker]:
        return [w for w in crowd if w.name not in suspended]

    def do_gold(worker: SimulatedWorker) -> None:
        nonlocal clock
        options = [g for g in range(len(gold_truths)) if g not in gold_seen[worker.name]]
        if not options:
            return
        g = int(rng.choice(options))
        gold_seen[worker.name].add(g)
        ann = worker.annotate(
            gold_truths[g], frame_size=frame_size, n_classes=n_classes, source=last_answer
        )
        clock += timedelta(minutes=1)
        s = score_boxes(gold_truths[g], ann, iou_threshold=iou_threshold)
        evidence[worker.name].append(Evidence(GOLD, s.score, clock))
        gold_done[worker.name] += 1
        if should_suspend(trust_estimate(evidence[worker.name], now=clock)):
            suspended[worker.name] = gold_done[worker.name]

    task_iou: list[float] = []
    machine_iou: list[float] = []
    replicas: list[int] = []
    reviewed = 0
    reviewer = SimulatedWorker("reviewer", PRECISE, seed=seed + 999)
    for truth in truths:
        target = overlap_min
        done: list[tuple[SimulatedWorker, Annotation]] = []
        while True:
            pool = [w for w in active() if w.name not in {d[0].name for d in done}]
            if not pool:
                break
            worker = pool[int(rng.integers(len(pool)))]
            if rng.random() < gold_rate:
                do_gold(worker)
                continue
            source = done[-1][1] if done else last_answer
            ann = worker.annotate(truth, frame_size=frame_size, n_classes=n_classes, source=source)
            last_answer = ann
            clock += timedelta(minutes=1)
            done.append((worker, ann))
            if len(done) < target:
                continue
            # Work from workers suspended meanwhile no longer counts.
            done = [d for d in done if d[0].name not in suspended]
            if len(done) < target:
                continue
            weights = [vote_weight(trust(d[0].name)) for d in done]
            c = box_consensus([d[1] for d in done], weights, iou_threshold=iou_threshold)
            decision = decide_overlap(
                submitted=len(done),
                replica_target=target,
                overlap_max=overlap_max,
                agreement=c.agreement,
                agreement_threshold=agreement_threshold,
                confidence=float(
                    np.sum(np.asarray(weights)[c.annotator_agreement >= agreement_threshold])
                ),
                min_confidence=min_confidence,
            )
            if decision.action == OverlapAction.ADD_REPLICA:
                target = decision.replica_target
                continue
            for (w, _), agreement in zip(done, c.annotator_agreement, strict=True):
                evidence[w.name].append(Evidence(AGREEMENT, float(agreement), clock))
                if w.name not in suspended and should_suspend(
                    trust_estimate(evidence[w.name], now=clock)
                ):
                    suspended[w.name] = gold_done[w.name]
            s = score_boxes(truth, c.frames, iou_threshold=iou_threshold)
            machine_iou.append(s.mean_iou * s.tp / max(s.tp + s.fn, 1))
            result = c.frames
            if decision.action == OverlapAction.REVIEW:
                # A reviewer (a careful person) draws the answer; it costs one more annotation.
                reviewed += 1
                result = reviewer.annotate(truth, frame_size=frame_size, n_classes=n_classes)
            s = score_boxes(truth, result, iou_threshold=iou_threshold)
            task_iou.append(s.mean_iou * s.tp / max(s.tp + s.fn, 1))
            replicas.append(len(done) + (decision.action == OverlapAction.REVIEW))
            break
    return RunResult(
        task_iou=task_iou,
        machine_iou=machine_iou,
        replicas=replicas,
        reviewed=reviewed,
        suspended_after_gold=suspended,
        gold_done=gold_done,
        trust={w.name: trust(w.name) for w in crowd},
    )


def scene_truth(scene, frames, classes=None) -> dict[int, FrameBoxes]:
    """Per-frame truth of a ``tasks.synthetic`` scene as boxes with track ids and class indices.

    Objects outside the picture (or hidden entirely) are not in the truth: nobody can draw them.
    """
    classes = list(classes if classes is not None else scene.classes)
    index = {c: i for i, c in enumerate(classes)}
    out: dict[int, FrameBoxes] = {}
    for f in frames:
        visible = [b for b in scene.boxes(int(f)) if not b.outside and b.w > 0 and b.h > 0]
        out[int(f)] = FrameBoxes.make(
            [[b.x, b.y, b.x + b.w, b.y + b.h] for b in visible],
            [index.get(b.cls, -1) for b in visible],
            [b.track_id for b in visible],
        )
    return out


# --- events over time --------------------------------------------------------------------------
# Per profile: (edge jitter as a fraction of the event's length, chance of missing an event,
# chance of the wrong label). A spammer marks random intervals of random labels; a copycat
# without a source behaves like one.
EVENT_NOISE: dict[str, tuple[float, float, float]] = {
    PRECISE: (0.04, 0.02, 0.01),
    SLOPPY: (0.12, 0.1, 0.08),
    LAZY: (0.04, 0.4, 0.01),
    BIASED: (0.04, 0.02, 0.01),  # plus every edge late by a tenth of the event
}


def random_events(
    *,
    frame_start: int,
    frame_end: int,
    labels: Sequence[str],
    n: int,
    rng: np.random.Generator,
    min_length: int = 15,
    max_length: int = 90,
) -> list[Event]:
    """Up to ``n`` true events on ``[frame_start, frame_end]``, never two of a label overlapping
    or touching (each label's timeline cut into ``n`` slots, one event inside each)."""
    out: list[Event] = []
    span = frame_end - frame_start + 1
    for _ in range(n):
        label = str(labels[int(rng.integers(len(labels)))])
        length = int(rng.integers(min_length, max_length + 1))
        length = min(length, span)
        start = frame_start + int(rng.integers(0, span - length + 1))
        candidate = Event(label, start, start + length - 1)
        if all(
            e.label != label or candidate.end + 1 < e.start or e.end + 1 < candidate.start
            for e in out
        ):
            out.append(candidate)
    return sorted(out, key=lambda e: (e.start, e.label))


def annotate_events(
    truth: Sequence[Event],
    *,
    profile: str,
    rng: np.random.Generator,
    frame_start: int,
    frame_end: int,
    labels: Sequence[str],
    source: Sequence[Event] | None = None,
) -> list[Event]:
    """What a worker of ``profile`` marks for a microtask whose true events are ``truth``."""
    if profile == COPYCAT and source is not None:
        return list(source)
    if profile in (SPAMMER, COPYCAT):
        return random_events(
            frame_start=frame_start,
            frame_end=frame_end,
            labels=labels,
            n=int(rng.integers(0, max(2, len(truth) + 2))),
            rng=rng,
            min_length=3,
        )
    jitter, miss, confuse = EVENT_NOISE[profile]
    out: list[Event] = []
    for e in truth:
        if rng.random() < miss:
            continue
        label = e.label
        if rng.random() < confuse and len(labels) > 1:
            label = str(labels[(list(labels).index(e.label) + 1) % len(labels)])
        sd = max(0.5, jitter * e.length)
        lag = round(0.1 * e.length) if profile == BIASED else 0
        start = round(e.start + lag + rng.normal(0, sd))
        end = round(e.end + lag + rng.normal(0, sd))
        start, end = max(frame_start, start), min(frame_end, end)
        if end < start:
            continue
        candidate = Event(label, start, end)
        if any(o.label == label and o.start <= end and start <= o.end for o in out):
            continue  # a worker's own events of one label never overlap (validation refuses it)
        out.append(candidate)
    return out


# --- Model-assisted work ------------------------------------------------------------------------

FALSE_ALARM_ID = 100_000  # track ids of a model's false alarms start here


@dataclass(frozen=True)
class Proposal:
    """A model's proposal for one microtask: boxes per frame (ids are the true track ids, or
    ``FALSE_ALARM_ID`` upwards for false alarms) and a confidence per proposed track."""

    annotation: Annotation
    confidence: dict[int, float]  # per proposed track id

    @property
    def shapes(self) -> int:
        return sum(len(fb) for fb in self.annotation.values())


@dataclass
class SimulatedModel:
    """A proposal source of set ``accuracy``: each true object is proposed tightly (corner noise
    ``jitter`` of its size) with that probability; otherwise it is proposed misplaced (half the
    time) or missed, and now and then a false alarm appears. Confidence is calibrated-ish: right
    proposals draw from Beta(8, 1.5) (mean 0.84), wrong ones from Beta(2, 3) (mean 0.4), so a
    wrong proposal is usually, not always, the less confident."""

    accuracy: float
    seed: int = 0
    jitter: float = 0.015

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def propose(self, truth: Annotation, *, frame_size: tuple[int, int]) -> Proposal:
        rng = self.rng
        tracks: dict[int, str] = {}
        offset: dict[int, np.ndarray] = {}
        confidence: dict[int, float] = {}
        for f in sorted(truth):
            for tid in truth[f].ids.tolist():
                if tid in tracks:
                    continue
                if rng.random() < self.accuracy:
                    tracks[tid] = "right"
                    confidence[tid] = float(rng.beta(8, 1.5))
                else:
                    tracks[tid] = "misplaced" if rng.random() < 0.5 else "missed"
                    if tracks[tid] == "misplaced":
                        # Off by 60-100 % of the box size in a random direction: IoU < 0.5.
                        angle = rng.uniform(0, 2 * np.pi)
                        offset[tid] = rng.uniform(0.6, 1.0) * np.array(
                            [np.cos(angle), np.sin(angle)]
                        )
                        confidence[tid] = float(rng.beta(2, 3))
        alarm = None
        if rng.random() < 0.5 * (1 - self.accuracy):
            alarm = random_boxes(1, frame_size=frame_size, rng=rng)[0]
            confidence[FALSE_ALARM_ID] = float(rng.beta(2, 3))
        out: dict[int, FrameBoxes] = {}
        width, height = frame_size
        for f in sorted(truth):
            fb = truth[f]
            keep = np.array([tracks[t] != "missed" for t in fb.ids.tolist()], dtype=bool)
            boxes = fb.boxes[keep].astype(np.float64).copy()
            ids = fb.ids[keep].copy()
            labels = fb.labels[keep].copy()
            if len(boxes):
                size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
                boxes += rng.normal(0.0, self.jitter, boxes.shape) * size
                for i, t in enumerate(ids.tolist()):
                    if t in offset:
                        boxes[i] += np.tile(offset[t] * size[i, :2], 2)
                boxes = _clip(boxes, width, height)
            if alarm is not None:
                boxes = np.vstack([boxes, alarm[None, :]])
                ids = np.append(ids, FALSE_ALARM_ID)
                labels = np.append(labels, 0)
            out[f] = FrameBoxes(boxes, labels, ids)
        return Proposal(out, confidence)


@dataclass(frozen=True)
class Verified:
    """What a verifier handed in, with per shape the provenance the workspace would record."""

    annotation: Annotation
    provenance: list[dict]  # one item per submitted shape taken from the proposal
    proposed: int  # proposed shapes (over all frames)
    submitted: int  # submitted shapes
    seconds: float


def verify(
    truth: Annotation,
    proposal: Proposal,
    *,
    profile: str,
    rng: np.random.Generator,
    frame_size: tuple[int, int],
    proposal_id: int = 0,
) -> Verified:
    """Pure: what a worker of ``profile`` submits when shown ``proposal`` for ``truth``.

    Per proposed track the worker looks with probability ``verify_care``; looking, they keep a
    box whose IoU with the object is at least ``accept_iou``, redraw a looser one (with their own
    jitter and shift), and delete a false alarm; not looking, they accept it. Per missed object
    they look with the same care and draw it. Time: ``0.3 x seconds_per_box`` per shape checked
    (0.05 x when not looking) plus ``0.6 x seconds_per_frame`` per frame; a redraw costs
    ``seconds_per_box x (0.4 + 0.6 x moved)`` (further off, longer), an added box a full
    ``seconds_per_box``, a deletion ``0.25 x seconds_per_box``.
    """
    p = PROFILE_SETTINGS[profile]
    width, height = frame_size
    proposed_ids = {t for fb in proposal.annotation.values() for t in fb.ids.tolist()}
    true_ids = {t for fb in truth.values() for t in fb.ids.tolist()}
    looks = {t: bool(rng.random() < p.verify_care) for t in sorted(proposed_ids | true_ids)}
    seconds = 0.6 * p.seconds_per_frame * len(truth)
    frames: dict[int, FrameBoxes] = {}
    provenance: list[dict] = []
    proposed = submitted = 0
    own = PROFILE_SETTINGS[profile]
    for f in sorted(truth):
        tb = truth[f]
        pb = proposal.annotation.get(f, FrameBoxes.empty())
        true_at = {int(t): i for i, t in enumerate(tb.ids.tolist())}
        boxes: list[np.ndarray] = []
        labels: list[int] = []
        ids: list[int] = []
        for j in range(len(pb)):
            k = proposed  # the shape's index in the whole proposal
            proposed += 1
            t = int(pb.ids[j])
            box = pb.boxes[j]
            i = true_at.get(t)
            if looks[t]:
                seconds += 0.3 * p.seconds_per_box
                if i is None:  # a false alarm: deleted
                    seconds += 0.25 * p.seconds_per_box
                    continue
            else:
                seconds += 0.05 * p.seconds_per_box
            keep = not looks[t] or iou_matrix(box[None], tb.boxes[i][None])[0, 0] >= p.accept_iou
            moved = 0.0
            if keep:
                labels.append(int(pb.labels[j]))
            else:
                new = _redraw(tb.boxes[i], own, rng, width, height)
                moved = 1.0 - float(iou_matrix(new[None], box[None])[0, 0])
                seconds += p.seconds_per_box * (0.4 + 0.6 * moved)
                box = new
                labels.append(int(tb.labels[i]))
            boxes.append(box)
            ids.append(t)
            provenance.append(
                {
                    "proposal": proposal_id,
                    "index": k,
                    "source": "model",
                    "moved": round(moved, 4),
                    "unchanged": keep,
                }
            )
        for t, i in true_at.items():
            if t in proposed_ids or not looks[t]:
                continue
            seconds += p.seconds_per_box
            boxes.append(_redraw(tb.boxes[i], own, rng, width, height))
            labels.append(int(tb.labels[i]))
            ids.append(t)
        submitted += len(boxes)
        frames[f] = FrameBoxes.make(boxes if boxes else np.zeros((0, 4)), labels, ids)
    return Verified(
        frames, provenance, proposed, submitted, float(seconds * rng.lognormal(0.0, 0.2))
    )


def _redraw(
    box: np.ndarray, p: Profile, rng: np.random.Generator, width: int, height: int
) -> np.ndarray:
    size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
    out = box + rng.normal(0.0, p.jitter, 4) * size + p.shift * size[[0, 1, 0, 1]]
    return _clip(out[None].astype(np.float64), width, height)[0]


def clip_truths(
    n: int,
    *,
    seed: int,
    n_objects: int = 4,
    n_frames: int = 5,
    frame_size: tuple[int, int] = (640, 360),
    motion: float = 2.0,
    classes: tuple[str, ...] = ("car", "person"),
) -> list[dict[int, FrameBoxes]]:
    """``n`` microtasks' truth from generated scenes (``tasks.synthetic``), one scene each."""
    out = []
    for k in range(n):
        scene = make_scene(
            seed=seed * 100_000 + k,
            width=frame_size[0],
            height=frame_size[1],
            frames=n_frames,
            n_objects=n_objects,
            motion=motion,
            classes=classes,
        )
        out.append(scene_truth(scene, range(n_frames), classes))
    return out


@dataclass
class AssistRunResult:
    """One arm of :func:`simulate_assisted_run`, measured against the truth and priced."""

    arm: str
    task_iou: list[float]  # per accepted regular microtask (misses count 0)
    cost: int  # minor units the requester pays: pay + platform fee, gold and reviews included
    pay: int
    paid_seconds: float
    replicas: int  # paid replicas of regular microtasks (reviews included)
    gold_items: int
    reviewed: int
    routed: int  # microtasks sent to verify-and-correct
    escalated: int
    audits: int  # confident microtasks kept on full annotation by the audit draw
    topups: int  # paid items the fair-pay floor topped up
    min_hourly: int | None  # the lowest effective hourly pay of any paid item, on measured time
    flags: dict[str, dict]
    suspended: list[str]  # by gold, agreement or a blind-accept flag
    source: assist.SourceAccuracy | None  # at the end of the run
    verify_ratio: float | None  # the job's estimate of verify time over unassisted time
    measured_verify_ratio: float | None

    @property
    def accepted(self) -> int:
        return len(self.task_iou)

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.task_iou)) if self.task_iou else 0.0

    @property
    def cost_per_accepted(self) -> float:
        return self.cost / self.accepted if self.accepted else float("inf")

    @property
    def hourly(self) -> int | None:
        return pricing.effective_hourly(pay=self.pay, seconds=self.paid_seconds)


def simulate_assisted_run(
    *,
    crowd_counts: Mapping[str, int],
    truths: list[Annotation],
    gold_truths: list[Annotation],
    frame_size: tuple[int, int],
    model_accuracy: float | None,
    bar: float = 0.9,
    route_policy: assist.RoutePolicy = assist.DEFAULT_POLICY,
    pricing_policy: pricing.PricingPolicyData | None = None,
    overlap_min: int = 3,
    overlap_max: int = 5,
    agreement_threshold: float = 0.7,
    gold_rate: float = 0.1,
    iou_threshold: float = 0.5,
    seed: int = 0,
    arm: str = "",
) -> AssistRunResult:
    """A job worked by a simulated crowd, with model-assisted routing when ``model_accuracy`` is
    set (a :class:`SimulatedModel` proposes on every microtask and gold) and without it when None.

    The same ``crowd_counts``, clips and ``seed`` give the same crowd, the same order of claims
    and the same draws until routing first sends a microtask to verify-and-correct: a model that
    never earns routing leaves the run exactly as without it. Rules are the real ones:
    ``quality.assist`` (source accuracy, routing, verify outcome, accept discount, blind-accept
    test, verify time and price), ``quality.consensus``, ``quality.policy.decide_overlap``,
    ``quality.trust``, and ``payments.pricing`` for every price and pay (fair-pay top-up on each
    item's measured time through ``split_pay``). Flagged blind acceptors are treated as
    suspended (what an admin would likely decide). Agreement evidence for trust comes only from
    replicas drawn without a proposal: agreeing with a consensus one's own accept made says little.
    """
    from datetime import UTC, datetime, timedelta

    from .consensus import box_consensus
    from .policy import OverlapAction, decide_overlap
    from .scoring import score_boxes
    from .trust import AGREEMENT, GOLD, Evidence, should_suspend, trust_estimate, vote_weight

    policy = pricing_policy or pricing.PricingPolicyData()
    crowd = make_crowd(crowd_counts, seed=seed)
    rng = np.random.default_rng(seed)
    model = SimulatedModel(model_accuracy, seed=seed + 7) if model_accuracy is not None else None
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    evidence: dict[str, list[Evidence]] = {w.name: [] for w in crowd}
    records: dict[str, assist.VerifierRecord] = {w.name: assist.VerifierRecord() for w in crowd}
    accepts: dict[str, list[int]] = {w.name: [0, 0] for w in crowd}  # unchanged, proposed
    gold_seen: dict[str, set[int]] = {w.name: set() for w in crowd}
    suspended: set[str] = set()
    flags: dict[str, dict] = {}
    comparisons: list[assist.Comparison] = []
    full_pairs: list[tuple[float, float]] = []  # (measured, estimated) of full annotation
    # (worker, measured verify seconds over the unassisted estimate)
    verify_ratios: list[tuple[str, float]] = []
    reviewer = SimulatedWorker("reviewer", PRECISE, seed=seed + 999)
    gold_proposals = [model.propose(g, frame_size=frame_size) for g in gold_truths] if model else []
    totals = {"cost": 0, "pay": 0, "seconds": 0.0, "topups": 0}
    hourly: list[int] = []
    counts = {"replicas": 0, "gold": 0, "reviewed": 0, "routed": 0, "escalated": 0, "audits": 0}

    def trust(name: str) -> float:
        return trust_estimate(evidence.get(name, []), now=clock).trust

    def source() -> assist.SourceAccuracy | None:
        if model is None:
            return None
        return assist.source_accuracy(comparisons, min_confidence=route_policy.confidence_threshold)

    def features(truth: Annotation) -> pricing.TaskFeatures:
        objects = max((len(fb) for fb in truth.values()), default=1)
        return pricing.TaskFeatures("bbox", frames=len(truth), objects=max(1, objects))

    def full_price(truth: Annotation) -> pricing.TaskPrice:
        calibration = pricing.calibration_factor(full_pairs)
        return pricing.price_task(features(truth), policy=policy, time_factor=calibration)

    def crowd_rate() -> float | None:
        seen = sum(r.seen for n, r in records.items() if n not in suspended)
        fixed = sum(r.corrected for n, r in records.items() if n not in suspended)
        return fixed / seen if seen else None

    def verify_ratio() -> float:
        # Only the work of workers in good standing calibrates: a clicker's seconds would
        # price honest verification below its time (the floor would catch it, at a cost).
        return assist.verify_seconds(
            [r for w, r in verify_ratios if w not in suspended], unassisted_seconds=1.0
        )

    def pay(worker: str, price: int, seconds: float) -> None:
        split = pricing.split_pay(
            reserved=10**12,
            escrow_available=0,
            price=price,
            multiplier_bps=pricing.multiplier_for(trust(worker), policy=policy),
            credit=1.0,
            floor_minimum=pricing.floor_pay(seconds=seconds, hourly=policy.floor_hourly),
            policy=policy,
        )
        totals["cost"] += split.pay + split.fee
        totals["pay"] += split.pay
        totals["seconds"] += seconds
        totals["topups"] += split.topup > 0
        rate = pricing.effective_hourly(pay=split.pay, seconds=seconds)
        if rate is not None:
            hourly.append(rate)

    def draw(worker: SimulatedWorker, truth: Annotation) -> Annotation:
        ann = worker.annotate(truth, frame_size=frame_size, n_classes=2)
        seconds = worker.seconds(ann)
        price = full_price(truth)
        full_pairs.append(
            (seconds, price.expected_seconds / pricing.calibration_factor(full_pairs))
        )
        pay(worker.name, price.price, seconds)
        return ann

    def verify_work(
        worker: SimulatedWorker, truth: Annotation, prop: Proposal, *, gold: bool
    ) -> Verified:
        v = verify(truth, prop, profile=worker.profile, rng=worker.rng, frame_size=frame_size)
        full = full_price(truth)
        ratio = verify_ratio()
        price = assist.verify_price(
            features(truth),
            policy=policy,
            seconds=ratio * full.expected_seconds,
            calibration=pricing.calibration_factor(full_pairs),
        )
        pay(worker.name, price.price, v.seconds)
        verify_ratios.append((worker.name, v.seconds / full.expected_seconds))
        unchanged = {p["index"] for p in v.provenance if p["unchanged"]}
        wrong = _wrong_shapes(prop, truth, iou_threshold) if gold else set()
        rec = records[worker.name]
        # Counted as the source's accuracy is: shapes proposed or added, and of them the ones
        # the verifier changed, deleted or added.
        added = v.submitted - len(v.provenance)
        regular = 0 if gold else 1  # gold (with its planted error) measures ``q`` directly
        records[worker.name] = assist.VerifierRecord(
            seen=rec.seen + regular * (v.proposed + added),
            corrected=rec.corrected + regular * (v.proposed - len(unchanged) + added),
            wrong_seen=rec.wrong_seen + len(wrong),
            wrong_fixed=rec.wrong_fixed + len(wrong - unchanged),
        )
        acc = accepts[worker.name]
        acc[0] += len(unchanged)
        acc[1] += v.proposed
        src = source()
        if src is not None and worker.name not in suspended:
            peers = [a for n, a in accepts.items() if n != worker.name and n not in suspended]
            peer_seen = sum(a[1] for a in peers)
            test = assist.blind_accept_test(
                accepted_unchanged=acc[0],
                proposed=acc[1],
                source=src,
                peer_rate=sum(a[0] for a in peers) / peer_seen if peer_seen else None,
            )
            if test.flagged:
                flags[worker.name] = test.evidence
                suspended.add(worker.name)
        return v

    def route_for(prop: Proposal | None, key: object) -> assist.RouteDecision:
        conf = assist.proposal_confidence(prop.confidence.values()) if prop else 0.0
        return assist.decide_route(
            source=source(),
            bar=bar,
            confidence=conf,
            overlap_min=overlap_min,
            audit_key=key,
            policy=route_policy,
        )

    def do_gold(worker: SimulatedWorker) -> None:
        nonlocal clock
        options = [g for g in range(len(gold_truths)) if g not in gold_seen[worker.name]]
        if not options:
            return
        g = int(rng.choice(options))
        gold_seen[worker.name].add(g)
        truth = gold_truths[g]
        prop = gold_proposals[g] if model else None
        counts["gold"] += 1
        clock += timedelta(minutes=1)
        # Gold is served as the microtask it poses as would be.
        if prop is not None and route_for(prop, ("gold", g, worker.name)).route == "verify":
            shown = plant_error(prop, truth, rng=rng, frame_size=frame_size)
            ann = verify_work(worker, truth, shown, gold=True).annotation
        else:
            ann = draw(worker, truth)
        if prop is not None:  # the model never saw gold: scored on every one
            comparisons.append(
                assist.compare(
                    prop.annotation,
                    truth,
                    kind=GOLD,
                    confidence=assist.proposal_confidence(prop.confidence.values()),
                    iou_threshold=iou_threshold,
                )
            )
        s = score_boxes(truth, ann, iou_threshold=iou_threshold)
        evidence[worker.name].append(Evidence(GOLD, s.score, clock))
        if should_suspend(trust_estimate(evidence[worker.name], now=clock)):
            suspended.add(worker.name)

    task_iou: list[float] = []
    for index, truth in enumerate(truths):
        prop = model.propose(truth, frame_size=frame_size) if model else None
        decision = route_for(prop, ("task", seed, index))
        verifying = decision.route == assist.Route.VERIFY
        counts["routed"] += verifying
        counts["audits"] += decision.audit
        target = decision.replica_target
        done: list[tuple[SimulatedWorker, Annotation, Verified | None]] = []
        while True:
            pool = [w for w in crowd if w.name not in suspended and w not in [d[0] for d in done]]
            if not pool:
                break
            worker = pool[int(rng.integers(len(pool)))]
            if rng.random() < gold_rate:
                do_gold(worker)
                continue
            clock += timedelta(minutes=1)
            counts["replicas"] += 1
            if verifying:
                v = verify_work(worker, truth, prop, gold=False)
                done.append((worker, v.annotation, v))
            else:
                done.append((worker, draw(worker, truth), None))
            if len(done) < target:
                continue
            done = [d for d in done if d[0].name not in suspended]
            if len(done) < target:
                continue
            tolerance = route_policy.moved_tolerance
            if verifying:
                shares = [
                    assist.correction_share(
                        d[2].provenance,
                        proposed=d[2].proposed,
                        submitted=d[2].submitted,
                        tolerance=tolerance,
                    )
                    for d in done
                    if d[2] is not None
                ]
                vd = assist.decide_verify(
                    shares=shares,
                    replica_target=target,
                    overlap_min=overlap_min,
                    policy=route_policy,
                )
                if vd.action == assist.VerifyAction.ESCALATE:
                    verifying = False
                    counts["escalated"] += 1
                    target = max(overlap_min, len(done) + 1)
                    continue
            src = source()
            independence = [
                1.0
                if v is None
                else assist.independence_of(
                    v.provenance,
                    proposed=v.proposed,
                    submitted=v.submitted,
                    record=records[w.name],
                    source=src,
                    trust=trust(w.name),
                    crowd_rate=crowd_rate(),
                    policy=route_policy,
                )
                for w, _, v in done
            ]
            weights = np.array([vote_weight(trust(d[0].name)) for d in done])
            c = box_consensus(
                [d[1] for d in done],
                weights,
                iou_threshold=iou_threshold,
                independence=independence,
            )
            od = decide_overlap(
                submitted=len(done),
                replica_target=target,
                overlap_max=max(overlap_max, target),
                agreement=c.agreement,
                agreement_threshold=agreement_threshold,
            )
            if od.action == OverlapAction.ADD_REPLICA:
                if verifying:  # the verifiers' accepts did not settle it: full annotation
                    verifying = False
                    counts["escalated"] += 1
                    target = max(overlap_min, len(done) + 1)
                else:
                    target = od.replica_target
                continue
            for (w, _, v), agreement in zip(done, c.annotator_agreement, strict=True):
                if v is None:
                    evidence[w.name].append(Evidence(AGREEMENT, float(agreement), clock))
                    if should_suspend(trust_estimate(evidence[w.name], now=clock)):
                        suspended.add(w.name)
            if prop is not None and all(d[2] is None for d in done):
                # Independent consensus (the proposal was hidden): it measures the source.
                comparisons.append(
                    assist.compare(
                        prop.annotation,
                        c.frames,
                        kind=assist.CONSENSUS,
                        confidence=assist.proposal_confidence(prop.confidence.values()),
                        iou_threshold=iou_threshold,
                    )
                )
            result = c.frames
            if od.action == OverlapAction.REVIEW:
                counts["reviewed"] += 1
                counts["replicas"] += 1
                result = reviewer.annotate(truth, frame_size=frame_size, n_classes=2)
                pay(reviewer.name, full_price(truth).price, reviewer.seconds(result))
            s = score_boxes(truth, result, iou_threshold=iou_threshold)
            task_iou.append(s.mean_iou * s.tp / max(s.tp + s.fn, 1))
            break
    return AssistRunResult(
        arm=arm,
        task_iou=task_iou,
        cost=totals["cost"],
        pay=totals["pay"],
        paid_seconds=totals["seconds"],
        replicas=counts["replicas"],
        gold_items=counts["gold"],
        reviewed=counts["reviewed"],
        routed=counts["routed"],
        escalated=counts["escalated"],
        audits=counts["audits"],
        topups=totals["topups"],
        min_hourly=min(hourly) if hourly else None,
        flags=flags,
        suspended=sorted(suspended),
        source=source(),
        verify_ratio=verify_ratio() if verify_ratios else None,
        measured_verify_ratio=(
            float(np.mean([r for _, r in verify_ratios])) if verify_ratios else None
        ),
    )


def plant_error(
    proposal: Proposal, truth: Annotation, *, rng: np.random.Generator, frame_size: tuple[int, int]
) -> Proposal:
    """The proposal with one right track moved off its object on every frame (IoU < 0.5): what
    gold served for verification shows, so that accepting without looking fails it."""
    right = sorted(
        t
        for t in {int(t) for fb in proposal.annotation.values() for t in fb.ids.tolist()}
        if t < FALSE_ALARM_ID and t not in _wrong_tracks(proposal, truth)
    )
    if not right:
        return proposal
    t = right[int(rng.integers(len(right)))]
    angle = rng.uniform(0, 2 * np.pi)
    shift = rng.uniform(0.7, 1.0) * np.array([np.cos(angle), np.sin(angle)])
    out: dict[int, FrameBoxes] = {}
    for f, fb in proposal.annotation.items():
        boxes = fb.boxes.copy()
        for j in np.flatnonzero(fb.ids == t).tolist():
            size = np.array([boxes[j, 2] - boxes[j, 0], boxes[j, 3] - boxes[j, 1]])
            boxes[j] += np.tile(shift * size, 2)
        out[f] = FrameBoxes(_clip(boxes, *frame_size), fb.labels.copy(), fb.ids.copy())
    return Proposal(out, proposal.confidence)


def _wrong_tracks(prop: Proposal, truth: Annotation) -> set[int]:
    wrong: set[int] = set()
    for f, pb in prop.annotation.items():
        tb = truth.get(f, FrameBoxes.empty())
        iou = iou_matrix(pb.boxes, tb.boxes)
        for j in range(len(pb)):
            same = np.flatnonzero(tb.ids == pb.ids[j])
            if not len(same) or iou[j, same[0]] < 0.5:
                wrong.add(int(pb.ids[j]))
    return wrong


def _wrong_shapes(prop: Proposal, truth: Annotation, iou_threshold: float) -> set[int]:
    """Global indices of the proposal's shapes that match no true object at the threshold."""
    wrong: set[int] = set()
    k = 0
    for f in sorted(prop.annotation):
        pb = prop.annotation[f]
        tb = truth.get(f, FrameBoxes.empty())
        iou = iou_matrix(pb.boxes, tb.boxes)
        for j in range(len(pb)):
            same = np.flatnonzero(tb.ids == pb.ids[j])
            if not len(same) or iou[j, same[0]] < iou_threshold:
                wrong.add(k)
            k += 1
    return wrong
