"""Attacks on trust and on delivered work, by a malicious requester, over HTTP.

The requester controls their job's gold answers, their review answers and their rejections; none
of it may sink an honest worker's platform-wide trust (which gates every job, sets the pay tier
and suspends), and downloading the labels then rejecting the work must not unpay anyone without
an admin (``quality.standing``, ``tasks.reviewing``, ``tasks.exporting``). Each attack asserts it
failed and that no trust, ledger entry or balance it aimed at changed; the positive tests show
the same machinery still catches a bad worker when the evidence is validated.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.models import Qualification, QualificationStatus
from payments.models import EarningHold, LedgerAccount, LedgerTransaction
from payments.selectors import escrow_balance
from quality import services
from quality.boxes import FrameBoxes
from quality.models import (
    GoldAnswer,
    RequesterStanding,
    StandingEvidence,
    TrustEvidence,
    WorkerTrust,
)
from quality.simulator import PRECISE, SPAMMER, SimulatedWorker
from tasks.models import Assignment, AssignmentStatus, ExportedWork, JobExport, RejectionDispute
from tests.factories import AdminFactory, RequesterFactory
from tests.quality.conftest import FRAME_SIZE

pytestmark = pytest.mark.django_db(transaction=True)

CLAIM = "/api/work/claim/"


# --- helpers: what the attacker and the workers do, and what must not change ---------------------


def work(client, world, *, profile=PRECISE, seed: int = 0, annotation=None) -> Assignment:
    """A worker claims the next microtask of ``world``'s job and submits, over HTTP."""
    r = client.post(CLAIM, {"job": world.job.pk}, format="json")
    assert r.status_code == 201, r.content
    a = Assignment.objects.select_related("microtask").get(pk=r.json()["id"])
    if annotation is None:
        annotation = SimulatedWorker("w", profile, seed=seed).annotate(
            world.truth_for(a.microtask), frame_size=FRAME_SIZE, n_classes=len(world.classes)
        )
    r = client.post(
        f"/api/work/assignments/{a.pk}/submit/",
        {"payload": world.payload_for(a.microtask, annotation), "active_seconds": 30},
        format="json",
    )
    assert r.status_code == 200, r.content
    a.refresh_from_db()
    return a


def wrong_answer(world, mt):
    """Deliberately wrong gold: one tiny box in the corner of every frame, nothing else."""
    return {f: FrameBoxes.make([[0.0, 0.0, 8.0, 8.0]], [0], [0]) for f in world.frames_of(mt)}


def make_trusted(worker, annotation_type: str = "bbox") -> None:
    """Trust earned elsewhere on the platform (admin-validated checks): 0.86, above the bar
    for validating other people's answers."""
    for _ in range(3):
        services.trust_record(
            worker=worker, annotation_type=annotation_type, kind="gold", score=1.0, note="earned"
        )


def platform_trust(workers) -> dict:
    """Everything platform-wide trust is made of, per worker: rows and evidence."""
    return {
        w.pk: (
            sorted(
                WorkerTrust.objects.filter(worker=w).values_list(
                    "annotation_type", "trust", "tier", "suspended"
                )
            ),
            TrustEvidence.objects.filter(trust__worker=w).count(),
        )
        for w in workers
    }


def worker_money(workers) -> list:
    return sorted(
        LedgerAccount.objects.filter(worker__in=workers).values_list("worker_id", "kind", "balance")
    )


def standing(worker, requester) -> RequesterStanding:
    return RequesterStanding.objects.get(worker=worker, requester=requester, annotation_type="bbox")


@pytest.fixture
def other_job(world_factory):
    """An honest requester's box job: where a worker's platform-wide standing shows."""
    return world_factory(n=6, overlap=1, seed=7)


# --- Attack 1: wrong gold ---------------------------------------------------------------------


