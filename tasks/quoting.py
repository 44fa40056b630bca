"""Pricing a job's microtasks: the read-only quote (a selector) and the service that saves prices.

Payments owns the money arithmetic (``payments.pricing``, pure) and the active pricing policy;
this module owns what only the tasks app knows: a microtask's annotated frames, objects, motion
and clutter, and how long approved work really took. The two halves meet in
:func:`microtask_prices`, the one place a microtask is priced, so the quote a requester is shown,
the prices funding saves and the complexity stored on each microtask are the same numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass

from django.db import transaction
from django.db.models import Count

from marketplace import label_schema
from marketplace.models import Job
from payments import pricing
from payments.escrow import check_job_currency
from payments.funding import FundingNeed, funding_need
from payments.selectors import active_policy, escrow_balance

from .annotations import SEGMENT_TYPES
from .models import Assignment, MicroTask, MicroTaskStatus, Slot
from .slot_plan import plan_slots


def _annotated_frames(mt: MicroTask, annotation_type: str) -> int:
    n = len(mt.frames or []) or (mt.frame_end - mt.frame_start + 1)
    if annotation_type in SEGMENT_TYPES and not mt.frames:
        n = math.ceil(n / max(1, mt.keyframe_step))
    return max(1, n)


# Events a track job's worker is expected to mark per tracked object in one microtask: a
# starting estimate (one action per object per segment, whatever the number of labels to choose
# from); calibration on measured time (``measured_time_factors``) corrects the scale.
EVENTS_PER_TRACK = 1.0


def task_features(mt: MicroTask, job: Job) -> pricing.TaskFeatures:
    """What pricing needs to know about one microtask of ``job``: its frames, objects, motion
    and clutter, the attributes asked per object and the relations expected per frame (one per
    pair of expected objects, when the job takes relations)."""
    objects = mt.expected_objects or job.expected_objects
    return pricing.TaskFeatures(
        annotation_type=job.annotation_type,
        frames=_annotated_frames(mt, job.annotation_type),
        objects=objects,
        motion=mt.motion,
        clutter=mt.clutter,
        boundary=mt.content_boundary,
        area=mt.content_area,
        attributes=label_schema.asked_per_object(
            label_schema.parse(job.label_attributes), job.label_classes
        ),
        relations=float(objects // 2) if job.relation_predicates else 0.0,
        keyframe_masks=job.annotation_type == "track" and bool(job.track_masks),
        track_events=EVENTS_PER_TRACK * objects
        if job.annotation_type == "track" and job.event_labels
        else 0.0,
    )


def measured_time_factors(
    *, annotation_type: str, policy: pricing.PricingPolicyData, limit: int = 5_000
) -> dict[float, float]:
    """Median measured/estimated work time per complexity bucket, from recent approved work."""
    rows = (
        Assignment.objects.filter(
            microtask__job__annotation_type=annotation_type,
            pay_amount__gt=0,
            active_seconds__gt=0,
        )
        .select_related("microtask", "microtask__job")
        .order_by("-id")[:limit]
    )
    samples: dict[float, list[tuple[float, float]]] = defaultdict(list)
    for a in rows:
        est = pricing.price_task(task_features(a.microtask, a.microtask.job), policy=policy)
        samples[pricing.complexity_bucket(est.complexity)].append(
            (float(a.active_seconds), est.expected_seconds)
        )
    return {b: pricing.calibration_factor(s) for b, s in samples.items()}


@dataclass(frozen=True)
class Priced:
    """One microtask and its price under the active policy (``price.complexity`` is the one
    complexity that price multiplied by)."""

    microtask: MicroTask
    price: pricing.TaskPrice


def microtask_prices(*, job: Job) -> tuple[list[Priced], pricing.PricingPolicyData]:
    """Price every microtask of ``job`` (reads only); raises CurrencyNotPriced for a job whose
    currency is not the pricing policy's.

    Expected time is calibrated on measured work where enough exists, so the fair-pay floor
    holds on real time: a re-quote after work has been measured includes the difference.
    """
    policy = active_policy()
    check_job_currency(job=job, policy=policy)
    factors = measured_time_factors(annotation_type=job.annotation_type, policy=policy)
    out = []
    for mt in MicroTask.objects.filter(job=job).order_by("pk"):
        features = task_features(mt, job)
        c = pricing.task_complexity(features, policy=policy)
        factor = max(1.0, factors.get(pricing.complexity_bucket(c), 1.0))
        out.append(Priced(mt, pricing.price_task(features, policy=policy, time_factor=factor)))
    return out, policy


def _quote(job: Job, priced: list[Priced], policy: pricing.PricingPolicyData) -> pricing.Quote:
    regular = [p.price for p in priced if not p.microtask.is_gold]
    return pricing.quote(
        prices=[p.price for p in regular],
        expected_seconds=[p.expected_seconds for p in regular],
        overlap_min=job.overlap_min,
        overlap_max=job.overlap_max,
        gold_rate=job.gold_rate,
        policy=policy,
        currency=job.currency,
    )


def job_quote(*, job: Job) -> pricing.Quote:
    """What ``job`` would cost at today's prices; changes nothing (safe on a GET).

    The quote is in the job's currency, and only a job whose currency is supported and is the
    pricing policy's can be quoted: funding charges the quote's amount in the job's currency, so
    a quote in one currency funded in another (247 cents funded with 247 dong) cannot happen.
    """
    priced, policy = microtask_prices(job=job)
    return _quote(job, priced, policy)


@transaction.atomic
def job_prices_save(*, job: Job) -> pricing.Quote:
    """Price every microtask of ``job``, save the prices (and the complexity each multiplied by,
    should the policy have changed since ingestion), and return the job's quote."""
    priced, policy = microtask_prices(job=job)
    changed = []
    for p in priced:
        mt = p.microtask
        if mt.price != p.price.price or mt.complexity != p.price.complexity:
            mt.price, mt.complexity = p.price.price, p.price.complexity
            changed.append(mt)
    if changed:
        MicroTask.objects.bulk_update(changed, ["price", "complexity"])
    return _quote(job, priced, policy)


