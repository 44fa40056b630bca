"""Quality through the real claim path: submit hook → Celery (eager) → gold, consensus, trust."""

import numpy as np
import pytest

from marketplace.errors import NothingAvailable
from marketplace.models import Qualification, QualificationStatus
from payments.models import LedgerTransaction
from quality import services
from quality.models import (
    ConsensusDecision,
    ConsensusResult,
    FraudFlag,
    GoldResult,
    ReviewItem,
    StandingEvidence,
    TrustEvidence,
    WorkerTrust,
)
from quality.selectors import worker_trust
from quality.simulator import PRECISE, SPAMMER, SimulatedWorker
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus, Slot
from tasks.suspensions import Suspended
from tests.openapi_check import assert_answers_schema
from tests.quality.conftest import FRAME_SIZE

pytestmark = pytest.mark.django_db(transaction=True)


def boxes_in(data):
    """Every list of four numbers anywhere in a JSON document, rounded to 0.1."""
    if isinstance(data, list):
        if len(data) == 4 and all(isinstance(v, int | float) for v in data):
            yield tuple(round(float(v), 1) for v in data)
        for item in data:
            yield from boxes_in(item)
    elif isinstance(data, dict):
        for item in data.values():
            yield from boxes_in(item)


def claim_and_submit(world, worker, profile=PRECISE, seed=0, seconds=60.0, annotation=None):
    a = claiming.assignment_claim(worker=worker, job_id=world.job.pk)
    mt = a.microtask
    if annotation is None:
        annotation = SimulatedWorker("w", profile, seed=seed).annotate(
            world.truth_for(mt), frame_size=FRAME_SIZE, n_classes=len(world.classes)
        )
    claiming.assignment_submit(
        worker=worker,
        assignment_id=a.pk,
        payload=world.payload_for(mt, annotation),
        active_seconds=seconds,
    )
    a.refresh_from_db()
    return a


def test_agreeing_replicas_reach_consensus_and_are_approved(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=3)
    crowd = workers(3)
    subs = [claim_and_submit(world, w, seed=i) for i, w in enumerate(crowd)]
    mt = subs[0].microtask
    mt.refresh_from_db()
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert result.decision == ConsensusDecision.ACCEPT
    assert result.algorithm == "boxes-wmaj-v1"
    assert result.agreement > 0.85
    assert mt.status == MicroTaskStatus.COMPLETE
    for a in subs:
        a.refresh_from_db()
        assert a.status == AssignmentStatus.APPROVED
        assert a.pay_amount and a.pay_amount > 0
        assert TrustEvidence.objects.filter(assignment=a, kind="agreement").exists()


def test_low_agreement_adds_a_replica_then_sends_to_review(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=2, overlap_max=3)
    crowd = workers(3)
    a1 = claim_and_submit(world, crowd[0], PRECISE, seed=1)
    claim_and_submit(world, crowd[1], SPAMMER, seed=2)
    mt = MicroTask.objects.get(pk=a1.microtask_id)
    assert mt.replica_target == 3
    assert Slot.objects.filter(microtask=mt).count() == 3  # the extra replica is claimable
    assert ConsensusResult.objects.get(microtask=mt).decision == ConsensusDecision.ADD_REPLICA
    claim_and_submit(world, crowd[2], SPAMMER, seed=3)
    mt.refresh_from_db()
    assert mt.status == MicroTaskStatus.REVIEW
    item = ReviewItem.objects.get(microtask=mt, status="open")
    assert "review" in item.reason

    # The reviewer's answer becomes the result and counts as gold for the annotators: the
    # requester's answer on the requester's jobs (their standing); with no trusted annotator
    # agreeing with it, not in platform-wide trust (quality.standing).
    client_user = world.job.requester
    services.review_resolve(review_id=item.pk, payload=world.payload_for(mt), by=client_user)
    mt.refresh_from_db()
    assert mt.status == MicroTaskStatus.COMPLETE
    current = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert current.decision == ConsensusDecision.REVIEWED
    review = {
        e.assignment.worker_id: e.score for e in StandingEvidence.objects.filter(kind="review")
    }
    assert review[crowd[0].pk] > 0.8 > 0.2 > review[crowd[1].pk]
    assert not TrustEvidence.objects.filter(kind="review").exists()
    a1.refresh_from_db()
    assert a1.status == AssignmentStatus.APPROVED


