"""Model-assisted routing on the live path: which microtasks become verify-and-correct work, what
that releases from escrow and what a verify replica is priced, and when one goes back to full
annotation. The decisions are :mod:`quality.assist`'s; this module applies them to rows.

Read this before changing anything (money and overlap):

* **When.** A microtask is routed once its proposals are stored (``tasks.signals.
  proposals_stored``) and again, while it is still unrouted, each time its job's sources are
  measured (``assisting`` adds comparisons): a source below the requester's bar leaves the
  microtask unrouted (``assist_mode`` ""), so it is routed when the source proves itself. Every
  other answer is final: ``full`` (an unconfident proposal, an audit draw, or work already
  claimed beyond the verify target) or ``verify``.
* **Overlap.** The replica target is lowered only as far as the work already claimed or done
  allows (never below live or finished assignments: invariant 1 holds), and only free slots go.
* **Money.** The free slots that go, and the part of the remaining free slots' reservation the
  lower verify price no longer needs, return from reserved to available escrow in one balanced
  ledger transaction (``tasks.budget.release``, keyed per microtask: at most once). The verify
  price is :func:`quality.assist.verify_price`, never above the microtask's price, and it is
  only set while nobody has claimed the microtask (a worker keeps the price they claimed at).
  The worker's pay is still topped up to the fair-pay floor on their measured time by
  ``payments.pricing.split_pay`` (the one floor rule).
* **Escalation.** A verifier who corrected too much, or verify replicas whose (discounted)
  agreement does not settle the microtask, send it back to full annotation at ``overlap_min``
  and its full price; the verify replicas already in have their reservations raised to that
  price (work is paid at the microtask's price on approval), the missing slots are funded by
  the ordinary fill path (``fill_slots_later``), and the microtask goes to review when escrow
  cannot fund either.
* **Locks.** The microtask row ``FOR NO KEY UPDATE`` (a concurrent claim inserting an
  assignment takes KEY SHARE on it and must not wait), then its slots, then (in the release) the
  job's escrow account: the order of the scoring path.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from marketplace.models import Job
from payments import pricing
from payments.selectors import active_policy
from tasks import budget
from tasks.models import (
    LIVE_OR_FINISHED,
    Assignment,
    AssignmentStatus,
    AssistMode,
    MicroTask,
    MicroTaskStatus,
    ProposalConfig,
    Slot,
)
from tasks.proposals import shown_proposals
from tasks.quoting import task_features

from .. import assist
from .assisting import POLICY, PROPOSABLE, source_accuracy_of

logger = logging.getLogger(__name__)

ROUTE_BATCH = 500  # unrouted microtasks looked at per job pass


def verify_price(microtask: MicroTask) -> pricing.TaskPrice:
    """The price of one verify-and-correct replica of ``microtask``: the job's measured verify
    time so far (credited active seconds of paid verify work), starting at the unassisted
    estimate."""
    job = microtask.job
    policy = active_policy()
    features = task_features(microtask, job)
    unassisted = pricing.price_task(features, policy=policy)
    measured = Assignment.objects.filter(
        microtask__job=job,
        microtask__assist_mode=AssistMode.VERIFY,
        status=AssignmentStatus.APPROVED,
        active_seconds__gt=0,
    ).values_list("active_seconds", flat=True)[:5000]
    seconds = assist.verify_seconds(
        [float(s) for s in measured], unassisted_seconds=unassisted.expected_seconds
    )
    return assist.verify_price(features, policy=policy, seconds=seconds)


def _best_source(microtask: MicroTask):
    """The shown proposal whose source is best proven on this job, with that source's accuracy
    on confident microtasks; (None, None) without a proposal."""
    best = (None, None)
    for p in shown_proposals(microtask):
        acc = source_accuracy_of(
            job_id=microtask.job_id, source=p.source, min_confidence=POLICY.confidence_threshold
        )
        if best[1] is None or acc.lower > best[1].lower:
            best = (p, acc)
    return best


@transaction.atomic
def microtask_route(*, microtask_id: int) -> str:
    """Route one microtask (module docstring); returns what happened."""
    mt = (
        MicroTask.objects.select_for_update(of=("self",), no_key=True)
        .select_related("job")
        .filter(pk=microtask_id)
        .first()
    )
    if mt is None or mt.is_gold or mt.status != MicroTaskStatus.OPEN or mt.assist_mode:
        return "not routable"
    job = mt.job
    if job.annotation_type not in PROPOSABLE:
        return "not routable"
    proposal, acc = _best_source(mt)
    if proposal is None:
        return "no proposal"
    d = assist.decide_route(
        source=acc,
        bar=job.assist_accuracy_bar,
        confidence=assist.proposal_confidence(proposal.confidences or [proposal.confidence]),
        overlap_min=job.overlap_min,
        audit_key=(job.pk, mt.pk),
        policy=POLICY,
    )
    if d.route == assist.Route.FULL:
        if acc.lower < job.assist_accuracy_bar:
            return "source not proven yet"  # stays unrouted: routed again once it is
        _set_mode(mt, AssistMode.FULL, d.reason)
        return "full"
    slots = list(Slot.objects.select_for_update().filter(microtask=mt).order_by("number"))
    live = Assignment.objects.filter(microtask=mt, status__in=LIVE_OR_FINISHED).count()
    if live > d.replica_target:
        _set_mode(mt, AssistMode.FULL, f"already claimed {live} times before routing")
        return "full"
    target = max(d.replica_target, live)
    free = [s for s in slots if s.assignment_id is None]
    keep = max(0, target - (len(slots) - len(free)))
    dropped, kept = free[keep:], free[:keep]
    released = sum(s.reserved_amount for s in dropped)
    full_price = mt.price
    if live == 0:
        mt.price = min(mt.price, verify_price(mt).price)
        per_slot = budget.slot_reservation(microtask=mt)
        for s in kept:
            if s.reserved_amount > per_slot:
                released += s.reserved_amount - per_slot
                Slot.objects.filter(pk=s.pk).update(reserved_amount=per_slot)
    if dropped:
        Assignment.objects.filter(slot__in=dropped).update(slot=None)
        Slot.objects.filter(pk__in=[s.pk for s in dropped]).delete()
    budget.release(job=job, amount=released, key=f"assist:{mt.pk}:route")
    mt.replica_target = target
    mt.assist_mode = AssistMode.VERIFY
    mt.assist_reason = d.reason[:200]
    mt.assist_saved = released
    mt.assist_full_price = full_price
    mt.save(
        update_fields=[
            "replica_target", "price", "assist_mode", "assist_reason", "assist_saved",
            "assist_full_price",
        ]
    )  # fmt: skip
    return "verify"


def _set_mode(mt: MicroTask, mode: str, reason: str) -> None:
    mt.assist_mode = mode
    mt.assist_reason = reason[:200]
    mt.save(update_fields=["assist_mode", "assist_reason"])


def job_route(*, job_id: int, batch: int = ROUTE_BATCH) -> int:
    """Route the job's unrouted open microtasks that have proposals, each in its own
    transaction; returns how many changed mode."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.annotation_type not in PROPOSABLE:
        return 0
    config = ProposalConfig.objects.filter(job=job).first()
    sources = config.sources if config else []
    # Called after every measurement: while no source meets the bar (the common case early on)
    # it costs one aggregate per source, not a look at every unrouted microtask.
    if not any(
        source_accuracy_of(
            job_id=job_id, source=s, min_confidence=POLICY.confidence_threshold
        ).lower
        >= job.assist_accuracy_bar
        for s in sources
    ):
        return 0
    ids = list(
        MicroTask.objects.filter(
            job_id=job_id,
            is_gold=False,
            status=MicroTaskStatus.OPEN,
            assist_mode="",
            proposals__status="ok",
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)[:batch]
    )
    return sum(microtask_route(microtask_id=pk) in ("full", "verify") for pk in ids)


