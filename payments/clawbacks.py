"""Holds and clawbacks: an admin stops (and resumes) a worker's payouts, or reverses (part
of) a paid payout's transfer; the ledger records the money coming back (``reversal_sync``)."""

from __future__ import annotations

from django.db import transaction

from marketplace.errors import Conflict, ValidationError
from marketplace.models import User, WorkerProfile

from . import stripe_gateway as gateway
from .errors import (
    InvalidAmount,
)
from .models import (
    Payout,
    PayoutStatus,
)
from .payouts import payout_submit_enqueue
from .posting import audit_log_record
from .transfers import record_transfer, reversal_sync


def _locked_profile(worker: User) -> WorkerProfile:
    """The worker's profile, row-locked; made first for a worker account created outside the
    sign-up service (the admin site, a shell), which has none yet."""
    WorkerProfile.objects.get_or_create(user=worker)
    return WorkerProfile.objects.select_for_update().get(user=worker)


@transaction.atomic
def worker_payouts_hold(*, worker: User, reason: str, actor: User) -> WorkerProfile:
    """Stop payouts to a worker (no new payouts; open ones wait) until released."""
    if not reason.strip():
        raise ValidationError(
            "Say why payouts are held.", extra={"fields": {"reason": ["required"]}}
        )
    profile = _locked_profile(worker)
    profile.payouts_held = True
    profile.payouts_held_reason = reason[:300]
    profile.save(update_fields=["payouts_held", "payouts_held_reason"])
    audit_log_record(action="payouts.held", actor=actor, reason=reason, obj=profile)
    return profile


@transaction.atomic
def worker_payouts_release(*, worker: User, actor: User, reason: str = "") -> WorkerProfile:
    profile = _locked_profile(worker)
    profile.payouts_held = False
    profile.payouts_held_reason = ""
    profile.save(update_fields=["payouts_held", "payouts_held_reason"])
    audit_log_record(action="payouts.released", actor=actor, reason=reason, obj=profile)
    for pk in Payout.objects.filter(worker=worker, status=PayoutStatus.PENDING).values_list(
        "pk", flat=True
    ):
        payout_submit_enqueue(pk)
    return profile


@transaction.atomic
def payout_reverse(
    *, payout: Payout, reason: str, actor: User, amount: int | None = None
) -> Payout:
    """Claw back (part of) a paid payout's transfer; the ledger records a reversing move."""
    payout = Payout.objects.select_for_update().get(pk=payout.pk)
    if (
        payout.status not in (PayoutStatus.SUBMITTED, PayoutStatus.PAID)
        or not payout.stripe_transfer_id
    ):
        raise Conflict(f"Payout #{payout.pk} has no transfer to reverse (it is {payout.status}).")
    remaining = payout.amount - payout.amount_reversed
    amount = remaining if amount is None else amount
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= remaining:
        raise InvalidAmount(f"You can reverse between 1 and {remaining} of payout #{payout.pk}.")
    if not reason.strip():
        raise ValidationError("Say why the transfer is reversed.")
    if payout.status == PayoutStatus.SUBMITTED:
        record_transfer(
            payout, gateway.transfer_retrieve(payout.stripe_transfer_id), confirmed=True
        )
    gateway.transfer_reverse(
        transfer_id=payout.stripe_transfer_id,
        amount=amount,
        idempotency_key=f"payout:{payout.pk}:reversal:{payout.amount_reversed}:{amount}",
        metadata={"payout_id": str(payout.pk), "reason": reason[:200]},
    )
    audit_log_record(
        action="payout.reversed",
        actor=actor,
        amount=amount,
        currency=payout.currency,
        reason=reason,
        obj=payout,
    )
    reversal_sync(payout, {"amount_reversed": payout.amount_reversed + amount})
    return payout
