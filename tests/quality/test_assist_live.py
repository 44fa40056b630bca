"""Model-assisted work on the live scoring path (real claim → submit → Celery eager → scoring):
accepted proposals are not independent agreement, sources are measured against consensus and
gold, workers' records on proposals move once per submission and feed the blind-accept flag."""

import threading

import pytest
from django.db import connection

from quality import assist, services
from quality.models import (
    ConsensusDecision,
    ConsensusResult,
    FraudFlag,
    SourceComparison,
    VerifierStats,
)
from quality.receivers import on_submission_stored
from quality.services import assisting
from quality.simulator import PRECISE, SimulatedWorker
from tasks import claiming, signals
from tasks.models import MicroTask, MicroTaskStatus, Proposal, ProposalConfig
from tests.quality.conftest import FRAME_SIZE

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE = "motion"


def propose_truth(world, mt, confidence=0.9):
    """A proposal of ``SOURCE`` on ``mt`` that is the truth itself."""
    ProposalConfig.objects.update_or_create(job=world.job, defaults={"sources": [SOURCE]})
    items = world.payload_for(mt)["boxes"]
    return Proposal.objects.create(
        microtask=mt,
        source=SOURCE,
        status="ok",
        shapes=items,
        confidences=[confidence] * len(items),
        confidence=confidence,
    )


def accept_all(world, worker, proposal):
    """Claim the next microtask and submit its proposal unchanged, every shape (``proposal``: the
    microtask's, or a list of proposals of which one is)."""
    a = claiming.assignment_claim(worker=worker, job_id=world.job.pk)
    if isinstance(proposal, list):
        proposal = next(p for p in proposal if p.microtask_id == a.microtask_id)
    assert a.microtask_id == proposal.microtask_id
    items = [
        {**shape, "from_proposal": f"{proposal.pk}:{i}"} for i, shape in enumerate(proposal.shapes)
    ]
    claiming.assignment_submit(
        worker=worker, assignment_id=a.pk, payload={"boxes": items}, active_seconds=30.0
    )
    a.refresh_from_db()
    return a


def draw(world, worker, seed):
    a = claiming.assignment_claim(worker=worker, job_id=world.job.pk)
    ann = SimulatedWorker("w", PRECISE, seed=seed).annotate(
        world.truth_for(a.microtask), frame_size=FRAME_SIZE, n_classes=len(world.classes)
    )
    claiming.assignment_submit(
        worker=worker,
        assignment_id=a.pk,
        payload=world.payload_for(a.microtask, ann),
        active_seconds=60.0,
    )
    a.refresh_from_db()
    return a


def never_corrects(worker, job, shapes=200):
    """A record on this job's proposals of a worker who accepted everything unchanged."""
    VerifierStats.objects.create(
        worker=worker,
        job=job,
        source=SOURCE,
        seen=shapes,
        corrected=0,
        proposed=shapes,
        accepted_unchanged=shapes,
    )


def test_three_workers_accepting_a_proposal_unchanged_do_not_settle_it(
    world_factory, workers, no_gold
):
    world = world_factory(n=1, overlap=3, overlap_max=5)
    mt = world.regular()[0]
    p = propose_truth(world, mt)
    crowd = workers(3)
    for w in crowd:
        never_corrects(w, world.job)
    for w in crowd:
        accept_all(world, w, p)
    mt.refresh_from_db()
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert result.decision == ConsensusDecision.ADD_REPLICA
    assert result.agreement < world.job.agreement_threshold
    assert mt.status == MicroTaskStatus.OPEN and mt.replica_target == 4
    # An anchored consensus never measures the source.
    assert not SourceComparison.objects.filter(source=SOURCE).exists()
    # Each submission moved its worker's record once.
    for w in crowd:
        s = VerifierStats.objects.get(worker=w, job=world.job, source=SOURCE)
        n = len(p.shapes)
        assert (s.seen, s.proposed, s.accepted_unchanged) == (200 + n, 200 + n, 200 + n)


def test_the_same_proposal_with_independent_drawing_settles_and_measures_the_source(
    world_factory, workers, no_gold
):
    world = world_factory(n=1, overlap=3, overlap_max=5)
    mt = world.regular()[0]
    p = propose_truth(world, mt)
    crowd = workers(3)
    for w in crowd:
        never_corrects(w, world.job)  # their record on accepts does not matter: they drew
    for i, w in enumerate(crowd):
        draw(world, w, seed=i)
    mt.refresh_from_db()
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert result.decision == ConsensusDecision.ACCEPT
    assert mt.status == MicroTaskStatus.COMPLETE
    cmp = SourceComparison.objects.get(proposal=p, kind=assist.CONSENSUS)
    assert cmp.hits == len(p.shapes) and cmp.misses == 0
    acc = assisting.source_accuracy_of(job_id=world.job.pk, source=SOURCE)
    assert acc.consensus_shapes == len(p.shapes) and acc.mean > 0.9