def job_route_later(job_id: int) -> None:
    """Once this transaction commits, route the job's unrouted microtasks (a broker failure is
    logged: the next measurement or proposal queues it again)."""

    def enqueue() -> None:
        try:
            current_app.tasks["quality.route_job"].delay(job_id)
        except (KombuOperationalError, OSError) as exc:
            logger.warning("quality: could not queue routing of job %s (%s)", job_id, exc)

    transaction.on_commit(enqueue)


def microtask_escalate(mt: MicroTask, *, replicas: int, reason: str) -> bool:
    """A verify microtask (row locked by the caller) goes back to full annotation at the job's
    ``overlap_min`` (at least one more replica than it has) and its full price; the ordinary
    fill path funds the new slots once this commits.

    Work is paid at the microtask's price when approved, so the verify replicas already in are
    paid the full price too: their reservations are raised to the full price's first (one keyed
    reservation). When the job's available escrow cannot cover that, nothing changes here and
    the caller sends the microtask to review (False)."""
    job = mt.job
    full = max(mt.price, mt.assist_full_price or 0)
    held = list(
        Assignment.objects.select_for_update()
        .filter(microtask=mt, status__in=(AssignmentStatus.CLAIMED, AssignmentStatus.SUBMITTED))
        .order_by("pk")
    )
    per = int(pricing.slot_reservation(price=full, policy=active_policy()))
    extra = sum(max(0, per - a.reserved_amount) for a in held)
    try:
        budget.reserve(job=job, amount=extra, key=f"assist:{mt.pk}:escalate")
    except budget.InsufficientBudget:
        return False
    for a in held:
        if a.reserved_amount < per:
            Assignment.objects.filter(pk=a.pk).update(reserved_amount=per)
            Slot.objects.filter(assignment_id=a.pk).update(reserved_amount=per)
    mt.assist_mode = AssistMode.FULL
    mt.assist_reason = f"escalated: {reason}"[:200]
    mt.replica_target = max(job.overlap_min, replicas + 1)
    mt.price = full
    mt.assist_saved = 0
    mt.save(
        update_fields=["assist_mode", "assist_reason", "replica_target", "price", "assist_saved"]
    )
    return True
