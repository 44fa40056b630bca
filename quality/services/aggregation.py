"""Job-wide aggregation of classification labels (Dawid-Skene), run periodically: with the whole
job's labels it learns each worker's confusions and corrects what a per-microtask vote got
wrong. The algorithm is ``quality.dawid_skene``'s (pure)."""

from __future__ import annotations

import numpy as np
from django.db import transaction

from marketplace.models import AnnotationType, Job, JobStatus
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus

from .. import dawid_skene, shapes
from ..models import ConsensusDecision, ConsensusResult, WorkerTrust


def classification_jobs_aggregate() -> int:
    """Re-aggregate every live classification job (published, paused or completed), one
    transaction per job; the number of labels made current."""
    live = (JobStatus.PUBLISHED, JobStatus.PAUSED, JobStatus.COMPLETED)
    jobs = Job.objects.filter(annotation_type=AnnotationType.CLASSIFY, status__in=live)
    return sum(job_classes_aggregate(job_id=pk) for pk in jobs.values_list("pk", flat=True))


@transaction.atomic
def job_classes_aggregate(*, job_id: int) -> int:
    """Re-aggregate every classification label of a job with Dawid-Skene (majority vote when
    there are too few labels) and make it the current result of the settled microtasks.

    Per-microtask weighted votes decide overlap as replicas arrive; with the whole job's labels,
    Dawid-Skene learns each worker's confusions and corrects what a vote gets wrong. Returns the
    number of microtasks whose result it wrote.
    """
    job = Job.objects.get(pk=job_id)
    if job.annotation_type != AnnotationType.CLASSIFY:
        return 0
    classes = list(job.label_classes)
    suspended = set(
        WorkerTrust.objects.filter(annotation_type=job.annotation_type, suspended=True).values_list(
            "worker_id", flat=True
        )
    )
    rows = (
        Assignment.objects.filter(
            microtask__job=job,
            microtask__is_gold=False,
            status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED),
        )
        .exclude(worker_id__in=suspended)
        .select_related("submission")
        .order_by("pk")
    )
    item_index: dict[tuple[int, int], int] = {}
    worker_index: dict[int, int] = {}
    t: list[int] = []
    w: list[int] = []
    lab: list[int] = []
    owner: list[int] = []
    mt_of: dict[int, int] = {}
    for a in rows:
        sub = getattr(a, "submission", None)
        if sub is None:
            continue
        mt_of[a.pk] = a.microtask_id
        for frame, label in shapes.to_labels(sub.frames, classes).items():
            if label < 0:
                continue
            t.append(item_index.setdefault((a.microtask_id, frame), len(item_index)))
            w.append(worker_index.setdefault(a.worker_id, len(worker_index)))
            lab.append(label)
            owner.append(a.pk)
    if not t:
        return 0
    agg = dawid_skene.aggregate(np.array(t), np.array(w), np.array(lab), n_classes=len(classes))
    tt, ll, oo = np.array(t), np.array(lab), np.array(owner)
    hit = agg.labels[tt] == ll
    per_assignment = {int(k): round(float(hit[oo == k].mean()), 4) for k in np.unique(oo)}
    by_mt: dict[int, dict[int, int]] = {}
    conf: dict[int, list[float]] = {}
    for (mt_id, frame), idx in item_index.items():
        by_mt.setdefault(mt_id, {})[frame] = int(agg.labels[idx])
        conf.setdefault(mt_id, []).append(float(agg.confidence[idx]))
    settled = set(
        MicroTask.objects.filter(pk__in=list(by_mt), status=MicroTaskStatus.COMPLETE).values_list(
            "pk", flat=True
        )
    )
    written = 0
    for mt_id, labels in by_mt.items():
        if mt_id not in settled:
            continue
        mine = {k: v for k, v in per_assignment.items() if mt_of.get(k) == mt_id}
        ConsensusResult.objects.filter(microtask_id=mt_id, is_current=True).exclude(
            algorithm=agg.algorithm
        ).update(is_current=False)
        ConsensusResult.objects.update_or_create(
            microtask_id=mt_id,
            algorithm=agg.algorithm,
            defaults={
                "frames": shapes.from_labels(labels, classes),
                "agreement": float(np.mean(conf[mt_id])),
                "annotator_agreement": {str(k): v for k, v in mine.items()},
                "replicas": len(mine),
                "decision": ConsensusDecision.ACCEPT,
                "is_current": True,
            },
        )
        written += 1
    return written
