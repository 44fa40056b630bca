"""The crowd simulator driving the real services: workers claim, annotate from known truth and
submit through ``tasks.claiming`` exactly as the API does, so quality runs on what the claim path
stored (the submit hook, Celery, consensus, trust, dynamic overlap, suspension).

Used by the tests and the demo; ``truth_for`` maps a claimed microtask to its true boxes (for
generated videos, ``quality.simulator.scene_truth`` of the scene).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from marketplace.errors import NothingAvailable, PermissionDenied
from marketplace.models import Job, User
from tasks import claiming
from tasks.models import Assignment, MicroTask

from .boxes import Annotation
from .shapes import annotation_to_payload
from .simulator import SimulatedWorker


@dataclass
class CrowdRun:
    submissions: int = 0
    gold_submissions: dict[int, int] = field(default_factory=dict)  # worker id -> gold done
    refused: dict[int, int] = field(default_factory=dict)  # worker id -> claims refused


def drive_crowd(
    *,
    job: Job,
    crowd: Sequence[tuple[User, SimulatedWorker]],
    truth_for: Callable[[MicroTask], Annotation],
    frame_size: tuple[int, int],
    max_rounds: int = 100,
    seed: int = 0,
    on_work: Callable[[float], None] | None = None,
    on_submit: Callable[[Assignment], None] | None = None,
) -> CrowdRun:
    """Rounds of every worker (in random order) claiming and submitting, until no one can.

    ``on_work(seconds)`` is called between a claim and its submission with the active time the
    worker will report (a simulated clock advances by it); ``on_submit(assignment)`` after each
    submission (progress)."""
    rng = np.random.default_rng(seed)
    classes = list(job.label_classes)
    run = CrowdRun()
    last: Annotation | None = None
    for _ in range(max_rounds):
        progressed = False
        for k in rng.permutation(len(crowd)).tolist():
            user, sim = crowd[k]
            try:
                assignment = claiming.assignment_claim(worker=user, job_id=job.pk)
            except (NothingAvailable, PermissionDenied):
                run.refused[user.pk] = run.refused.get(user.pk, 0) + 1
                continue
            mt = assignment.microtask
            ann = sim.annotate(
                truth_for(mt), frame_size=frame_size, n_classes=len(classes), source=last
            )
            last = ann
            payload = annotation_to_payload(ann, classes, annotation_type=job.annotation_type)
            seconds = sim.seconds(ann)
            if on_work is not None:
                on_work(seconds)
            claiming.assignment_submit(
                worker=user,
                assignment_id=assignment.pk,
                payload=payload,
                active_seconds=seconds,
            )
            run.submissions += 1
            if on_submit is not None:
                on_submit(assignment)
            if mt.is_gold:
                run.gold_submissions[user.pk] = run.gold_submissions.get(user.pk, 0) + 1
            progressed = True
        if not progressed:
            break
    return run
