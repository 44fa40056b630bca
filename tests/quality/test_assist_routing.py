"""Model-assisted routing on the live path: a proven source turns confident microtasks into
verify-and-correct work with fewer replicas (escrow released in balanced ledger transactions,
priced by verify time), and a verifier who corrects much, or clicks without looking, sends the
microtask back to full annotation whose slots the ordinary fill path funds."""

import pytest
from django.db import transaction
from django.test import Client

from marketplace.money import format_money
from payments.selectors import active_policy, escrow_balance
from quality import assist
from quality.models import SourceComparison
from quality.services import routing
from tasks import claiming, reviewing, signals
from tasks.models import Assignment, AssistMode, MicroTask, MicroTaskStatus, Proposal, Slot
from tasks.proposals import assignment_view
from tests.openapi_check import assert_answers_schema
from tests.payments.conftest import assert_ledger_consistent
from tests.quality.test_assist_live import SOURCE, accept_all, draw, never_corrects, propose_truth

pytestmark = pytest.mark.django_db(transaction=True)


def prove_source(world, mt, *, hits=500, misses=0):
    """The source measured on gold elsewhere in the job (a proposal on ``mt``)."""
    p = Proposal.objects.filter(microtask=mt, source=SOURCE).first() or propose_truth(world, mt)
    SourceComparison.objects.create(
        job=world.job, microtask=mt, proposal=p, source=SOURCE, kind=assist.GOLD, hits=hits,
        misses=misses, confidence=0.9,
    )  # fmt: skip


def routed_world(world_factory, n=6, hits=500, misses=0):
    """A published job (overlap 3) with a proven source and proposals on its microtasks; returns
    the world, a microtask not drawn for audit, and its proposals."""
    world = world_factory(n=n, overlap=3, overlap_max=5)
    mts = world.regular()
    prove_source(world, mts[-1], hits=hits, misses=misses)
    target = next(m for m in mts[:-1] if assist.audit_draw((world.job.pk, m.pk)) >= 0.1)
    # Claimed first (claims go by priority), so a test's workers land on it.
    MicroTask.objects.filter(pk=target.pk).update(priority=10)
    Slot.objects.filter(microtask=target).update(priority=10)
    target.refresh_from_db()
    proposals = [propose_truth(world, m) for m in mts[:-1]]
    return world, target, proposals


def test_a_confident_microtask_of_a_proven_source_becomes_verify_work(world_factory):
    world, mt, _ = routed_world(world_factory)
    before = escrow_balance(job=world.job)
    old_price, old_reserved = mt.price, Slot.objects.get(microtask=mt, number=0).reserved_amount
    assert Slot.objects.filter(microtask=mt).count() == 3
    assert routing.microtask_route(microtask_id=mt.pk) == "verify"
    mt.refresh_from_db()
    assert mt.assist_mode == AssistMode.VERIFY and mt.replica_target == 1
    assert 1 <= mt.price <= old_price and mt.assist_full_price == old_price
    slot = Slot.objects.get(microtask=mt)
    after = escrow_balance(job=world.job)
    released = 2 * old_reserved + (old_reserved - slot.reserved_amount)
    assert mt.assist_saved == released > 0
    assert after.available - before.available == released
    assert before.reserved - after.reserved == released
    assert after.funded == before.funded
    assert_ledger_consistent()
    # Routing is final and at most once: a second call changes nothing.
    assert routing.microtask_route(microtask_id=mt.pk) == "not routable"
    assert escrow_balance(job=world.job).available == after.available


def test_an_unproven_source_leaves_microtasks_unrouted_until_it_is_proven(world_factory):
    world = world_factory(n=3, overlap=3)
    mts = world.regular()
    prove_source(world, mts[-1], hits=30, misses=10)  # 75 %: below the 0.95 bar
    for m in mts[:-1]:
        propose_truth(world, m)
    signals.proposals_stored.send(sender=Proposal, job_id=world.job.pk)  # eager Celery
    assert set(MicroTask.objects.filter(job=world.job).values_list("assist_mode", flat=True)) == {
        ""
    }
    assert MicroTask.objects.filter(job=world.job, replica_target=3).count() == 3


def test_routing_never_lowers_below_work_already_claimed(world_factory, workers, no_gold):
    world, mt, _ = routed_world(world_factory)
    a, b = workers(2)
    # Two claims on the same (only) microtask before routing.
    claiming.assignment_claim(worker=a, job_id=world.job.pk)
    claiming.assignment_claim(worker=b, job_id=world.job.pk)
    assert routing.microtask_route(microtask_id=mt.pk) == "full"
    mt.refresh_from_db()
    assert mt.assist_mode == AssistMode.FULL and mt.replica_target == 3
    assert Slot.objects.filter(microtask=mt).count() == 3


def test_a_careful_verifier_settles_verify_work_alone(world_factory, workers, no_gold):
    world, mt, proposals = routed_world(world_factory)
    routing.microtask_route(microtask_id=mt.pk)
    (w,) = workers(1)
    accept_all(world, w, proposals)  # a new verifier is presumed to look (quality.assist, 4)
    mt.refresh_from_db()
    assert mt.status == MicroTaskStatus.COMPLETE and mt.replica_target == 1
    assert mt.assist_mode == AssistMode.VERIFY
    assert_ledger_consistent()