def test_a_requesters_wrong_gold_sinks_no_platform_trust_and_suspends_nobody(
    world_factory, workers, gold_first, client_for, other_job
):
    world = world_factory(n=9, gold=3, gold_rate=0.5, overlap=1, gold_by="", publish=False)
    attacker = client_for(world.job.requester)
    for mt in world.gold():
        r = attacker.put(
            f"/api/quality/microtasks/{mt.pk}/gold/",
            {"payload": world.payload_for(mt, wrong_answer(world, mt))},
            format="json",
        )
        assert r.status_code == 201, r.content
        assert r.json()["validation"] == "pending"
    assert attacker.post(f"/api/jobs/{world.job.pk}/publish/").status_code == 200

    honest = workers(3)
    for w in honest:
        make_trusted(w)
    trust_before = platform_trust(honest)
    money_before = worker_money(honest)

    done = []
    for i, w in enumerate(honest):
        client = client_for(w)
        for k in range(3):  # every gold microtask, answered correctly
            a = work(client, world, seed=10 * i + k)
            assert a.microtask.is_gold
            done.append(a)

    # The attack failed where it aimed: platform-wide trust, suspension, qualification.
    assert platform_trust(honest) == trust_before
    for w in honest:
        assert not WorkerTrust.objects.get(worker=w, annotation_type="bbox").suspended
        assert Qualification.objects.get(worker=w).status == QualificationStatus.PASSED
        # ...and they keep their work everywhere else.
        assert (
            client_for(w).post(CLAIM, {"job": other_job.job.pk}, format="json").status_code == 201
        )
    # Nor did the wrong answer unpay anyone: failing unvalidated gold rejects nothing by itself.
    assert worker_money(honest) == money_before
    assert {a.status for a in Assignment.objects.filter(pk__in=[a.pk for a in done])} == {
        AssignmentStatus.SUBMITTED
    }
    assert not LedgerTransaction.objects.filter(assignment__in=done).exists()

    # What the requester's gold can do: lower their standing on that requester's jobs, which
    # keeps them from that requester's work (and only that).
    for w in honest:
        s = standing(w, world.job.requester)
        assert s.excluded and s.standing < 0.5
        assert not s.evidence.filter(counts_platform_wide=True).exists()
        nothing = client_for(w).post(CLAIM, {"job": world.job.pk}, format="json")
        assert nothing.status_code == 404

    # Trusted workers disagree with every one of those answers: an admin's queue shows them.
    admin = client_for(AdminFactory())
    assert client_for(world.job.requester).get("/api/quality/gold/disputed/").status_code == 403
    disputed = admin.get("/api/quality/gold/disputed/")
    assert disputed.status_code == 200
    assert sorted(g["microtask"] for g in disputed.json()) == sorted(m.pk for m in world.gold())

    # The admin refuses them: the evidence stops counting even on the requester's jobs, the
    # exclusion lifts, and the refused microtasks are served no more.
    for mt in world.gold():
        r = admin.post(
            f"/api/quality/microtasks/{mt.pk}/gold/validate/", {"valid": False}, format="json"
        )
        assert r.status_code == 200 and r.json()["validation"] == "refused"
    for w in honest:
        s = standing(w, world.job.requester)
        assert not s.excluded
        assert StandingEvidence.objects.filter(standing=s, void=False).count() == 0
    again = work(client_for(honest[0]), world, seed=99)
    assert not again.microtask.is_gold
    assert platform_trust(honest) == trust_before


def test_a_gold_answer_workers_were_scored_against_cannot_be_rewritten(
    world_factory, workers, gold_first, client_for
):
    """Otherwise a requester could let trusted workers validate a right answer, then swap in a
    wrong one that would count platform-wide at once."""
    world = world_factory(n=2, gold=1, gold_rate=0.5, overlap=1, gold_by="requester")
    (w,) = workers(1)
    work(client_for(w), world)
    mt = world.gold()[0]
    r = client_for(world.job.requester).put(
        f"/api/quality/microtasks/{mt.pk}/gold/",
        {"payload": world.payload_for(mt, wrong_answer(world, mt))},
        format="json",
    )
    assert r.status_code == 409
    assert GoldAnswer.objects.get(microtask=mt).payload == world.payload_for(mt)


# --- Attack 2: rejecting honest work -------------------------------------------------------------


def _consensus_job(world_factory, workers, client_for, *, n: int, trusted: bool = True):
    world = world_factory(n=n, overlap=3, overlap_max=3)
    owner = client_for(world.job.requester)
    r = owner.patch(
        f"/api/quality/jobs/{world.job.pk}/policy/", {"auto_approve": False}, format="json"
    )
    assert r.status_code == 200, r.content
    crowd = workers(3)
    if trusted:
        for w in crowd:
            make_trusted(w)
    return world, owner, crowd


