"""Whole-job consensus at any size: the same queries for a small or a large job (streamed read,
batched writes), the same results, one current result per microtask."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from quality.models import ConsensusDecision, ConsensusResult
from quality.services import aggregation, job_classes_aggregate
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus, Submission
from tests.factories import JobFactory, VideoFactory, WorkerFactory

pytestmark = pytest.mark.django_db
CLASSES = ["cat", "dog"]
FRAMES = (0, 5, 9)


def _classify_job(n: int):
    """``n`` settled microtasks, each labelled by three workers: two always right, the third
    wrong on even microtasks. The truth is "dog" on odd microtasks, "cat" on even ones."""
    job = JobFactory(annotation_type="classify", label_classes=CLASSES)
    video = VideoFactory(job=job)
    mts = MicroTask.objects.bulk_create(
        MicroTask(job=job, video=video, index=i, frame_start=0, frame_end=9, frames=list(FRAMES),
                  price=10, replica_target=3, status=MicroTaskStatus.COMPLETE)
        for i in range(n)
    )  # fmt: skip
    workers = [WorkerFactory() for _ in range(3)]
    now = timezone.now()
    assignments = Assignment.objects.bulk_create(
        Assignment(microtask=mt, worker=w, claimed_at=now, deadline=now,
                   status=AssignmentStatus.APPROVED)
        for mt in mts for w in workers
    )  # fmt: skip
    subs = []
    for a in assignments:
        k = a.microtask.index
        truth = CLASSES[k % 2]
        wrong = a.worker_id == workers[2].pk and k % 2 == 0
        label = CLASSES[1 - k % 2] if wrong else truth
        frames = {str(f): [{"label": label}] for f in FRAMES}
        subs.append(Submission(assignment=a, payload={}, frames=frames))
    Submission.objects.bulk_create(subs)
    return job, mts, workers


def test_whole_job_consensus_costs_the_same_queries_for_30_or_150_microtasks():
    counts = []
    for n in (30, 150):
        job, _, _ = _classify_job(n)
        with CaptureQueriesContext(connection) as ctx:
            assert job_classes_aggregate(job_id=job.pk) == n
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_whole_job_consensus_in_batches_gives_each_microtask_its_result(monkeypatch):
    monkeypatch.setattr(aggregation, "WRITE_BATCH", 7)  # several batches of a small job
    job, mts, workers = _classify_job(30)
    stale = ConsensusResult.objects.create(
        microtask=mts[3], algorithm="weighted-vote-v1", frames={}, agreement=0.5,
        decision=ConsensusDecision.ACCEPT, is_current=True,
    )  # fmt: skip
    assert job_classes_aggregate(job_id=job.pk) == 30
    stale.refresh_from_db()
    assert stale.is_current is False
    current = {r.microtask_id: r for r in ConsensusResult.objects.filter(is_current=True)}
    assert set(current) == {m.pk for m in mts}
    ids = {w.pk: w for w in workers}
    for mt in mts:
        result = current[mt.pk]
        truth = CLASSES[mt.index % 2]
        assert result.frames == {str(f): [{"label": truth}] for f in FRAMES}
        assert result.replicas == 3
        by_worker = {
            ids[a.worker_id]: result.annotator_agreement[str(a.pk)]
            for a in Assignment.objects.filter(microtask=mt)
        }
        expected_third = 0.0 if mt.index % 2 == 0 else 1.0
        assert list(by_worker.values()) == [1.0, 1.0, expected_third]
    # Running it again rewrites the same rows (one per microtask and algorithm).
    assert job_classes_aggregate(job_id=job.pk) == 30
    assert ConsensusResult.objects.filter(is_current=True).count() == 30


def _box_job(n: int):
    """A box job of ``n`` microtasks on one video, each with a current result resting on three
    approved submissions."""
    job = JobFactory(annotation_type="bbox", label_classes=CLASSES)
    video = VideoFactory(job=job, width=640, height=360, frame_width=640, frame_height=360)
    mts = MicroTask.objects.bulk_create(
        MicroTask(job=job, video=video, index=i, frame_start=3 * i, frame_end=3 * i + 2,
                  frames=[3 * i, 3 * i + 1, 3 * i + 2], price=10, replica_target=3,
                  status=MicroTaskStatus.COMPLETE)
        for i in range(n)
    )  # fmt: skip
    workers = [WorkerFactory() for _ in range(3)]
    now = timezone.now()
    assignments = Assignment.objects.bulk_create(
        Assignment(microtask=mt, worker=w, claimed_at=now, deadline=now,
                   status=AssignmentStatus.APPROVED)
        for mt in mts for w in workers
    )  # fmt: skip
    by_mt: dict[int, list[int]] = {}
    for a in assignments:
        by_mt.setdefault(a.microtask_id, []).append(a.pk)
    ConsensusResult.objects.bulk_create(
        ConsensusResult(
            microtask=mt, algorithm="boxes-v1", agreement=1.0, decision=ConsensusDecision.ACCEPT,
            frames={str(f): [{"label": "dog", "box": [10, 20, 110, 220]}] for f in mt.frames},
            annotator_agreement={str(k): 1.0 for k in by_mt[mt.pk]}, replicas=3,
        )
        for mt in mts
    )  # fmt: skip
    return job


def test_a_coco_export_costs_the_same_queries_for_10_or_120_microtasks(monkeypatch):
    from quality import exporting
    from tasks.models import ExportedWork

    monkeypatch.setattr(exporting, "RECORD_BATCH", 10**6)  # one INSERT at both sizes
    counts = []
    for n in (10, 120):
        job = _box_job(n)
        with CaptureQueriesContext(connection) as ctx:
            export = exporting.job_export(job=job, fmt="coco", by=job.requester)
        counts.append(len(ctx.captured_queries))
        doc = json.loads(export.content)
        assert (len(doc["images"]), len(doc["annotations"])) == (3 * n, 3 * n)
        assert (export.microtasks, export.withheld, export.size) == (n, 0, len(export.content))
        assert ExportedWork.objects.filter(first_export_id=export.export_id).count() == 3 * n
    assert counts[0] == counts[1]


def test_the_job_report_bins_agreement_in_sql_as_numpy_would(client_for):
    """The report's agreement histogram and mean come from one aggregate (no list of the job's
    results in memory), with np.histogram's bins, edges included."""
    import numpy as np

    from quality.selectors import AGREEMENT_BINS, job_report

    values = [0.0, 0.1, 0.3, 0.30000000000000004, 0.45, 0.9999, 1.0, 0.7, 0.2, 0.6]
    counts = []
    for n in (10, 40):
        job, mts, _ = _classify_job(n)
        ConsensusResult.objects.bulk_create(
            ConsensusResult(microtask=mt, algorithm="v", frames={}, decision="accept",
                            agreement=values[i % len(values)])
            for i, mt in enumerate(mts)
        )  # fmt: skip
        with CaptureQueriesContext(connection) as ctx:
            report = job_report(job=job)
        counts.append(len(ctx.captured_queries))
        stored = [values[i % len(values)] for i in range(n)]
        expected, _ = np.histogram(stored, bins=AGREEMENT_BINS)
        assert [b["microtasks"] for b in report["agreement"]["histogram"]] == expected.tolist()
        assert report["agreement"]["mean"] == round(float(np.mean(stored)), 4)
    assert counts[0] == counts[1]


