"""The demo run: a marketplace that lives, end to end, through the real services.

``python manage.py demo`` calls :func:`demo_run` and prints its :class:`DemoSummary`; the test
suite calls it at a small size and asserts on the summary. One run:

1. generates videos with known objects (``tasks.synthetic``) and ingests them into a job of the
   demo requester (``tasks.ingestion_uploads`` and ``tasks.ingestion_pipeline``, in-process);
2. makes a share of the microtasks gold, the admin's answers being the generated truth;
3. funds the job through Stripe — the local Stripe server (``stripe_local``, a test double): a
   Checkout Session for the quote (``tasks.paying.job_funding_create``, the budget raised to it),
   paid on the server's test page with the test card, then credited to escrow by
   ``payments.funding.funding_refresh``, which re-reads the session from Stripe as the return
   page does — and publishes it;
4. runs a simulated crowd (``quality.simulator`` profiles, spammers and sloppy workers among
   them) through the claim and submit services (``quality.crowd.drive_crowd``); consensus, gold
   scoring, trust, dynamic overlap, suspensions and approvals by evidence happen in the real
   submission pipeline (Celery tasks, run in-process);
5. the requester approves what evidence left pending (``tasks.reviewing``), earnings leave their
   hold, every crowd worker connects a Stripe account, and a payout run pays them
   (``payments.payouts``), transfers created on the local Stripe server;
6. exports the dataset in every format the job's type allows (``quality.exporting``), recorded
   as the requester's downloads;
7. measures: accuracy of the delivered labels against the truth, replicas used, cost against
   the funded budget, effective hourly pay against the fair-pay floor, payouts, and the
   invariants (ledger balanced, spend within escrow, replicas within target, one assignment per
   worker and microtask, a transfer per paid payout, credited time within wall-clock time).

**The simulated clock.** Simulated workers report minutes of work that take milliseconds to
compute; credited time may not exceed wall-clock time (invariant 9), so the crowd works on a
simulated clock through the claim path's clock seam (``tasks.claiming._now``): every claim
starts when the previous submission ended, and a submission comes ``seconds`` after its claim.
The clock starts a day in the past, so the crowd "worked yesterday". The hold on earnings is
likewise passed by releasing them as of the end of their hold period.

It sits with the entry points (it drives every app, like ``load_demo``); nothing imports it but
the command and the tests.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from marketplace import services
from marketplace.management.commands.load_demo import DEMO_PASSWORD
from marketplace.models import (
    AnnotationType,
    Job,
    JobStatus,
    Qualification,
    QualificationStatus,
    Role,
    User,
)
from payments import connect, funding, payouts, reconciliation, transfers
from payments.funding import STRIPE_MINIMUM_CHARGE
from payments.ledger import AccountKind
from payments.models import (
    FundingStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payout,
    PayoutStatus,
)
from payments.selectors import active_policy, escrow_balance, worker_earnings
from quality import exporting
from quality import services as quality_services
from quality.crowd import drive_crowd
from quality.models import ConsensusResult, WorkerTrust
from quality.scoring import score_boxes
from quality.selectors import job_report
from quality.shapes import annotation_to_payload, to_annotation
from quality.simulator import PRECISE, SLOPPY, SPAMMER, SimulatedWorker, make_crowd, scene_truth
from tasks import claiming, ingestion_pipeline, ingestion_uploads, paying, reviewing
from tasks.budget import available, slot_reservation
from tasks.exports import counts
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus, Video
from tasks.quoting import job_quote
from tasks.synthetic import Scene, make_scene
from tasks.video import write_video
from tasks.worktime import union_seconds

CLASSES = ["car", "person"]
# Where Checkout sends the requester back (the demo pays on the server, so nobody follows it).
DEMO_RETURN_URL = "http://127.0.0.1:8000/requester/jobs/"
FPS = 15.0
WIDTH, HEIGHT = 320, 240
SETTLED = ("accept", "reviewed")  # consensus decisions that settle a microtask

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class DemoError(Exception):
    """The demo cannot run here (it says why)."""


@dataclass(frozen=True)
class DemoOptions:
    videos: int = 3
    seconds: float = 10.0  # length of each generated video
    objects: int = 3  # objects per video
    workers: int = 8  # the crowd, spammers and sloppy workers included
    spammers: int = 2
    sloppy: int = 2
    annotation_type: str = AnnotationType.BBOX  # bbox or track
    gold_share: float = 0.25  # share of the microtasks made gold
    overlap_min: int = 2
    overlap_max: int = 3
    seed: int = 0

    def check(self) -> None:
        if self.annotation_type not in (AnnotationType.BBOX, AnnotationType.TRACK):
            raise DemoError("The demo runs box (bbox) or track jobs.")
        if not 1 <= self.videos <= 20:
            raise DemoError("--videos: 1 to 20.")
        if not 2 <= self.seconds <= 120:
            raise DemoError("--seconds: 2 to 120.")
        if not 1 <= self.objects <= 12:
            raise DemoError("--objects: 1 to 12.")
        if self.spammers < 0 or self.sloppy < 0 or self.workers > 200:
            raise DemoError("--workers: at most 200; --spammers and --sloppy not negative.")
        if self.workers - self.spammers - self.sloppy < self.overlap_max:
            raise DemoError(
                f"The crowd needs at least {self.overlap_max} careful workers besides spammers "
                "and sloppy ones (raise --workers)."
            )
        if not 0 <= self.gold_share < 1:
            raise DemoError("--gold: a share in [0, 1).")


@dataclass
class WorkerLine:
    username: str
    profile: str
    submissions: int
    approved: int
    rejected: int
    suspended: bool
    earned: int  # approved pay, minor units
    paid_out: int
    effective_hourly: int | None


@dataclass
class DemoSummary:
    job_id: int
    title: str
    currency: str
    videos: int
    microtasks: int
    gold_microtasks: int
    submissions: int
    # accuracy of the delivered (exported) labels against the generated truth, per microtask
    accuracy_f1: float
    accuracy_iou: float
    settled_microtasks: int
    reviews_open: int
    replicas_per_microtask: float | None
    overlap: tuple[int, int]
    budget: int  # what the requester funded (the quote), minor units
    spent: int  # paid to workers + platform fees
    paid_to_workers: int
    fees: int
    floor_hourly: int
    effective_hourly: int | None  # over the honest workers' paid time
    payouts: int
    payouts_amount: int
    transfers: int
    exports: dict[str, int] = field(default_factory=dict)  # format -> bytes
    export_counts: dict[str, int] = field(default_factory=dict)
    workers: list[WorkerLine] = field(default_factory=list)
    invariants: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class SimClock:
    """The crowd's clock: it moves only forward, by the simulated work."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def read(self) -> datetime:
        return self.now