def test_gold_is_scored_a_bad_worker_is_rejected_and_sees_frames_not_the_answer(
    world_factory, workers, gold_first, client_for
):
    world = world_factory(n=2, gold=2, gold_rate=0.5)
    good, bad = workers(2)
    ok = claim_and_submit(world, good, PRECISE, seed=1)
    assert MicroTask.objects.get(pk=ok.microtask_id).is_gold
    failed = claim_and_submit(world, bad, SPAMMER, seed=2)
    result = GoldResult.objects.get(assignment=failed)
    assert not result.passed
    assert result.frames_off
    failed.refresh_from_db()
    assert failed.status == AssignmentStatus.REJECTED
    assert "quality check" in failed.rejection_reason
    assert GoldResult.objects.get(assignment=ok).passed
    assert worker_trust(worker=bad, annotation_type="bbox") < worker_trust(
        worker=good, annotation_type="bbox"
    )

    client = client_for(bad)
    checks = client.get("/api/quality/me/checks/")
    assert checks.status_code == 200
    (check,) = checks.json()
    assert check["passed"] is False
    assert check["frames_off"] == result.frames_off
    trust_page = assert_answers_schema(
        client.get("/api/quality/me/trust/"), "get", "/api/quality/me/trust/"
    )
    assert trust_page["trust"][0]["history"][0]["kind"] == "gold"
    # Nothing a worker can read contains a box of the gold answer.
    answer = failed.microtask.gold_answer
    gold_boxes = {
        tuple(round(float(v), 1) for v in s["box"])
        for shapes in answer.frames.values()
        for s in shapes
        if s.get("box")
    }
    assert gold_boxes
    for url in ("/api/quality/me/checks/", "/api/quality/me/trust/", "/api/work/assignments/"):
        seen = set(boxes_in(client.get(url).json()))
        assert not seen & gold_boxes, url
    # The worker's own (wrong) boxes are theirs to see; the page shows only frame numbers.
    bad.refresh_from_db()


def test_gold_answer_never_reaches_a_worker_who_claims_it(world_factory, workers, gold_first):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    world = world_factory(n=1, gold=1, gold_rate=0.5)
    (w,) = workers(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=w).key}")
    claimed = client.post("/api/work/claim/", {"job": world.job.pk}, format="json")
    assert claimed.status_code == 201
    body = claimed.content.decode()
    answer = world.gold()[0].gold_answer
    assert claimed.json()["task"]["frame_start"] == world.gold()[0].frame_start  # it is the gold
    assert "gold" not in body.lower()
    gold_boxes = {tuple(round(float(v), 1) for v in b["box"]) for b in answer.payload["boxes"]}
    assert gold_boxes
    assert not set(boxes_in(claimed.json())) & gold_boxes
    # The same check does see boxes where there are some: the worker's own, once submitted.
    mt = world.gold()[0]
    submitted = client.post(
        f"/api/work/assignments/{claimed.json()['id']}/submit/",
        {"payload": world.payload_for(mt)},
        format="json",
    )
    assert submitted.status_code == 200, submitted.content
    assert set(boxes_in(client.get(f"/api/work/assignments/{claimed.json()['id']}/").json()))


def test_spammers_are_suspended_and_their_unapproved_work_gets_a_replica(
    world_factory, workers, no_gold
):
    world = world_factory(n=1, overlap=3, overlap_max=5)
    honest = workers(3)
    (spammer,) = workers(1)
    mt_ids = []
    # The spammer's open work on microtask A.
    a_spam = claim_and_submit(world, spammer, SPAMMER, seed=9)
    mt_ids.append(a_spam.microtask_id)
    # Three gold failures (recorded as the gold path records them) suspend the spammer.
    for k in range(3):
        services.trust_record(
            worker=spammer, annotation_type="bbox", kind="gold", score=0.0, note=f"gold {k}"
        )
    row = WorkerTrust.objects.get(worker=spammer, annotation_type="bbox")
    assert row.suspended
    assert (
        Qualification.objects.get(worker=spammer, annotation_type="bbox").status
        == QualificationStatus.SUSPENDED
    )
    mt = MicroTask.objects.get(pk=a_spam.microtask_id)
    assert mt.replica_target == 4
    with pytest.raises(Suspended, match="suspended from bounding boxes work"):
        claiming.assignment_claim(worker=spammer, job_id=world.job.pk)
    # The honest crowd finishes microtask A without the spammer's vote.
    for i, w in enumerate(honest):
        a = claiming.assignment_claim(worker=w, job_id=world.job.pk)
        mt_a = a.microtask
        ann = SimulatedWorker("h", PRECISE, seed=i).annotate(
            world.truth_for(mt_a), frame_size=FRAME_SIZE, n_classes=2
        )
        claiming.assignment_submit(
            worker=w, assignment_id=a.pk, payload=world.payload_for(mt_a, ann), active_seconds=50
        )
    mt.refresh_from_db()
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert str(a_spam.pk) not in result.annotator_agreement
    assert result.decision == ConsensusDecision.ACCEPT