def test_whole_job_consensus_counts_only_the_known_labels_each_assignment_gave():
    """Frames missing or labelled with an unknown class are no labels: an assignment is scored
    on the frames it labelled, and one without any known label is no annotator."""
    job, mts, workers = _classify_job(25)  # all "dog" on odd, "cat" on even microtasks
    third = {a.microtask_id: a for a in Assignment.objects.filter(worker=workers[2])}
    partial = Submission.objects.get(assignment=third[mts[1].pk])
    partial.frames = {"0": [{"label": "cat"}], "5": [{"label": "bird"}]}  # 9 left out
    partial.save()
    unknown = Submission.objects.get(assignment=third[mts[3].pk])
    unknown.frames = {str(f): [{"label": "bird"}] for f in FRAMES}
    unknown.save()
    assert job_classes_aggregate(job_id=job.pk) == 25
    current = {r.microtask_id: r for r in ConsensusResult.objects.filter(is_current=True)}
    one, three = current[mts[1].pk], current[mts[3].pk]
    assert one.frames == three.frames == {str(f): [{"label": "dog"}] for f in FRAMES}
    assert one.replicas == 3
    assert one.annotator_agreement[str(third[mts[1].pk].pk)] == 0.0  # its one frame, wrong
    assert three.replicas == 2
    assert str(third[mts[3].pk].pk) not in three.annotator_agreement
    assert set(three.annotator_agreement.values()) == {1.0}