@contextlib.contextmanager
def _simulation(clock: SimClock, seed: int) -> Iterator[None]:
    """The claim path on the simulated clock (its clock seam, ``tasks.claiming._now``) and with
    a seeded draw of gold (``tasks.claiming._rng``), so that a run is the same every time."""
    real_now, real_rng = claiming._now, claiming._rng
    claiming._now, claiming._rng = clock.read, random.Random(seed)
    try:
        yield
    finally:
        claiming._now, claiming._rng = real_now, real_rng


def _user(username: str, role: str, **extra) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user = services.user_create(
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            email=f"{username}@demo.test",
            **extra,
        )
    return user


def _frames_of(job: Job, mt: MicroTask) -> list[int]:
    if job.annotation_type == AnnotationType.TRACK or not mt.frames:
        return list(range(mt.frame_start, mt.frame_end + 1))
    return [int(f) for f in mt.frames]


def _make_job(opts: DemoOptions, requester: User, run: int, progress: Progress):
    kind = (
        {"segment_frames": 30, "overlap_frames": 5, "keyframe_step": 5}
        if opts.annotation_type == AnnotationType.TRACK
        else {"frame_step": 5, "frames_per_task": 4}
    )
    job = services.job_create(
        requester=requester,
        title=f"Demo crowd #{run}: cars and people",
        instructions="Draw a tight box around every car and person.",
        annotation_type=opts.annotation_type,
        label_classes=CLASSES,
        budget=0,
        currency=settings.PLATFORM_CURRENCY,
        overlap_min=opts.overlap_min,
        overlap_max=opts.overlap_max,
        gold_rate=opts.gold_share,
        **kind,
    )
    scenes: dict[int, Scene] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(opts.videos):
            scene = make_scene(
                seed=opts.seed * 1_000 + run * 50 + i,
                width=WIDTH,
                height=HEIGHT,
                frames=max(int(opts.seconds * FPS), 10),
                n_objects=opts.objects,
                motion=2.0,
                classes=tuple(CLASSES),
            )
            path = Path(tmp) / f"demo-{job.pk}-{i}.mp4"
            write_video(scene, str(path), fps=FPS)
            video = ingestion_uploads.video_register_path(job=job, path=path, by=requester)
            scenes[video.pk] = scene
            progress("videos", i + 1, opts.videos)
        progress("ingestion", 0, 1)
        ingestion_pipeline.job_process(job=job, by=requester)  # in-process (eager Celery)
        progress("ingestion", 1, 1)
    job.refresh_from_db()
    if job.status != JobStatus.READY:
        reasons = list(Video.objects.filter(job=job).values_list("failure_reason", flat=True))
        raise DemoError(f"Ingestion left the job {job.status}: {reasons}")
    return job, scenes


