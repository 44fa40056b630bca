"""Attacks a worker can try, done as the attacker does them: over HTTP, in parallel where it helps.

Each test asserts that the attack fails and that no ledger entry, balance or payout changed
beyond what honest work earns (DESIGN invariants 9 and 10; issue #10's worker findings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from marketplace.models import Qualification, QualificationStatus
from payments import pricing
from payments.ledger import AccountKind
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction, Payout
from payments.selectors import active_policy
from quality import services as quality_services
from quality.models import FraudFlag, TrustEvidence, WorkerTrust
from tasks import claiming, suspensions, worktime
from tasks.models import (
    Assignment,
    AssignmentStatus,
    QualificationAnswer,
    QualificationAttempt,
    QualificationItem,
)
from tests.factories import AdminFactory, WorkerFactory
from tests.tasks.claim_fixtures import manifest_for, published_job, qualify, store_frames

CLAIM = "/api/work/claim/"
QUALIFY = "/api/work/qualifications/bbox/"


@pytest.fixture
def no_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def api(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def money() -> tuple:
    """Everything money: transactions, entries, every account's balance, payouts."""
    balances = dict(
        LedgerEntry.objects.values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    return (
        LedgerTransaction.objects.count(),
        LedgerEntry.objects.count(),
        balances,
        Payout.objects.count(),
    )


def in_parallel(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` for i in range(n) in real threads released together; their results."""
    results: list[object] = [None] * n
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a request hung (deadlock?)"
    assert errors == []
    return results


def payload_for(view: dict) -> dict:
    frame = view["task"]["annotate_frames"][0]
    return {"boxes": [{"frame": frame, "label": "car", "box": [10, 10, 60, 60]}]}


# --- 1. Inflated active time over parallel claims ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_claims_with_inflated_time_are_credited_at_most_the_wall_clock(
    monkeypatch, no_gold
):
    """The finding: several claims held at once, each reporting (almost) all of the wall-clock
    time as active, so the fair-pay floor paid several times over."""
    job = published_job(n=6, overlap=1, gold_rate=0.0, price=2)
    attacker = qualify(WorkerFactory())
    requester = api(job.requester)
    before = money()

    # Three claims at once (the most allowed), from three tabs.
    views = in_parallel(3, lambda i: api(attacker).post(CLAIM, {}, format="json"))
    assert [r.status_code for r in views] == [201, 201, 201]
    views = [r.json() for r in views]
    # 217 s pass; every tab heartbeats, then submits, claiming all of it and more as active.
    start = min(Assignment.objects.filter(worker=attacker).values_list("claimed_at", flat=True))
    later = start + timedelta(seconds=217)
    monkeypatch.setattr(claiming, "_now", lambda: later)

    def heartbeat_and_submit(i: int) -> tuple[int, int]:
        client, a = api(attacker), views[i]
        hb = client.post(
            f"/api/work/assignments/{a['id']}/heartbeat/", {"active_seconds": 216}, format="json"
        )
        sub = client.post(
            f"/api/work/assignments/{a['id']}/submit/",
            {"payload": payload_for(a), "active_seconds": 3600},
            format="json",
        )
        return hb.status_code, sub.status_code

    assert in_parallel(3, heartbeat_and_submit) == [(200, 200)] * 3

    rows = list(Assignment.objects.filter(worker=attacker))
    wall = worktime.union_seconds(
        ((a.claimed_at - start).total_seconds(), (a.submitted_at - start).total_seconds())
        for a in rows
    )
    credited = sum(a.active_seconds for a in rows)
    assert wall == pytest.approx(217, abs=1)
    assert credited <= wall + 1e-6
    # What was reported and could not be credited is a fraud signal, with its evidence.
    flags = FraudFlag.objects.filter(worker=attacker, kind="inflated_time")
    assert flags.count() == 3
    assert all(f.evidence["reported_seconds"] == 3600 for f in flags)
    assert sum(f.evidence["credited_seconds"] for f in flags) <= 217 + 0.5

    for a in rows:
        r = requester.post(f"/api/submissions/{a.pk}/approve/")
        assert r.status_code == 200, r.content
    paid = [a.pay_amount for a in Assignment.objects.filter(worker=attacker)]
    policy = active_policy()
    # Honest work over 217 s of wall clock: at most the base pay of each task plus the floor
    # on the wall-clock time (plus one unit of rounding per task).
    honest = (
        sum(pricing.max_pay(price=2, policy=policy) for _ in rows)
        + pricing.floor_pay(seconds=wall, hourly=policy.floor_for("US"))
        + len(rows)
    )
    assert sum(paid) <= honest
    # ... where crediting each report would have paid the floor three times over.
    assert 3 * pricing.floor_pay(seconds=216, hourly=policy.floor_for("US")) > honest
    # The money that moved is exactly those approvals: the worker's balance is their pay.
    pending = LedgerAccount.objects.get(kind=AccountKind.WORKER_PENDING, worker=attacker)
    assert LedgerEntry.objects.filter(account=pending).aggregate(s=Sum("amount"))["s"] == sum(paid)
    after = money()
    assert after[0] - before[0] == len(rows)  # one pay transaction per approval, nothing else
    assert after[3] == before[3]


@pytest.mark.django_db(transaction=True)
def test_reported_time_never_exceeds_the_claim_or_what_other_claims_used(monkeypatch, no_gold):
    """Sequential claims: the second reports time the first already used."""
    published_job(n=4, overlap=1, gold_rate=0.0)
    attacker = qualify(WorkerFactory())
    client = api(attacker)
    t0 = timezone.now()
    monkeypatch.setattr(claiming, "_now", lambda: t0)
    first = client.post(CLAIM, {}, format="json").json()
    second = client.post(CLAIM, {}, format="json").json()
    monkeypatch.setattr(claiming, "_now", lambda: t0 + timedelta(seconds=100))
    r = client.post(
        f"/api/work/assignments/{first['id']}/submit/",
        {"payload": payload_for(first), "active_seconds": 100},
        format="json",
    )
    assert r.status_code == 200 and r.json()["active_seconds"] == 100
    monkeypatch.setattr(claiming, "_now", lambda: t0 + timedelta(seconds=130))
    r = client.post(
        f"/api/work/assignments/{second['id']}/submit/",
        {"payload": payload_for(second), "active_seconds": 130},
        format="json",
    )
    assert r.status_code == 200
    assert r.json()["active_seconds"] == pytest.approx(30)
    assert FraudFlag.objects.filter(assignment_id=second["id"], kind="inflated_time").exists()
    assert not FraudFlag.objects.filter(assignment_id=first["id"]).exists()


# --- 2. More claims than the cap, in parallel --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_claims_cannot_pass_the_cap(no_gold, settings):
    settings.CLAIM_MAX_CONCURRENT = 3
    job = published_job(n=20, overlap=1, gold_rate=0.0)
    attacker = qualify(WorkerFactory())
    before = money()

    results = in_parallel(10, lambda i: api(attacker).post(CLAIM, {}, format="json"))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [409] * 7
    refused = next(r.json()["error"] for r in results if r.status_code == 409)
    assert refused["code"] == "claim_limit"
    assert "submit or release one" in refused["message"].lower()
    live = Assignment.objects.filter(worker=attacker, status=AssignmentStatus.CLAIMED)
    assert live.count() == 3
    assert sorted(live.values_list("claim_seat", flat=True)) == [1, 2, 3]
    # Another round, one job at a time and through the page: still three.
    assert api(attacker).post(CLAIM, {"job": job.pk}, format="json").status_code == 409
    page = session(attacker).post("/work/claim/", follow=True)
    assert "the most you may hold at once" in page.content.decode()
    assert live.count() == 3
    # Releasing one frees a seat for exactly one more claim.
    api(attacker).post(f"/api/work/assignments/{live.first().pk}/release/")
    again = in_parallel(4, lambda i: api(attacker).post(CLAIM, {}, format="json"))
    assert sorted(r.status_code for r in again) == [201, 409, 409, 409]
    assert live.count() == 3
    assert money() == before  # claims never move money


@pytest.mark.django_db
def test_an_overdue_claim_does_not_hold_its_seat(no_gold, settings):
    settings.CLAIM_MAX_CONCURRENT = 1
    published_job(n=3, overlap=1, gold_rate=0.0)
    worker = qualify(WorkerFactory())
    client = api(worker)
    first = client.post(CLAIM, {}, format="json").json()
    assert client.post(CLAIM, {}, format="json").status_code == 409
    # Abandoned past its deadline before the sweep ran: the next claim expires it and goes on.
    Assignment.objects.filter(pk=first["id"]).update(deadline=timezone.now() - timedelta(seconds=1))
    assert client.post(CLAIM, {}, format="json").status_code == 201
    assert Assignment.objects.get(pk=first["id"]).status == AssignmentStatus.EXPIRED


# --- 3. The suspended worker retakes the test and claims ---------------------------------------


@pytest.fixture
def bbox_test():
    items = []
    for i, truth in enumerate(([[10, 10, 60, 60]], [[100, 100, 200, 150]])):
        item = QualificationItem.objects.create(
            annotation_type="bbox",
            position=i,
            label_classes=["car"],
            frame_start=0,
            frame_end=0,
            frames=[0],
            manifest=manifest_for([0]),
        )
        QualificationAnswer.objects.create(
            item=item, payload={"boxes": [{"frame": 0, "label": "car", "box": b} for b in truth]}
        )
        items.append((item, truth))
    # Perfect answers: what an attacker who kept their earlier answers would send.
    return {
        str(item.pk): {"boxes": [{"frame": 0, "label": "car", "box": b} for b in truth]}
        for item, truth in items
    }


def suspend_by_quality(worker) -> WorkerTrust:
    """Three failed gold checks, recorded as the gold path records them."""
    for k in range(3):
        quality_services.trust_record(
            worker=worker, annotation_type="bbox", kind="gold", score=0.0, note=f"gold {k}"
        )
    row = WorkerTrust.objects.get(worker=worker, annotation_type="bbox")
    assert row.suspended
    return row


@pytest.mark.django_db
def test_a_suspended_worker_cannot_retake_the_test_or_claim_until_the_terms_allow(
    bbox_test, no_gold, monkeypatch, settings
):
    settings.QUALIFICATION_SUSPENSION_COOLDOWN_DAYS = 14
    settings.QUALIFICATION_SUSPENSION_ADMIN_AFTER = 2
    job = published_job(n=6, overlap=1, gold_rate=0.0)
    attacker = qualify(WorkerFactory())
    client = api(attacker)
    trust_before = suspend_by_quality(attacker)
    evidence_before = TrustEvidence.objects.filter(trust=trust_before).count()
    q = Qualification.objects.get(worker=attacker, annotation_type="bbox")
    until = q.suspended_until
    assert until is not None and until > timezone.now() + timedelta(days=13)
    shown = f"{until:%Y-%m-%d %H:%M} UTC"
    before = money()

    # The retake, with perfect answers: refused, saying why and until when.
    r = client.post(QUALIFY, {"answers": bbox_test}, format="json")
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "suspended" and shown in err["message"]
    assert err["suspended_until"] == until.isoformat()
    assert "Quality below the bar" in err["message"]
    # Every claim path: any job, this job, the page.
    for body in ({}, {"job": job.pk}):
        r = client.post(CLAIM, body, format="json")
        assert r.status_code == 403 and r.json()["error"]["code"] == "suspended"
        assert shown in r.json()["error"]["message"]
    page = session(attacker).post("/work/claim/", {"job": job.pk}, follow=True)
    assert shown in page.content.decode()
    # The worker pages say the same, and offer no test to take.
    board = session(attacker).get("/work/").content.decode()
    assert shown in board and 'href="/work/qualify/bbox/"' not in board
    assert shown in session(attacker).get("/work/qualify/bbox/").content.decode()
    listed = client.get("/api/work/qualifications/").json()["results"]
    bbox = next(row for row in listed if row["annotation_type"] == "bbox")
    assert bbox["status"] == "suspended" and bbox["suspension"]["may_retake"] is False
    assert not Assignment.objects.filter(worker=attacker).exists()
    assert not QualificationAttempt.objects.filter(worker=attacker).exists()
    assert money() == before

    # After the cooldown: the retake is allowed and ends the suspension, with history kept.
    monkeypatch.setattr(suspensions, "now", lambda: until + timedelta(seconds=1))
    r = client.post(QUALIFY, {"answers": bbox_test}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "passed"
    assert client.post(CLAIM, {}, format="json").status_code == 201
    row = WorkerTrust.objects.get(pk=trust_before.pk)
    assert not row.suspended
    assert row.trust == trust_before.trust  # trust starts from where it was
    assert TrustEvidence.objects.filter(trust=row).count() == evidence_before
    q.refresh_from_db()
    assert (q.suspensions, q.suspended_at is not None) == (1, True)

    # Falling below the bar again: the second suspension lasts until an admin lifts it.
    quality_services.trust_record(worker=attacker, annotation_type="bbox", kind="gold", score=0)
    q.refresh_from_db()
    assert (q.status, q.suspended_until, q.suspensions) == ("suspended", None, 2)
    monkeypatch.setattr(suspensions, "now", lambda: until + timedelta(days=3650))
    r = client.post(QUALIFY, {"answers": bbox_test}, format="json")
    assert r.status_code == 403 and "administrator lifts it" in r.json()["error"]["message"]
    assert r.json()["error"]["suspended_until"] is None
    assert client.post(CLAIM, {}, format="json").status_code == 403

    # The admin lifts it (admin action); the worker may claim again.
    admin = session(AdminFactory())
    r = admin.post(
        "/admin/quality/workertrust/",
        {"action": "lift_suspensions", "_selected_action": [row.pk]},
        follow=True,
    )
    assert r.status_code == 200
    assert Qualification.objects.get(pk=q.pk).status == QualificationStatus.PASSED
    assert not WorkerTrust.objects.get(pk=row.pk).suspended
    assert client.post(CLAIM, {}, format="json").status_code == 201


# --- 4. Probing other workers' assignment ids --------------------------------------------------


@pytest.mark.django_db
def test_other_workers_assignments_are_indistinguishable_from_missing_ones(media, no_gold):
    job = published_job(n=2, overlap=1, gold_rate=0.0)
    store_frames(job)
    owner, prober = qualify(WorkerFactory()), qualify(WorkerFactory())
    theirs = api(owner).post(CLAIM, {}, format="json").json()["id"]
    missing = Assignment.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    before = money()

    def answers(pk: int) -> list[tuple[int, bytes]]:
        c, page = api(prober), session(prober)
        base = f"/api/work/assignments/{pk}/"
        responses = [
            c.get(base),
            c.post(base + "heartbeat/", {"active_seconds": 5}, format="json"),
            c.post(base + "release/"),
            c.post(base + "submit/", {"payload": {"boxes": []}}, format="json"),
            page.get(f"/work/assignments/{pk}/"),
            page.get(f"/work/assignments/{pk}/frames/0.jpg"),
            c.get(f"/work/assignments/{pk}/frames/0.jpg"),
        ]
        return [(r.status_code, r.content) for r in responses]

    probed, unknown = answers(theirs), answers(missing)
    assert [code for code, _ in probed] == [404] * len(probed)
    assert probed == unknown  # same statuses and the same bodies
    a = Assignment.objects.get(pk=theirs)
    assert (a.status, a.heartbeat_at, a.active_seconds) == ("claimed", None, None)
    assert not hasattr(a, "submission") or a.submission is None
    assert money() == before


# --- 5. Frames after the claim ended -----------------------------------------------------------


@pytest.mark.django_db
def test_frames_are_readable_only_while_the_claim_is_live_or_awaiting_review(
    media, no_gold, settings
):
    settings.CLAIM_MAX_CONCURRENT = 3
    job = published_job(n=3, overlap=1, gold_rate=0.0)
    store_frames(job)
    worker = qualify(WorkerFactory())
    client, page = api(worker), session(worker)
    staff = session(AdminFactory())
    released, expired, submitted = (client.post(CLAIM, {}, format="json").json() for _ in "123")

    def frame(view: dict, who: Client = page) -> int:
        return who.get(view["task"]["frames"][0]["url"]).status_code

    assert [frame(v) for v in (released, expired, submitted)] == [200, 200, 200]
    before = money()
    client.post(f"/api/work/assignments/{released['id']}/release/")
    assert frame(released) == 404
    # Past its deadline the claim is over, before and after the sweep expires it.
    Assignment.objects.filter(pk=expired["id"]).update(
        deadline=timezone.now() - timedelta(seconds=1)
    )
    assert frame(expired) == 404
    claiming.assignments_expire_overdue()
    assert frame(expired) == 404
    assert money() == before
    # Submitted, a decision pending: the worker may look at what they sent.
    r = client.post(
        f"/api/work/assignments/{submitted['id']}/submit/",
        {"payload": payload_for(submitted)},
        format="json",
    )
    assert r.status_code == 200
    assert frame(submitted) == 200
    # Decided: no longer (staff keep access, e.g. to judge an appeal).
    assert (
        api(job.requester).post(f"/api/submissions/{submitted['id']}/approve/").status_code == 200
    )
    assert frame(submitted) == 404
    assert frame(submitted, staff) == 200
    assert frame(released, staff) == 200