def test_copycat_and_too_fast_work_is_flagged_with_evidence(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=3)
    a, b, c = workers(3)
    first = claim_and_submit(world, a, PRECISE, seed=1, seconds=120)
    mt = first.microtask
    original = SimulatedWorker("p", PRECISE, seed=1).annotate(
        world.truth_for(mt), frame_size=FRAME_SIZE, n_classes=2
    )
    second = claim_and_submit(world, b, PRECISE, seed=2, seconds=110)
    # In a test the claim-to-submit time is milliseconds (the claim path caps reported time by
    # it): give the honest two the minutes they would have taken.
    Assignment.objects.filter(pk__in=[first.pk, second.pk]).update(active_seconds=115)
    copy = claim_and_submit(world, c, seconds=5, annotation=original)
    kinds = set(FraudFlag.objects.filter(assignment=copy).values_list("kind", flat=True))
    assert kinds == {"identical", "too_fast"}
    flag = FraudFlag.objects.get(assignment=copy, kind="identical")
    assert flag.evidence["identical_to_submission"] == first.pk


def test_appeal_once_and_an_admin_decides(
    world_factory, workers, gold_first, client_for, admin_user
):
    world = world_factory(n=1, gold=1, gold_rate=0.5)
    (w,) = workers(1)
    failed = claim_and_submit(world, w, SPAMMER, seed=4)
    assert failed.status == AssignmentStatus.REJECTED
    client = client_for(w)
    r = client.post(
        "/api/quality/appeals/",
        {"assignment": failed.pk, "message": "I drew every car."},
        format="json",
    )
    assert r.status_code == 201, r.content
    again = client.post(
        "/api/quality/appeals/", {"assignment": failed.pk, "message": "again"}, format="json"
    )
    assert again.status_code == 409
    assert "once" in again.json()["error"]["message"]
    denied = client.post(f"/api/quality/appeals/{r.json()['id']}/decide/", {"uphold": True})
    assert denied.status_code == 403
    decided = client_for(admin_user).post(
        f"/api/quality/appeals/{r.json()['id']}/decide/", {"uphold": True}, format="json"
    )
    assert decided.status_code == 200, decided.content
    failed.refresh_from_db()
    assert failed.status == AssignmentStatus.APPROVED
    assert failed.pay_amount and failed.pay_amount > 0


def test_job_report_counts_replicas_and_is_private(
    world_factory, workers, no_gold, client_for, other_requester
):
    world = world_factory(n=1, overlap=2, overlap_max=4)
    for i, w in enumerate(workers(2)):
        claim_and_submit(world, w, PRECISE, seed=i)
    owner = client_for(world.job.requester)
    report = owner.get(f"/api/quality/jobs/{world.job.pk}/report/")
    assert report.status_code == 200
    data = assert_answers_schema(report, "get", "/api/quality/jobs/{job_id}/report/")
    assert data["replicas"]["used"] == 2
    assert data["replicas"]["saved_vs_fixed_max_overlap"] == 2
    assert data["microtasks"]["complete"] == 1
    assert sum(b["microtasks"] for b in data["agreement"]["histogram"]) == 1
    assert (
        client_for(other_requester).get(f"/api/quality/jobs/{world.job.pk}/report/").status_code
        == 404
    )
    assert owner.get(f"/quality/jobs/{world.job.pk}/").status_code in (200, 302)