def _fund(job: Job, requester: User, stripe, amount: int | None = None) -> None:
    """Fund ``job`` through Stripe Checkout, as the requester does in the browser: the budget
    raised to what the quote (or ``amount``) needs, a Checkout Session opened, paid on the local
    Stripe server's test page with the test card, and credited to escrow only once our side has
    read Stripe's own copy of the session (``funding_refresh``, the return page's check)."""
    position = funding.funding_need(job=job, fund_amount=job_quote(job=job).fund_amount)
    need = amount if amount is not None else position.need
    if need > position.room:
        budget = position.funded + position.processing + need
        job = services.job_budget_raise(job=job, by=requester, budget=budget)
    row = paying.job_funding_create(
        job=job, requester=requester, amount=amount, return_url=DEMO_RETURN_URL
    )
    paid, message = stripe.pay_checkout_session(row.stripe_checkout_session_id)
    if not paid:
        raise DemoError(f"The local Stripe server refused the test card: {message}")
    row = funding.funding_refresh(funding=row)
    if row.status != FundingStatus.SUCCEEDED:
        raise DemoError(f"Stripe did not confirm the funding ({row.status}).")


def _shortfall(job: Job) -> int:
    """What the replicas dynamic overlap asked for, and the escrow does not cover, would cost
    (with the gold pool's share): the requester's top-up."""
    missing = (
        MicroTask.objects.filter(job=job, is_gold=False, status=MicroTaskStatus.OPEN)
        .annotate(n_slots=Count("slots"))
        .filter(replica_target__gt=F("n_slots"))
    )
    need = sum(slot_reservation(microtask=mt) * (mt.replica_target - mt.n_slots) for mt in missing)
    need = round(need / (1.0 - job.gold_rate)) if need else 0
    return max(0, need - available(job=job))