def test_a_wrong_proposal_counts_as_misses_against_consensus(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=3, overlap_max=5)
    mt = world.regular()[0]
    p = propose_truth(world, mt)
    # Every proposed box in a corner where no object is.
    wrong = [{**s, "box": [1, 1, 6, 6]} for s in p.shapes]
    Proposal.objects.filter(pk=p.pk).update(shapes=wrong)
    for i, w in enumerate(workers(3)):
        draw(world, w, seed=i)
    cmp = SourceComparison.objects.get(proposal=p, kind=assist.CONSENSUS)
    assert cmp.hits < cmp.misses
    low = assisting.source_accuracy_of(job_id=world.job.pk, source=SOURCE)
    assert low.mean < 0.5


def test_gold_measures_the_model_once_per_proposal(world_factory, workers, gold_first):
    world = world_factory(n=2, gold=1, gold_rate=0.5)
    g = world.gold()[0]
    p = propose_truth(world, g)
    served = [draw(world, w, seed=i) for i, w in enumerate(workers(2))]
    assert all(MicroTask.objects.get(pk=a.microtask_id).is_gold for a in served)
    rows = SourceComparison.objects.filter(proposal=p)
    assert [(r.kind, r.hits, r.misses) for r in rows] == [(assist.GOLD, len(p.shapes), 0)]


def test_a_worker_who_accepts_far_more_than_the_source_is_right_is_flagged(
    world_factory, workers, no_gold
):
    world = world_factory(n=2, overlap=1)
    first, second = world.regular()
    measured = propose_truth(world, second)
    # The source measured on gold: 70 % of its shapes right.
    SourceComparison.objects.create(
        job=world.job, microtask=second, proposal=measured, source=SOURCE, kind=assist.GOLD,
        hits=70, misses=30, confidence=0.9,
    )  # fmt: skip
    p = propose_truth(world, first)
    both = [p, measured]
    clicker, honest = workers(2)
    never_corrects(clicker, world.job, shapes=60)
    a = accept_all(world, clicker, both)
    flag = FraudFlag.objects.get(worker=clicker, kind="blind_accept")
    assert flag.assignment_id == a.pk and flag.job_id == world.job.pk
    assert flag.evidence["accepted_unchanged"] == 60 + len(p.shapes)
    # An honest worker with the source's own accept rate is not flagged.
    VerifierStats.objects.create(
        worker=honest, job=world.job, source=SOURCE, seen=60, corrected=20, proposed=60,
        accepted_unchanged=40,
    )  # fmt: skip
    accept_all(world, honest, both)
    assert not FraudFlag.objects.filter(worker=honest, kind="blind_accept").exists()


def test_gold_measures_whether_a_worker_fixes_the_models_errors(world_factory, workers, gold_first):
    world = world_factory(n=2, gold=1, gold_rate=0.5)
    g = world.gold()[0]
    p = propose_truth(world, g)
    frame = p.shapes[0]["frame"]
    label = p.shapes[0]["label"]
    wrong = [{"frame": frame, "label": label, "box": [1, 1, 6, 6]}] * 2  # nothing is there
    Proposal.objects.filter(pk=p.pk).update(shapes=p.shapes + wrong)
    p.refresh_from_db()
    right = len(p.shapes) - 2
    clicker, checker = workers(2)
    accept_all(world, clicker, p)
    a = claiming.assignment_claim(worker=checker, job_id=world.job.pk)
    assert a.microtask_id == g.pk
    kept = [{**s, "from_proposal": f"{p.pk}:{i}"} for i, s in enumerate(p.shapes[:right])]
    claiming.assignment_submit(
        worker=checker, assignment_id=a.pk, payload={"boxes": kept}, active_seconds=40.0
    )
    c = VerifierStats.objects.get(worker=clicker, source=SOURCE)
    k = VerifierStats.objects.get(worker=checker, source=SOURCE)
    assert (c.wrong_seen, c.wrong_fixed) == (2, 0)
    assert (k.wrong_seen, k.wrong_fixed) == (2, 2)


def test_a_workers_record_loses_no_update_when_their_submissions_are_scored_at_once(
    world_factory, workers, no_gold
):
    """Scorings of one worker's submissions on different microtasks, on parallel threads (each
    its own connection), each add to the same ``VerifierStats`` row: none is lost."""
    world = world_factory(n=4, overlap=1)
    proposals = [propose_truth(world, mt) for mt in world.regular()]
    (w,) = workers(1)
    signals.submission_stored.disconnect(dispatch_uid="quality.on_submission_stored")
    try:
        done = [accept_all(world, w, proposals) for _ in proposals]
    finally:
        signals.submission_stored.connect(
            on_submission_stored, dispatch_uid="quality.on_submission_stored"
        )
    errors: list[BaseException] = []
    start = threading.Barrier(len(done))

    def run(submission_id: int) -> None:
        try:
            start.wait(10)
            services.submission_process(submission_id=submission_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a.submission.pk,)) for a in done]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads) and errors == []
    n = sum(len(p.shapes) for p in proposals)
    s = VerifierStats.objects.get(worker=w, job=world.job, source=SOURCE)
    assert (s.seen, s.proposed, s.accepted_unchanged, s.corrected) == (n, n, n, 0)
    # Scoring again (a redelivered message) does not count them twice.
    for a in done:
        services.submission_process(submission_id=a.submission.pk)
    s.refresh_from_db()
    assert s.proposed == n