@pytest.mark.slow
def test_crowd_with_20_percent_spammers_through_the_services(world_factory, workers, monkeypatch):
    """Issue 5 end to end: 10 workers, 2 spammers, overlap 3, gold mixed in at 30 %."""
    import random

    from tasks import claiming

    # The claim path draws gold from the system's entropy; a seeded draw makes the run the same
    # every time (with unseeded draws a spammer was, now and then, served too little gold).
    monkeypatch.setattr(claiming, "_rng", random.Random(11))
    from quality.crowd import drive_crowd
    from quality.scoring import score_boxes
    from quality.shapes import to_annotation
    from quality.simulator import BIASED, LAZY, SLOPPY, make_crowd

    world = world_factory(n=24, gold=12, overlap=3, overlap_max=4, gold_rate=0.3, seed=5)
    sims = make_crowd({PRECISE: 3, SLOPPY: 2, LAZY: 2, BIASED: 1, SPAMMER: 2}, seed=3)
    users = workers(len(sims))
    run = drive_crowd(
        job=world.job,
        crowd=list(zip(users, sims, strict=True)),
        truth_for=world.truth_for,
        frame_size=FRAME_SIZE,
        seed=1,
    )
    assert run.submissions > 70
    spammers = [u for u, s in zip(users, sims, strict=True) if s.profile == SPAMMER]
    for u in spammers:
        row = WorkerTrust.objects.get(worker=u, annotation_type="bbox")
        assert row.suspended, (u.pk, row.trust)
        assert GoldResult.objects.filter(worker=u).count() <= 20
    honest = [u for u, s in zip(users, sims, strict=True) if s.profile == PRECISE]
    assert all(not WorkerTrust.objects.get(worker=u).suspended for u in honest)
    ious = []
    for mt in world.regular():
        result = ConsensusResult.objects.filter(microtask=mt, is_current=True).first()
        if result is None or result.decision not in ("accept", "reviewed"):
            continue
        truth = world.truth_for(mt)
        s = score_boxes(truth, to_annotation(result.frames, world.classes))
        ious.append(s.mean_iou * s.tp / max(s.tp + s.fn, 1))
    print(
        "crowd run:",
        {"submissions": run.submissions, "settled": len(ious), "mean_iou": float(np.mean(ious))},
        {u.pk: GoldResult.objects.filter(worker=u).count() for u in spammers},
    )
    assert len(ious) >= 12
    assert np.mean(ious) >= 0.85


def test_track_consensus_through_the_services_stitches_identity_across_seams(
    world_factory, workers, no_gold
):
    from quality.scoring import score_tracks
    from quality.selectors import video_tracks
    from quality.shapes import to_annotation

    world = world_factory(
        n=3, overlap=3, annotation_type="track", segment=12, seam=3, n_objects=3, seed=11
    )
    crowd = workers(3, "track")
    for i, w in enumerate(crowd):
        for _ in range(3):
            claim_and_submit(world, w, PRECISE, seed=10 * i + _)
    assert (
        ConsensusResult.objects.filter(
            microtask__job=world.job, is_current=True, algorithm="tracks-assoc-v1"
        ).count()
        == 3
    )
    video = world.job.videos.get()
    stitched = video_tracks(video=video)
    assert [s["issues"] for s in stitched["seams"]] == [[], []]
    truth = world.scene_truth_range(0, 29)
    s = score_tracks(truth, to_annotation(stitched["frames"], world.classes))
    assert s.id_switches == 0
    assert s.idf1 > 0.95


def test_dawid_skene_over_a_classification_job_beats_the_per_microtask_vote(
    world_factory, workers, no_gold
):
    from quality.shapes import to_labels
    from quality.simulator import BIASED, SLOPPY

    world = world_factory(n=12, overlap=3, annotation_type="classify", seed=4)

    # Every frame's truth: the class of the largest visible object (or the first class).
    def true_labels(mt):
        out = {}
        for f, fb in world.truth_for(mt).items():
            if len(fb):
                area = (fb.boxes[:, 2] - fb.boxes[:, 0]) * (fb.boxes[:, 3] - fb.boxes[:, 1])
                out[f] = int(fb.labels[int(np.argmax(area))])
            else:
                out[f] = 0
        return out

    profiles = [PRECISE, SLOPPY, SLOPPY, BIASED, SPAMMER, SPAMMER]
    crowd = workers(len(profiles), "classify")
    sims = [SimulatedWorker(f"w{i}", p, seed=i) for i, p in enumerate(profiles)]
    for _ in range(12):
        for w, sim in zip(crowd, sims, strict=True):
            try:
                a = claiming.assignment_claim(worker=w, job_id=world.job.pk)
            except NothingAvailable:
                continue
            labels = sim.label(true_labels(a.microtask), n_classes=2)
            payload = {
                "labels": [{"frame": f, "label": world.classes[c]} for f, c in labels.items()]
            }
            claiming.assignment_submit(worker=w, assignment_id=a.pk, payload=payload)
    vote_hits = []
    for mt in world.regular():
        current = ConsensusResult.objects.get(microtask=mt, is_current=True)
        truth = true_labels(mt)
        got = to_labels(current.frames, world.classes)
        vote_hits += [got.get(f) == c for f, c in truth.items()]
    from quality.tasks import aggregate_classes

    written = aggregate_classes()  # the periodic task: every live classification job
    assert written > 0
    ds_hits = []
    for mt in world.regular():
        current = ConsensusResult.objects.get(microtask=mt, is_current=True)
        got = to_labels(current.frames, world.classes)
        ds_hits += [got.get(f) == c for f, c in true_labels(mt).items()]
        if mt.status == "complete":
            assert current.algorithm in ("dawid-skene-v1", "majority-vote-v1")
    assert np.mean(ds_hits) >= np.mean(vote_hits)


