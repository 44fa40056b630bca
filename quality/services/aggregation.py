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
    labelled = _job_labels(job, classes)
    if labelled is None:
        return 0
    agg = dawid_skene.aggregate(
        labelled.item, labelled.worker, labelled.label, n_classes=len(classes)
    )
    result = _Aggregated(
        algorithm=agg.algorithm, classes=classes, labelled=labelled, item_label=agg.labels,
        item_confidence=agg.confidence,
    )  # fmt: skip
    del agg
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


@dataclass(frozen=True)
class _Labelled:
    """A whole job's labels as compact arrays, in microtask order, then assignment (pk) order.

    An item is a (microtask, frame) pair; items are numbered by microtask, then frame. Per label
    (a few bytes each, no Python object): its item (int32), worker (int32, numbered by worker id)
    and class (int8 for up to 127 classes). Per assignment: its id and where its labels start;
    per item: its frame; per microtask: its id and where its items and assignments start.
    """

    item: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    item_frame: np.ndarray
    assignment_id: np.ndarray
    assignment_start: np.ndarray  # + a final end
    mt_id: np.ndarray  # sorted
    mt_item_start: np.ndarray  # + a final end
    mt_assignment_start: np.ndarray  # + a final end


def _job_labels(job: Job, classes: list[str]) -> _Labelled | None:
    """Stream a job's classification labels (approved or submitted, not gold, no suspended
    worker) from a server-side cursor, ordered by microtask, into typed arrays; None without
    any. Only one microtask's rows are held as Python objects at a time."""
    suspended = WorkerTrust.objects.filter(
        annotation_type=job.annotation_type, suspended=True
    ).values("worker_id")
    rows = (
        Assignment.objects.filter(
            microtask__job=job,
            microtask__is_gold=False,
            status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED),
            submission__isnull=False,
        )
        .exclude(worker_id__in=suspended)
        .order_by("microtask_id", "pk")
        .values_list("microtask_id", "pk", "worker_id", "submission__frames")
        .iterator(chunk_size=WRITE_BATCH)
    )
    item, worker = array("i"), array("i")
    label = array("b" if len(classes) < 128 else "i")
    item_frame, assignment_id, assignment_start = array("i"), array("q"), array("q")
    mt_id, mt_item_start, mt_assignment_start = array("q"), array("q"), array("q")
    worker_index: dict[int, int] = {}

    def flush(microtask_id: int, given: list[tuple[int, int, dict[int, int]]]) -> None:
        frames = sorted({f for _, _, by_frame in given for f in by_frame})
        if not frames:
            return
        first = len(item_frame)
        position = {f: first + i for i, f in enumerate(frames)}
        mt_id.append(microtask_id)
        mt_item_start.append(first)
        mt_assignment_start.append(len(assignment_id))
        item_frame.extend(frames)
        for pk, w, by_frame in given:
            if not by_frame:
                continue
            assignment_id.append(pk)
            assignment_start.append(len(item))
            for frame, value in by_frame.items():
                item.append(position[frame])
                worker.append(w)
                label.append(value)

    current, given = None, []
    for microtask_id, pk, worker_id, frames in rows:
        if microtask_id != current:
            if current is not None:
                flush(current, given)
            current, given = microtask_id, []
        by_frame = {f: v for f, v in shapes.to_labels(frames, classes).items() if v >= 0}
        w = worker_index.setdefault(worker_id, len(worker_index))
        given.append((pk, w, by_frame))
    if current is not None:
        flush(current, given)
    if not item:
        return None
    # Workers numbered by id (as a sorted unique would), in place, a block at a time.
    ids = np.fromiter(worker_index, dtype=np.int64, count=len(worker_index))
    rank = np.empty(ids.size, dtype=np.int32)
    rank[np.argsort(ids)] = np.arange(ids.size, dtype=np.int32)
    ww = np.frombuffer(worker, dtype=np.int32)
    for s in range(0, ww.size, dawid_skene.CHUNK):
        ww[s : s + dawid_skene.CHUNK] = rank[ww[s : s + dawid_skene.CHUNK]]

    def ends(starts: array, end: int) -> np.ndarray:
        starts.append(end)
        return np.frombuffer(starts, dtype=np.int64)

    return _Labelled(
        item=np.frombuffer(item, dtype=np.int32),
        worker=ww,
        label=np.frombuffer(label, dtype=label.typecode),
        item_frame=np.frombuffer(item_frame, dtype=np.int32),
        assignment_id=np.frombuffer(assignment_id, dtype=np.int64),
        assignment_start=ends(assignment_start, len(item)),
        mt_id=np.frombuffer(mt_id, dtype=np.int64),
        mt_item_start=ends(mt_item_start, len(item_frame)),
        mt_assignment_start=ends(mt_assignment_start, len(assignment_id)),
    )


@dataclass(frozen=True)
class _Aggregated:
    """A whole job's aggregation: per item its class and confidence, over the job's labels."""

    algorithm: str
    classes: list[str]
    labelled: _Labelled
    item_label: np.ndarray
    item_confidence: np.ndarray

    def _index(self, mt_id: int) -> int | None:
        ids = self.labelled.mt_id
        j = int(np.searchsorted(ids, mt_id))
        return j if j < ids.size and int(ids[j]) == mt_id else None

    def has(self, mt_id: int) -> bool:
        return self._index(mt_id) is not None

    def result(self, mt_id: int) -> ConsensusResult:
        lab, j = self.labelled, self._index(mt_id)
        items = slice(int(lab.mt_item_start[j]), int(lab.mt_item_start[j + 1]))
        labels = dict(
            zip(lab.item_frame[items].tolist(), self.item_label[items].tolist(), strict=True)
        )
        annotators = {}
        for a in range(int(lab.mt_assignment_start[j]), int(lab.mt_assignment_start[j + 1])):
            mine = slice(int(lab.assignment_start[a]), int(lab.assignment_start[a + 1]))
            hit = self.item_label[lab.item[mine]] == lab.label[mine]
            annotators[str(int(lab.assignment_id[a]))] = round(float(hit.mean()), 4)
        return ConsensusResult(
            microtask_id=mt_id,
            algorithm=self.algorithm,
            frames=shapes.from_labels(labels, self.classes),
            agreement=float(np.mean(self.item_confidence[items], dtype=np.float64)),
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
