"""Job-wide aggregation of classification labels (Dawid-Skene), run periodically: with the whole
job's labels it learns each worker's confusions and corrects what a per-microtask vote got
wrong. The algorithm is ``quality.dawid_skene``'s (pure)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

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
    suspended = WorkerTrust.objects.filter(
        annotation_type=job.annotation_type, suspended=True
    ).values("worker_id")
    # Streamed and compact: rows come one at a time from a server-side cursor into typed
    # arrays (a few bytes a label, no Python object per label or per microtask), so a job of
    # hundreds of thousands of microtasks fits; only the submission's frames are read.
    rows = (
        Assignment.objects.filter(
            microtask__job=job,
            microtask__is_gold=False,
            status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED),
            submission__isnull=False,
        )
        .exclude(worker_id__in=suspended)
        .order_by("pk")
        .values_list("pk", "microtask_id", "worker_id", "submission__frames")
        .iterator(chunk_size=WRITE_BATCH)
    )
    key, worker, label, owner = array("q"), array("q"), array("i"), array("q")
    for assignment_id, microtask_id, worker_id, frames in rows:
        for frame, value in shapes.to_labels(frames, classes).items():
            if value < 0:
                continue
            key.append((microtask_id << FRAME_BITS) | int(frame))
            worker.append(worker_id)
            label.append(value)
            owner.append(assignment_id)
    if not key:
        return 0
    kk, ww, ll, oo = (np.frombuffer(a, dtype=a.typecode) for a in (key, worker, label, owner))
    items, tt = np.unique(kk, return_inverse=True)  # an item is (microtask, frame), sorted
    _, ww = np.unique(ww, return_inverse=True)
    agg = dawid_skene.aggregate(tt, ww, ll, n_classes=len(classes))
    hit = agg.labels[tt] == ll
    # Agreement of each assignment with the result, and its microtask: one sorted pass.
    order = np.argsort(oo, kind="stable")
    owners, starts = np.unique(oo[order], return_index=True)
    agreement = np.add.reduceat(hit[order].astype(np.int64), starts) / np.diff(
        np.append(starts, len(order))
    )
    owner_mt = kk[order][starts] >> FRAME_BITS
    by_owner_mt = np.argsort(owner_mt, kind="stable")
    owners, owner_mt, agreement = owners[by_owner_mt], owner_mt[by_owner_mt], agreement[by_owner_mt]
    item_mt = items >> FRAME_BITS
    result = _Aggregated(
        algorithm=agg.algorithm,
        classes=classes,
        item_mt=item_mt,
        item_frame=items & ((1 << FRAME_BITS) - 1),
        item_label=agg.labels,
        item_confidence=agg.confidence,
        owners=owners,
        owner_mt=owner_mt,
        owner_agreement=agreement,
    )
    settled = MicroTask.objects.filter(job=job, status=MicroTaskStatus.COMPLETE).values_list(
        "pk", flat=True
    )
    written = 0
    batch: list[int] = []
    for mt_id in settled.order_by("pk").iterator(chunk_size=WRITE_BATCH):
        if result.has(mt_id):
            batch.append(mt_id)
        if len(batch) >= WRITE_BATCH:
            written += _write_results(batch, result)
            batch = []
    if batch:
        written += _write_results(batch, result)
    return written


WRITE_BATCH = 2_000  # microtasks per statement when a whole job's results are written
FRAME_BITS = 24  # an item's key: microtask id << FRAME_BITS | frame number


@dataclass(frozen=True)
class _Aggregated:
    """A whole job's aggregation, as sorted arrays (items by microtask, then frame)."""

    algorithm: str
    classes: list[str]
    item_mt: np.ndarray
    item_frame: np.ndarray
    item_label: np.ndarray
    item_confidence: np.ndarray
    owners: np.ndarray  # assignment ids, sorted by microtask
    owner_mt: np.ndarray
    owner_agreement: np.ndarray

    def _span(self, sorted_ids: np.ndarray, mt_id: int) -> slice:
        lo = int(np.searchsorted(sorted_ids, mt_id, side="left"))
        return slice(lo, int(np.searchsorted(sorted_ids, mt_id, side="right")))

    def has(self, mt_id: int) -> bool:
        span = self._span(self.item_mt, mt_id)
        return span.stop > span.start

    def result(self, mt_id: int) -> ConsensusResult:
        items = self._span(self.item_mt, mt_id)
        labels = dict(
            zip(self.item_frame[items].tolist(), self.item_label[items].tolist(), strict=True)
        )
        mine = self._span(self.owner_mt, mt_id)
        annotators = {
            str(k): round(float(v), 4)
            for k, v in zip(
                self.owners[mine].tolist(), self.owner_agreement[mine].tolist(), strict=True
            )
        }
        return ConsensusResult(
            microtask_id=mt_id,
            algorithm=self.algorithm,
            frames=shapes.from_labels(labels, self.classes),
            agreement=float(np.mean(self.item_confidence[items])),
            annotator_agreement=annotators,
            replicas=len(annotators),
            decision=ConsensusDecision.ACCEPT,
            is_current=True,
        )


def _write_results(mt_ids: list[int], result: _Aggregated) -> int:
    """Make the aggregation's result current for ``mt_ids``: two statements for the batch."""
    ConsensusResult.objects.filter(microtask_id__in=mt_ids, is_current=True).exclude(
        algorithm=result.algorithm
    ).update(is_current=False)
    ConsensusResult.objects.bulk_create(
        [result.result(mt_id) for mt_id in mt_ids],
        update_conflicts=True,
        unique_fields=["microtask", "algorithm"],
        update_fields=[
            "frames", "agreement", "annotator_agreement", "replicas", "decision", "is_current",
            "updated_at",
        ],
    )  # fmt: skip
    return len(mt_ids)