def test_processing_a_submission_twice_changes_nothing(world_factory, workers, gold_first):
    world = world_factory(n=1, gold=1, gold_rate=0.5)
    (w,) = workers(1)
    a = claim_and_submit(world, w, SPAMMER, seed=3)
    before = (GoldResult.objects.count(), TrustEvidence.objects.count(), a.status)
    assert services.submission_process(submission_id=a.submission.pk) == "already scored"
    a.refresh_from_db()
    assert (GoldResult.objects.count(), TrustEvidence.objects.count(), a.status) == before


def test_partial_credit_pays_for_the_share_of_frames_that_passed(
    world_factory, workers, gold_first
):
    from quality.boxes import FrameBoxes

    world = world_factory(n=1, gold=2, gold_rate=0.5, gold_pass_threshold=0.9)
    services.job_quality_policy_update(
        job_id=world.job.pk, by=world.job.requester, partial_credit=True, reject_below_ratio=0.0
    )
    full, partial = workers(2)
    exact = claim_and_submit(world, full, PRECISE, seed=1)
    a = claiming.assignment_claim(worker=partial, job_id=world.job.pk)
    truth = world.truth_for(a.microtask)
    frames = sorted(truth)
    # Right on the first three frames, nothing on the last two.
    ann = {f: (truth[f] if k < 3 else FrameBoxes.empty()) for k, f in enumerate(frames)}
    claiming.assignment_submit(
        worker=partial, assignment_id=a.pk, payload=world.payload_for(a.microtask, ann)
    )
    a.refresh_from_db()
    exact.refresh_from_db()
    result = GoldResult.objects.get(assignment=a)
    assert not result.passed
    assert len(result.frames_off) == 2
    assert a.status == AssignmentStatus.APPROVED
    assert 0 < a.pay_amount < exact.pay_amount
    # Paid for 3 of 5 frames: the credit payments applied is the share that passed.
    pay = LedgerTransaction.objects.get(key=f"assignment:{a.pk}:pay")
    assert "credit 0.6" in pay.memo


def test_polygon_job_consensus_and_gold(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=3, annotation_type="polygon")

    def polygons(mt, shift=0.0):
        out = []
        for f, fb in world.truth_for(mt).items():
            for box, lab in zip(fb.boxes, fb.labels, strict=True):
                x1, y1, x2, y2 = (float(v) for v in box)
                dx = shift * (x2 - x1)
                pts = [[x1 + dx, y1], [x2, y1], [x2, y2], [x1 + dx, y2]]
                out.append({"frame": f, "label": world.classes[lab], "points": pts})
        return {"polygons": out}

    crowd = workers(3, "polygon")
    for k, w in enumerate(crowd):
        a = claiming.assignment_claim(worker=w, job_id=world.job.pk)
        claiming.assignment_submit(
            worker=w, assignment_id=a.pk, payload=polygons(a.microtask, shift=0.05 * k)
        )
    result = ConsensusResult.objects.get(microtask=a.microtask, is_current=True)
    assert result.algorithm == "polygons-medoid-v1"
    assert result.decision == ConsensusDecision.ACCEPT
    score = services.score_frames(
        job=world.job,
        answer=result.frames,
        submitted=Assignment.objects.get(pk=a.pk).submission.frames,
    )
    assert score.score > 0.8


def test_a_single_replica_is_the_result_but_is_not_approved_by_agreement(
    world_factory, workers, no_gold
):
    world = world_factory(n=1, overlap=1, overlap_max=1)
    (w,) = workers(1)
    a = claim_and_submit(world, w, PRECISE, seed=1)
    mt = MicroTask.objects.get(pk=a.microtask_id)
    assert mt.status == MicroTaskStatus.COMPLETE
    assert ConsensusResult.objects.get(microtask=mt).replicas == 1
    assert a.status == AssignmentStatus.SUBMITTED
    assert not TrustEvidence.objects.filter(assignment=a).exists()