def test_a_clicker_on_verify_work_sends_it_back_to_full_annotation(world_factory, workers, no_gold):
    # A source right 98 % of the time: a worker who never corrected 2000 of its shapes has
    # missed ~40 wrong ones (on a near-perfect source, never correcting would be honest).
    world, mt, proposals = routed_world(world_factory, hits=2000, misses=40)
    routing.microtask_route(microtask_id=mt.pk)
    mt.refresh_from_db()
    verify_price = mt.price
    (w,) = workers(1)
    never_corrects(w, world.job, shapes=2000)
    accept_all(world, w, proposals)
    mt.refresh_from_db()
    assert mt.assist_mode == AssistMode.FULL and mt.assist_reason.startswith("escalated")
    assert mt.status == MicroTaskStatus.OPEN and mt.replica_target == 3
    assert mt.price == mt.assist_full_price > verify_price and mt.assist_saved == 0
    # The ordinary fill path funded the missing slots.
    assert Slot.objects.filter(microtask=mt).count() == 3
    assert_ledger_consistent()
    # The verifier's work will be paid at the full price: its reservation covers it.
    verifier = Assignment.objects.get(microtask=mt, worker=w)
    full_slot = Slot.objects.filter(microtask=mt, assignment__isnull=True).first()
    assert verifier.reserved_amount == full_slot.reserved_amount
    assert Slot.objects.get(assignment=verifier).reserved_amount == verifier.reserved_amount
    # Full annotation from here on: the next worker draws with the proposal hidden.
    other, second, third = workers(3)
    a = claiming.assignment_claim(worker=other, job_id=world.job.pk)
    assert a.microtask_id == mt.pk
    assert assignment_view(a)["proposals"] == []
    claiming.assignment_release(worker=other, assignment_id=a.pk)
    for i, worker in enumerate((second, third)):
        assert draw(world, worker, seed=10 + i).microtask_id == mt.pk
    mt.refresh_from_db()
    assert mt.status == MicroTaskStatus.COMPLETE
    assert Assignment.objects.get(pk=verifier.pk).status == "approved"
    assert_ledger_consistent()


def test_a_verifier_who_redraws_the_proposal_escalates_it(world_factory, workers, no_gold):
    world, mt, _ = routed_world(world_factory)
    routing.microtask_route(microtask_id=mt.pk)
    (w,) = workers(1)
    draw(world, w, seed=3)  # took nothing from the proposal: it corrected everything
    mt.refresh_from_db()
    assert mt.assist_mode == AssistMode.FULL and mt.replica_target == 3


def test_the_requester_sees_the_sources_accuracy_the_verify_work_and_what_it_saved(
    world_factory, workers, no_gold
):
    world, mt, proposals = routed_world(world_factory)
    routing.microtask_route(microtask_id=mt.pk)
    (w,) = workers(1)
    a = accept_all(world, w, proposals)
    with transaction.atomic():
        a = Assignment.objects.select_for_update().get(pk=a.pk)
        reviewing.approve(assignment=a, by=world.job.requester)
    mt.refresh_from_db()
    client = Client()
    client.force_login(world.job.requester)
    page = client.get(f"/requester/jobs/{world.job.pk}/")
    assert page.status_code == 200
    report = page.context["assist"]
    (source,) = report["sources"]
    assert source["source"] == SOURCE and source["gold_shapes"] == 500
    assert 0.99 < source["lower"] < source["mean"] and source["proven"]
    assert report["verify"] == 1 and report["saved"] == mt.assist_saved > 0
    assert report["verify_hourly"] >= active_policy().floor_hourly  # 30 s of measured work
    html = page.content.decode()
    assert f'id="assist-saved">{format_money(mt.assist_saved, world.job.currency)}' in html
    assert 'data-source="motion"' in html and 'id="assist-verify">1<' in html
    # A visitor who is not signed in gets no page.
    assert Client().get(f"/requester/jobs/{world.job.pk}/").status_code in (302, 404)


def test_proposals_stored_route_the_job_audit_fraction_kept_on_full(world_factory):
    world, _, proposals = routed_world(world_factory, n=8)
    signals.proposals_stored.send(sender=Proposal, job_id=world.job.pk)  # eager Celery
    for p in proposals:
        mt = MicroTask.objects.get(pk=p.microtask_id)
        audited = assist.audit_draw((world.job.pk, mt.pk)) < assist.DEFAULT_POLICY.audit_fraction
        assert mt.assist_mode == (AssistMode.FULL if audited else AssistMode.VERIFY), mt.pk
        assert mt.replica_target == (3 if audited else 1)
        assert Slot.objects.filter(microtask=mt).count() == mt.replica_target
    assert_ledger_consistent()


def test_the_job_report_api_carries_the_assist_report(world_factory, client_for):
    world, mt, _ = routed_world(world_factory)
    routing.microtask_route(microtask_id=mt.pk)
    mt.refresh_from_db()
    r = client_for(world.job.requester).get(f"/api/quality/jobs/{world.job.pk}/report/")
    assert r.status_code == 200
    assist_report = assert_answers_schema(r, "get", "/api/quality/jobs/{job_id}/report/")["assist"]
    assert assist_report["verify"] == 1 and assist_report["saved"] == mt.assist_saved
    assert [s["source"] for s in assist_report["sources"]] == [SOURCE]
    assert assist_report["sources"][0]["lower"] > 0.99
    # Another requester's job is not theirs to read.
    other = world_factory(n=1)
    assert (
        client_for(other.job.requester).get(f"/api/quality/jobs/{world.job.pk}/report/").status_code
        == 404
    )