@dataclass(frozen=True)
class BudgetCoverage:
    """What a payment of ``amount`` publishes: the first ``covered`` of the ``waiting``
    microtasks (in claim order) that still lack replica slots, ``overlap_min`` replicas each."""

    amount: int
    covered: int
    waiting: int

    @property
    def complete(self) -> bool:
        return self.covered >= self.waiting


def budget_coverage(*, job: Job, amount: int) -> BudgetCoverage:
    """How much of ``job``'s work paying ``amount`` more into its escrow would publish (reads
    only): the slot rule of publishing (``tasks.slot_plan``) applied to today's prices, the
    prices funding saves before it charges."""
    priced, policy = microtask_prices(job=job)

    def reservation(p: Priced) -> int:
        return int(pricing.slot_reservation(price=p.price.price, policy=policy))

    slots = dict(
        MicroTask.objects.filter(job=job).annotate(n=Count("slots")).values_list("pk", "n")
    )
    open_ = [p for p in priced if p.microtask.status == MicroTaskStatus.OPEN]
    gold = [p for p in open_ if p.microtask.is_gold]
    # Claim order is priority, then id (``_fill_slots``); prices were read in id order.
    order = sorted(
        (p for p in open_ if not p.microtask.is_gold),
        key=lambda p: (-p.microtask.priority, p.microtask.pk),
    )
    missing = []
    for p in order:
        target = max(p.microtask.replica_target, job.overlap_min)
        have = slots.get(p.microtask.pk, 0)
        if target > have:
            missing.append((reservation(p), target - have))
    plan = plan_slots(
        missing=missing,
        available=escrow_balance(job=job).available + amount,
        gold_price=max((reservation(p) for p in gold), default=0),
        gold_rate=job.gold_rate if gold else 0.0,
        existing_regular=Slot.objects.filter(job=job, is_gold=False).count(),
        existing_gold=Slot.objects.filter(job=job, is_gold=True).count(),
    )
    return BudgetCoverage(amount=amount, covered=plan.covered, waiting=len(missing))


@dataclass(frozen=True)
class FundingOptions(FundingNeed):
    """What the funding page offers: the quote, what it still needs and what the budget leaves
    (``payments.funding.funding_need``, bank payments processing counted), and, when the quote
    needs more than that, how much of the work the budget pays for."""

    quote: pricing.Quote
    coverage: BudgetCoverage | None  # paying ``room``: set when the quote is over the budget


def funding_options(*, job: Job) -> FundingOptions:
    """The quote against the job's budget (reads only: the funding page's GET)."""
    quote = job_quote(job=job)
    position = funding_need(job=job, fund_amount=quote.fund_amount)
    coverage = budget_coverage(job=job, amount=position.room) if position.over_budget else None
    return FundingOptions(**asdict(position), quote=quote, coverage=coverage)