def test_a_requester_rejecting_work_that_agrees_with_consensus_moves_no_platform_trust(
    world_factory, workers, no_gold, client_for
):
    world, owner, crowd = _consensus_job(world_factory, workers, client_for, n=2)
    for i, w in enumerate(crowd):
        for k in range(2):
            work(client_for(w), world, seed=10 * i + k)
    trust_before = platform_trust(crowd)
    money_before = worker_money(crowd)
    pending = owner.get(f"/api/jobs/{world.job.pk}/submissions/?status=submitted").json()
    ids = [row["id"] for row in pending["results"]]
    assert len(ids) == 6  # everyone agreed; the requester reviews by hand

    r = owner.post(
        "/api/submissions/review/",
        {"action": "reject", "assignments": ids, "reason": "We do not like your boxes."},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert {row["status"] for row in r.json()["results"]} == {"rejected"}

    # Not exported, so the requester may refuse to pay for it; but their word alone moves no
    # platform trust: consensus of trusted workers says the work was right.
    assert platform_trust(crowd) == trust_before
    assert not TrustEvidence.objects.filter(kind="rejection").exists()
    assert worker_money(crowd) == money_before
    for w in crowd:
        ev = StandingEvidence.objects.filter(standing__worker=w, kind="rejection")
        assert ev.count() == 2
        assert not ev.filter(counts_platform_wide=True).exists()
        assert standing(w, world.job.requester).standing < 0.75  # it counts on their jobs


def test_a_rejection_that_agrees_with_trusted_consensus_does_count_platform_wide(
    world_factory, workers, no_gold, client_for
):
    world, owner, crowd = _consensus_job(world_factory, workers, client_for, n=1)
    good_a, good_b, bad = crowd
    work(client_for(good_a), world, seed=1)
    work(client_for(good_b), world, seed=2)
    spam = work(client_for(bad), world, profile=SPAMMER, seed=3)
    before = WorkerTrust.objects.get(worker=bad, annotation_type="bbox").trust
    r = owner.post(f"/api/submissions/{spam.pk}/reject/", {"reason": "Random boxes"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    ev = TrustEvidence.objects.get(kind="rejection", assignment=spam)
    assert ev.trust_after < ev.trust_before
    assert WorkerTrust.objects.get(worker=bad, annotation_type="bbox").trust < before
    assert StandingEvidence.objects.get(kind="rejection", assignment=spam).counts_platform_wide


def test_a_requesters_review_answer_moves_standing_only_an_admins_moves_trust(
    world_factory, workers, no_gold, client_for
):
    world = world_factory(n=2, overlap=2, overlap_max=2)
    a, b = workers(2)
    kept = work(client_for(a), world, seed=1)
    work(client_for(b), world, profile=SPAMMER, seed=2)  # disagreement: to review
    before = platform_trust([a, b])
    owner = client_for(world.job.requester)
    (item,) = owner.get("/api/quality/review/").json()
    mt = kept.microtask
    wrong = world.payload_for(mt, wrong_answer(world, mt))
    r = owner.post(f"/api/quality/review/{item['id']}/resolve/", {"payload": wrong}, format="json")
    assert r.status_code == 200, r.content
    assert platform_trust([a, b]) == before  # the requester's (wrong) answer: standing only
    assert StandingEvidence.objects.filter(kind="review", standing__worker=a).exists()

    # The same on the second microtask with an admin reviewing: platform-wide at once.
    kept2 = work(client_for(a), world, seed=3)
    work(client_for(b), world, profile=SPAMMER, seed=4)
    admin = client_for(AdminFactory())
    (item2,) = admin.get("/api/quality/review/").json()
    r = admin.post(
        f"/api/quality/review/{item2['id']}/resolve/",
        {"payload": world.payload_for(kept2.microtask)},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert TrustEvidence.objects.get(kind="review", assignment=kept2).score > 0.8


# --- Attack 3: export, then reject everything -------------------------------------------------


@pytest.fixture
def delivered(world_factory, workers, no_gold, client_for):
    """Two microtasks done by three agreeing workers (approved and paid by consensus), and the
    requester's download of their labels."""
    world = world_factory(n=2, overlap=3, overlap_max=3)
    crowd = workers(3)
    subs = [
        work(client_for(w), world, seed=10 * i + k) for k in range(2) for i, w in enumerate(crowd)
    ]
    for a in subs:
        a.refresh_from_db()
    assert {a.status for a in subs} == {AssignmentStatus.APPROVED}
    assert all(a.pay_amount > 0 for a in subs)
    owner = client_for(world.job.requester)
    r = owner.get(f"/api/jobs/{world.job.pk}/export/coco/")
    assert r.status_code == 200
    assert (r["X-Export-Microtasks"], r["X-Export-Withheld"]) == ("2", "0")
    return world, owner, crowd, subs


def test_rejecting_exported_work_opens_disputes_and_unpays_nobody(delivered, client_for, client):
    world, owner, crowd, subs = delivered
    money_before = worker_money(crowd)
    trust_before = platform_trust(crowd)
    ledger_before = LedgerTransaction.objects.count()
    escrow_before = escrow_balance(job=world.job)

    r = owner.post(
        "/api/submissions/review/",
        {"action": "reject", "assignments": [a.pk for a in subs], "reason": "Changed our mind"},
        format="json",
    )
    assert r.status_code == 202, r.content
    body = r.json()
    assert body["disputes"] == 6
    assert "admin" in body["message"] and "keeps the pay" in body["message"]
    assert {row["status"] for row in body["results"]} == {"approved"}
    # One at a time, the same: already with an admin.
    again = owner.post(f"/api/submissions/{subs[0].pk}/reject/", {"reason": "x"}, format="json")
    assert again.status_code == 409 and "pending" in again.json()["error"]["message"]

    # Nothing moved: no ledger entry, no balance, no trust; the work is still approved.
    assert LedgerTransaction.objects.count() == ledger_before
    assert worker_money(crowd) == money_before
    assert escrow_balance(job=world.job) == escrow_before
    assert platform_trust(crowd) == trust_before
    assert {a.status for a in Assignment.objects.filter(pk__in=[a.pk for a in subs])} == {
        AssignmentStatus.APPROVED
    }

    # Only an admin decides; the requester and the worker cannot.
    dispute = RejectionDispute.objects.get(assignment=subs[0])
    url = f"/api/disputes/{dispute.pk}/decide/"
    assert owner.post(url, {"uphold": True}, format="json").status_code == 403
    assert client_for(subs[0].worker).post(url, {"uphold": False}, format="json").status_code == 403
    admin_user = AdminFactory()
    admin = client_for(admin_user)
    queue = admin.get("/api/disputes/")
    assert queue.status_code == 200 and len(queue.json()) == 6
    assert len(owner.get("/api/disputes/").json()) == 6  # the requester follows theirs
    client.force_login(admin_user)  # the admin's review queue page lists them
    page = client.get("/quality/review/").content.decode()
    assert "Disputed rejections" in page and f"#{subs[0].pk}" in page

    # Upholding one unpays exactly that one.
    upheld = subs[0]
    pay = upheld.pay_amount
    r = admin.post(url, {"uphold": True, "note": "Boxes were off"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "upheld"
    upheld.refresh_from_db()
    assert (upheld.status, upheld.pay_amount) == (AssignmentStatus.REJECTED, 0)
    assert upheld.rejection_reason == "Changed our mind"
    assert LedgerTransaction.objects.count() == ledger_before + 1
    reversal = LedgerTransaction.objects.get(key=f"assignment:{upheld.pk}:pay-reversed")
    assert reversal.kind == "reversal"
    expected = [
        (w, k, b - (pay if (w == upheld.worker_id and k == "worker_pending") else 0))
        for w, k, b in money_before
    ]
    assert worker_money(crowd) == expected
    after = escrow_balance(job=world.job)
    assert after.available > escrow_before.available
    # The admin's decision is the platform's word: it counts in trust, for that worker only.
    assert list(
        TrustEvidence.objects.filter(kind="rejection").values_list("assignment", flat=True)
    ) == [upheld.pk]
    # An admin's decision is final: the worker cannot appeal it.
    appeal = client_for(upheld.worker).post(
        "/api/quality/appeals/", {"assignment": upheld.pk, "message": "no"}, format="json"
    )
    assert appeal.status_code == 409
    assert admin.post(url, {"uphold": True}, format="json").status_code == 409

    # Dismissing another leaves it approved and paid.
    other = RejectionDispute.objects.get(assignment=subs[1])
    r = admin.post(f"/api/disputes/{other.pk}/decide/", {"uphold": False}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert Assignment.objects.get(pk=subs[1].pk).status == AssignmentStatus.APPROVED
    assert worker_money(crowd) == expected
    # ...for good: the requester cannot queue the same question again.
    again = owner.post(f"/api/submissions/{subs[1].pk}/reject/", {"reason": "x"}, format="json")
    assert again.status_code == 409 and "dismissed" in again.json()["error"]["message"]


def test_a_dispute_decided_after_the_hold_period_moves_no_money(delivered, client_for):
    from payments.funding import earnings_release_due

    _world, owner, crowd, subs = delivered
    r = owner.post(f"/api/submissions/{subs[0].pk}/reject/", {"reason": "Late"}, format="json")
    assert r.status_code == 202
    assert r.json()["dispute"]["status"] == "pending"
    earnings_release_due(now=timezone.now() + timedelta(days=30))
    assert EarningHold.objects.filter(released=False).count() == 0
    money_before = worker_money(crowd)
    ledger_before = LedgerTransaction.objects.count()
    admin = client_for(AdminFactory())
    dispute = RejectionDispute.objects.get(assignment=subs[0])
    r = admin.post(f"/api/disputes/{dispute.pk}/decide/", {"uphold": True}, format="json")
    assert r.status_code == 409 and "payout reversal" in r.json()["error"]["message"]
    assert LedgerTransaction.objects.count() == ledger_before
    assert worker_money(crowd) == money_before
    dispute.refresh_from_db()
    assert dispute.status == "pending"
    assert Assignment.objects.get(pk=subs[0].pk).status == AssignmentStatus.APPROVED


def test_approved_work_that_was_never_exported_still_cannot_be_rejected(
    world_factory, workers, no_gold, client_for
):
    world = world_factory(n=1, overlap=3, overlap_max=3)
    subs = [work(client_for(w), world, seed=i) for i, w in enumerate(workers(3))]
    r = client_for(world.job.requester).post(
        f"/api/submissions/{subs[0].pk}/reject/", {"reason": "no"}, format="json"
    )
    assert r.status_code == 409
    assert not RejectionDispute.objects.exists()


# --- Exports carry approved work only -------------------------------------------------------------


def test_exports_carry_approved_work_only_and_are_recorded(
    world_factory, workers, no_gold, client_for
):
    world, owner, crowd = _consensus_job(world_factory, workers, client_for, n=3, trusted=False)
    by_mt: dict[int, list[Assignment]] = {}
    for i, w in enumerate(crowd):
        for k in range(3):
            a = work(client_for(w), world, seed=10 * i + k)
            by_mt.setdefault(a.microtask_id, []).append(a)
    first, second, third = (by_mt[mt.pk] for mt in world.regular())
    # Nothing approved yet: the download is empty, and says what it withheld.
    r = owner.get(f"/api/jobs/{world.job.pk}/export/coco/")
    assert r.status_code == 200
    assert json.loads(r.getvalue())["annotations"] == []
    assert r["X-Export-Withheld"] == "3"

    # First microtask: all approved. Second: one rejected, the rest approved. Third: pending.
    bulk = owner.post(
        "/api/submissions/review/",
        {"action": "approve", "assignments": [a.pk for a in first + second[1:]]},
        format="json",
    )
    assert bulk.status_code == 200
    assert (
        owner.post(
            f"/api/submissions/{second[0].pk}/reject/", {"reason": "Sloppy"}, format="json"
        ).status_code
        == 200
    )
    for fmt in ("coco", "mot", "cvat"):
        r = owner.get(f"/api/jobs/{world.job.pk}/export/{fmt}/")
        assert r.status_code == 200
        assert (r["X-Export-Microtasks"], r["X-Export-Withheld"]) == ("1", "2")
    coco = json.loads(owner.get(f"/api/jobs/{world.job.pk}/export/coco/").getvalue())
    frames = {img["frame_id"] for img in coco["images"]}
    mt1 = world.regular()[0]
    assert frames and frames <= set(world.frames_of(mt1))
    assert len(coco["annotations"]) >= len(frames)
    with zipfile.ZipFile(
        io.BytesIO(owner.get(f"/api/jobs/{world.job.pk}/export/mot/").getvalue())
    ) as z:
        mot_frames = {int(line.split(",")[0]) - 1 for line in z.read("gt/gt.txt").decode().split()}
    assert mot_frames == frames

    # Recorded: who, which format, and which submissions' labels the requester now has.
    exports = JobExport.objects.filter(job=world.job)
    assert exports.count() == 6
    assert set(exports.values_list("requested_by", flat=True)) == {world.job.requester_id}
    assert set(exports.values_list("format", flat=True)) == {"coco", "mot", "cvat"}
    assert set(ExportedWork.objects.values_list("assignment_id", flat=True)) == {
        a.pk for a in first
    }
    # Pending work that was never delivered is still the requester's to reject outright.
    r = owner.post(f"/api/submissions/{third[0].pk}/reject/", {"reason": "Sloppy"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    # Exports are the owner's: another requester gets nothing, and nothing is recorded.
    other = client_for(RequesterFactory())
    assert other.get(f"/api/jobs/{world.job.pk}/export/coco/").status_code == 404
    assert JobExport.objects.filter(job=world.job).count() == 6  # unchanged by the refused one


# --- Validated gold still works ---------------------------------------------------------------


def _spam_gold(client_for, world, spammer, n: int = 3) -> list[Assignment]:
    client = client_for(spammer)
    return [work(client, world, profile=SPAMMER, seed=50 + k) for k in range(n)]


def test_admin_gold_moves_platform_trust_and_suspends_a_spammer(
    world_factory, workers, gold_first, client_for, other_job
):
    world = world_factory(n=9, gold=3, gold_rate=0.5, overlap=1, gold_by="admin")
    (spammer,) = workers(1)
    failed = _spam_gold(client_for, world, spammer)
    assert all(a.microtask.is_gold for a in failed)
    row = WorkerTrust.objects.get(worker=spammer, annotation_type="bbox")
    assert row.suspended and row.trust < 0.5
    # The platform's word is counted once, platform-wide: not again as the requester's.
    assert not StandingEvidence.objects.filter(standing__worker=spammer).exists()
    assert {a.status for a in Assignment.objects.filter(pk__in=[a.pk for a in failed])} == {
        AssignmentStatus.REJECTED
    }
    # Suspended everywhere for the type, not only on this requester's jobs.
    refused = client_for(spammer).post(CLAIM, {"job": other_job.job.pk}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "suspended"


def test_requester_gold_validated_by_trusted_workers_then_counts_and_suspends(
    world_factory, workers, gold_first, client_for, other_job
):
    world = world_factory(n=9, gold=3, gold_rate=0.5, overlap=1, gold_by="requester")
    (spammer,) = workers(1)
    failed = _spam_gold(client_for, world, spammer)
    # Pending gold: the spammer's failures count on this requester's jobs only, for now.
    assert not WorkerTrust.objects.filter(worker=spammer, suspended=True).exists()
    assert not TrustEvidence.objects.filter(trust__worker=spammer).exists()
    assert standing(spammer, world.job.requester).excluded

    trusted = workers(2)
    for i, w in enumerate(trusted):
        make_trusted(w)
        for k in range(3):
            work(client_for(w), world, seed=20 * i + k)
    answers = GoldAnswer.objects.filter(microtask__job=world.job)
    assert set(answers.values_list("validation", "validated_via")) == {("validated", "agreement")}
    # Validated: every result on those answers counts platform-wide, the spammer's included.
    row = WorkerTrust.objects.get(worker=spammer, annotation_type="bbox")
    assert row.suspended, row.trust
    assert TrustEvidence.objects.filter(trust=row, kind="gold").count() == 3
    assert not StandingEvidence.objects.filter(
        standing__worker=spammer, counts_platform_wide=False
    ).exists()
    # The failures unvalidated gold left for review are decided now, as validated gold would.
    assert {a.status for a in Assignment.objects.filter(pk__in=[a.pk for a in failed])} == {
        AssignmentStatus.REJECTED
    }
    refused = client_for(spammer).post(CLAIM, {"job": other_job.job.pk}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "suspended"
    for w in trusted:  # the validators' own results counted too, upwards
        assert WorkerTrust.objects.get(worker=w, annotation_type="bbox").trust > 0.86


# --- The claim statement reads the standing --------------------------------------------------


@pytest.mark.parametrize("native", [True, False], ids=["claim_next", "portable"])
def test_an_excluded_standing_keeps_a_worker_from_that_requesters_jobs_only(
    native, world_factory, workers, no_gold, client_for, monkeypatch, other_job
):
    if not native:
        monkeypatch.setattr("tasks.work_selectors.native", lambda: False)
        monkeypatch.setattr("tasks.claiming.native", lambda: False)
    world = world_factory(n=2, overlap=1)
    (w,) = workers(1)
    RequesterStanding.objects.create(
        worker=w, requester=world.job.requester, annotation_type="bbox", excluded=True
    )
    client = client_for(w)
    assert client.post(CLAIM, {"job": world.job.pk}, format="json").status_code == 404
    assert client.post(CLAIM, {"job": other_job.job.pk}, format="json").status_code == 201
    # Another type of the same requester's work is not affected.
    RequesterStanding.objects.filter(worker=w).update(annotation_type="track")
    assert client.post(CLAIM, {"job": world.job.pk}, format="json").status_code == 201
