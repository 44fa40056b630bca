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

Categorical answers (classification) follow the same profiles: precise is right 95 % of the time,
sloppy 75 %, lazy answers the most common class half the time, biased confuses each class with the
next, a spammer answers uniformly at random, a copycat copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .boxes import Annotation, FrameBoxes
from .events import Event

PRECISE = "precise"
SLOPPY = "sloppy"
LAZY = "lazy"
BIASED = "biased"
SPAMMER = "spammer"
COPYCAT = "copycat"
PROFILES = (PRECISE, SLOPPY, LAZY, BIASED, SPAMMER, COPYCAT)


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

    def seconds(self, n_boxes: int, n_frames: int, rng: np.random.Generator) -> float:
        base = self.seconds_per_box * n_boxes + self.seconds_per_frame * n_frames
        return float(base * rng.lognormal(0.0, 0.2))


PROFILE_SETTINGS: dict[str, Profile] = {
    PRECISE: Profile(PRECISE),
    SLOPPY: Profile(SLOPPY, jitter=0.06, class_accuracy=0.85, seconds_per_box=2.5),
    LAZY: Profile(LAZY, small_area=0.015, small_miss=0.85, seconds_per_box=2.0),
    BIASED: Profile(BIASED, shift=0.08),
    SPAMMER: Profile(SPAMMER, class_accuracy=0.0, seconds_per_box=0.3, seconds_per_frame=0.1),
    COPYCAT: Profile(COPYCAT, seconds_per_box=0.1, seconds_per_frame=0.05),
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


CLASS_ACCURACY = {PRECISE: 0.95, SLOPPY: 0.75, LAZY: 0.9, BIASED: 0.9}


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
        return trust_estimate(evidence[name], now=clock).trust

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