def demo_run(*, options: DemoOptions, stripe, progress: Progress | None = None) -> DemoSummary:
    """Run the demo (see the module); ``stripe`` is the running local Stripe server."""
    options.check()
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        raise DemoError(
            "The demo runs the Celery tasks in-process: unset REDIS_URL (the embedded default) "
            "or set CELERY_TASK_ALWAYS_EAGER=true."
        )
    report = progress or (lambda stage, done, total: None)
    admin = _user("admin", Role.ADMIN)
    if not admin.is_staff:
        raise DemoError("The user 'admin' exists but is not an admin.")
    requester = _user("requester", Role.REQUESTER, organisation="Demo Robotics")
    run = Job.objects.filter(requester=requester, title__startswith="Demo crowd #").count() + 1
    report("videos", 0, options.videos)
    job, scenes = _make_job(options, requester, run, report)

    def truth_for(mt: MicroTask):
        return scene_truth(scenes[mt.video_id], _frames_of(job, mt), CLASSES)

    # Gold: a share of the microtasks, answered by the admin with the truth.
    regular = list(MicroTask.objects.filter(job=job).order_by("video_id", "index"))
    n_gold = round(len(regular) * options.gold_share) if options.gold_share else 0
    step = len(regular) / n_gold if n_gold else 0
    for k in range(n_gold):
        mt = regular[int(k * step)]
        payload = annotation_to_payload(truth_for(mt), CLASSES, annotation_type=job.annotation_type)
        quality_services.gold_answer_set(microtask_id=mt.pk, payload=payload, by=admin)

    # Funding through Stripe: the PaymentIntent is paid on the (local) Stripe server, and our
    # side credits escrow only after reading Stripe's own copy (funding_refresh).
    report("funding", 0, 1)
    _fund(job, requester, stripe)
    report("funding", 1, 1)
    claiming.job_publish(job=job, by=requester)

    # The crowd, on the simulated clock.
    honest = options.workers - options.spammers - options.sloppy
    sims = make_crowd(
        {PRECISE: honest, SLOPPY: options.sloppy, SPAMMER: options.spammers},
        seed=options.seed * 100 + run,
    )
    crowd: list[tuple[User, SimulatedWorker]] = []
    for k, sim in enumerate(sims):
        # Named by number: the profile is the simulation's secret, as a real crowd's would be.
        user = _user(f"crowd{run}-w{k + 1:02d}", Role.WORKER, country="US")
        Qualification.objects.update_or_create(
            worker=user,
            annotation_type=job.annotation_type,
            defaults={"status": QualificationStatus.PASSED, "score": 1.0},
        )
        crowd.append((user, sim))
    slots = sum(MicroTask.objects.filter(job=job).values_list("replica_target", flat=True))
    done = [0]
    report("crowd", 0, slots)

    def submitted(_assignment) -> None:
        done[0] += 1
        report("crowd", done[0], max(slots, done[0]))

    clock = SimClock(timezone.now() - timedelta(days=1))
    submissions = 0
    with _simulation(clock, options.seed):
        for round_ in range(5):
            crowd_run = drive_crowd(
                job=job,
                crowd=crowd,
                truth_for=truth_for,
                frame_size=(WIDTH, HEIGHT),
                seed=options.seed + round_,
                on_work=clock.advance,
                on_submit=submitted,
            )
            submissions += crowd_run.submissions
            # Replicas dynamic overlap asked for after the last claims (a suspended spammer's
            # work redone, low agreement): fund their slots, as the fill task does.
            job.refresh_from_db()
            fill = claiming.job_fill_slots(job=job)
            if fill.uncovered_microtasks and (top_up := _shortfall(job)):
                # The requester funds the extra replicas (funding fills the slots).
                _fund(job, requester, stripe, amount=max(top_up, STRIPE_MINIMUM_CHARGE))
                fill = claiming.job_fill_slots(job=job)
            if not crowd_run.submissions and not fill.regular_slots:
                break

    report("approval", 0, 1)
    # The requester approves the pending work of settled microtasks that agreed with the
    # consensus (agreement at the job's threshold); the rest waits for a closer look, or for the
    # auto-approval delay, as a requester would leave it.
    pending = []
    results = ConsensusResult.objects.filter(
        microtask__job=job, microtask__status=MicroTaskStatus.COMPLETE, is_current=True
    ).values_list("annotator_agreement", flat=True)
    agreed = {
        int(k)
        for agreement in results
        for k, v in (agreement or {}).items()
        if v >= job.agreement_threshold
    }
    pending = list(
        Assignment.objects.filter(
            pk__in=agreed, microtask__job=job, status=AssignmentStatus.SUBMITTED
        ).values_list("pk", flat=True)
    )
    for i in range(0, len(pending), reviewing.MAX_BULK):
        reviewing.assignments_review_bulk(
            by=requester, action="approve", assignment_ids=pending[i : i + reviewing.MAX_BULK]
        )
    report("approval", 1, 1)

    report("payouts", 0, 1)
    # Earnings leave their hold; every crowd worker connects a Stripe account; a payout run.
    funding.earnings_release_due(
        now=timezone.now() + settings.EARNINGS_HOLD_PERIOD + timedelta(seconds=1)
    )
    for user, _ in crowd:
        account = connect.connected_account_ensure(worker=user)
        stripe.complete_onboarding(account.stripe_account_id)
        connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    runs = payouts.payout_runs_start(note=f"Demo crowd #{run}", enqueue=False)
    created = list(Payout.objects.filter(run__in=list(runs.values())).values_list("pk", flat=True))
    transfers.payouts_submit_many(payout_ids=created, threads=1)
    # Stripe's transfer list confirms them: submitted -> paid.
    reconciliation.payouts_reconcile()
    report("payouts", 1, 1)

    # The dataset, in every format the job's type exports as.
    exported = {}
    formats = exporting.formats_for(job.annotation_type)
    for k, (fmt, _) in enumerate(formats):
        report("exports", k, len(formats))
        export = exporting.job_export(job=job, fmt=fmt, by=requester)
        exported[fmt] = export.size
        export.file.close()
    report("exports", len(formats), len(formats))
    summary = _summary(job, options, crowd, submissions, exported, truth_for, created)
    return summary


def _accuracy(job: Job, truth_for) -> tuple[float, float, int]:
    """Mean F1 (IoU ≥ 0.5) and recall-weighted IoU of the delivered results against the truth."""
    delivered = exporting.job_delivery(job).microtasks
    f1s, ious = [], []
    results = ConsensusResult.objects.filter(
        microtask_id__in=list(delivered), is_current=True, decision__in=SETTLED
    ).select_related("microtask")
    for result in results:
        s = score_boxes(truth_for(result.microtask), to_annotation(result.frames, CLASSES))
        f1s.append(s.f1)
        ious.append(s.mean_iou * s.tp / max(s.tp + s.fn, 1))
    if not f1s:
        return 0.0, 0.0, 0
    return float(statistics.fmean(f1s)), float(statistics.fmean(ious)), len(f1s)


def _invariants(job: Job) -> dict[str, bool]:
    balance = escrow_balance(job=job)
    unbalanced = (
        LedgerTransaction.objects.annotate(total=Sum("entries__amount")).exclude(total=0).exists()
    )
    cached_ok = all(
        a.balance == (LedgerEntry.objects.filter(account=a).aggregate(s=Sum("amount"))["s"] or 0)
        for a in LedgerAccount.objects.filter(kind__in=AccountKind.CACHED_KINDS)
    )
    over_target = (
        MicroTask.objects.filter(job=job)
        .annotate(
            used=Count(
                "assignments",
                filter=~Q(
                    assignments__status__in=(AssignmentStatus.EXPIRED, AssignmentStatus.RELEASED)
                ),
            )
        )
        .filter(is_gold=False, used__gt=F("replica_target"))
        .exists()
    )
    twice = (
        Assignment.objects.filter(microtask__job=job)
        .values("microtask_id", "worker_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    transfers_ok = not Payout.objects.filter(
        status=PayoutStatus.PAID, stripe_transfer_id=""
    ).exists()
    # Invariant 9: a worker's credited active time within the union of their claims' intervals.
    spans: dict[int, list[tuple[float, float]]] = {}
    credited: dict[int, float] = {}
    for worker, claimed, submitted, ended, seconds in Assignment.objects.filter(
        microtask__job=job
    ).values_list("worker_id", "claimed_at", "submitted_at", "ended_at", "active_seconds"):
        end = submitted or ended or claimed
        spans.setdefault(worker, []).append((claimed.timestamp(), end.timestamp()))
        credited[worker] = credited.get(worker, 0.0) + float(seconds or 0)
    time_ok = all(credited[w] <= union_seconds(spans[w]) + 1e-6 for w in spans)
    return {
        "ledger_balanced": not unbalanced and cached_ok,
        "spend_within_escrow": balance.committed <= balance.funded,
        "replicas_within_target": not over_target,
        "one_assignment_per_worker_and_microtask": not twice,
        "every_paid_payout_has_its_transfer": transfers_ok,
        "credited_time_within_wall_clock": time_ok,
    }


def _summary(job, options, crowd, submissions, exported, truth_for, payout_ids) -> DemoSummary:
    job.refresh_from_db()
    balance = escrow_balance(job=job)
    quality = job_report(job=job)
    f1, iou, settled = _accuracy(job, truth_for)
    floor = active_policy().floor_hourly
    lines, honest_pay, honest_seconds = [], 0, 0.0
    for user, sim in crowd:
        mine = Assignment.objects.filter(worker=user, microtask__job=job)
        statuses = dict(
            mine.values_list("status").annotate(n=Count("id")).values_list("status", "n")
        )
        earnings = worker_earnings(worker=user, currency=job.currency)
        earned = mine.aggregate(s=Sum("pay_amount"))["s"] or 0
        trust = WorkerTrust.objects.filter(worker=user, annotation_type=job.annotation_type).first()
        lines.append(
            WorkerLine(
                username=user.username,
                profile=sim.profile,
                submissions=sum(statuses.get(s, 0) for s in ("submitted", "approved", "rejected")),
                approved=statuses.get(AssignmentStatus.APPROVED, 0),
                rejected=statuses.get(AssignmentStatus.REJECTED, 0),
                suspended=bool(trust and trust.suspended),
                earned=earned,
                paid_out=earnings.paid,
                effective_hourly=earnings.effective_hourly,
            )
        )
        if sim.profile != SPAMMER:
            paid = mine.filter(pay_amount__gt=0, active_seconds__gt=0)
            agg = paid.aggregate(pay=Sum("pay_amount"), s=Sum("active_seconds"))
            honest_pay += agg["pay"] or 0
            honest_seconds += float(agg["s"] or 0)
    made = Payout.objects.filter(pk__in=payout_ids)
    return DemoSummary(
        job_id=job.pk,
        title=job.title,
        currency=job.currency,
        videos=job.videos.count(),
        microtasks=job.microtasks.filter(is_gold=False).count(),
        gold_microtasks=job.microtasks.filter(is_gold=True).count(),
        submissions=submissions,
        accuracy_f1=round(f1, 4),
        accuracy_iou=round(iou, 4),
        settled_microtasks=settled,
        reviews_open=quality["reviews_open"],
        replicas_per_microtask=quality["replicas"]["per_settled_microtask"],
        overlap=(job.overlap_min, job.overlap_max),
        budget=balance.funded,
        spent=balance.paid + balance.fees,
        paid_to_workers=balance.paid,
        fees=balance.fees,
        floor_hourly=floor,
        effective_hourly=(round(honest_pay * 3600 / honest_seconds) if honest_seconds else None),
        payouts=made.filter(status=PayoutStatus.PAID).count(),
        payouts_amount=made.filter(status=PayoutStatus.PAID).aggregate(s=Sum("amount"))["s"] or 0,
        transfers=made.exclude(stripe_transfer_id="").count(),
        exports=exported,
        export_counts=counts(
            exporting.job_export_videos(job, exporting.job_delivery(job).microtasks)
        ),
        workers=lines,
        invariants=_invariants(job),
    )
