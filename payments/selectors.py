"""Reads of the payments domain: pricing policy, escrow and earnings balances."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.db.models.functions import Trunc

from marketplace.models import Job, User

from . import pricing
from .ledger import AccountKind
from .models import (
    EarningHold,
    Funding,
    FundingStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payout,
    PayoutStatus,
    PricingPolicy,
    TxKind,
)

logger = logging.getLogger(__name__)

# --- the trust seam --------------------------------------------------------------------------
# Trust is quality's (``quality.selectors.worker_trust``, the one reader of it). Payments and
# tasks sit below quality and never import it: quality hands its reader down when the apps are
# ready (``QualityConfig.ready`` calls :func:`trust_source_install`), and pay (the trust
# multiplier) and the claim path (``min_trust``, the prior in ``claim_next``) ask here. The claim
# SQL reading quality's table directly is the one declared exception (``tasks/claiming.sql``).

#: Trust assumed for a worker while no trust source is installed (quality is not an installed
#: app): the prior of a new worker, which falls in the "standard" tier of the default policy
#: (multiplier 1.0), so pay equals the price until quality says otherwise.
DEFAULT_TRUST = 0.5

_trust_reader: Callable[..., float] | None = None
_prior_trust: float = DEFAULT_TRUST


def trust_source_install(*, reader: Callable[..., float], prior: float) -> None:
    """Install the reader of a worker's trust (``reader(worker=, annotation_type=)``) and the
    trust of a worker with no evidence yet; quality does this once, at startup."""
    global _trust_reader, _prior_trust
    _trust_reader = reader
    _prior_trust = float(prior)


def prior_trust() -> float:
    """A worker's trust for a type with no evidence yet."""
    return _prior_trust


def worker_trust(*, worker: User, annotation_type: str) -> float:
    """The worker's trust in [0, 1] for ``annotation_type``, from the installed trust source
    (:data:`DEFAULT_TRUST` when there is none)."""
    if _trust_reader is None:
        return DEFAULT_TRUST
    value = _trust_reader(worker=worker, annotation_type=annotation_type)
    if value is None:
        return DEFAULT_TRUST
    return min(1.0, max(0.0, float(value)))


# --- the measured-work seam ------------------------------------------------------------------
# How long a worker worked for the pay they got is tasks' (assignments sit above payments):
# tasks hands its reader down at startup (``TasksConfig.ready`` calls
# :func:`measured_work_install`) and the earnings read asks here for the effective hourly rate.

_measured_work_reader: Callable[..., tuple[int, float]] | None = None


def measured_work_install(*, reader: Callable[..., tuple[int, float]]) -> None:
    """Install the reader of a worker's paid work (``reader(worker=, currency=)`` returning
    ``(pay in minor units, measured seconds)``); tasks does this once, at startup."""
    global _measured_work_reader
    _measured_work_reader = reader


def measured_work(*, worker: User, currency: str) -> tuple[int, float]:
    """The worker's approved pay and the measured seconds it took (``(0, 0.0)`` with no reader)."""
    if _measured_work_reader is None:
        return 0, 0.0
    pay, seconds = _measured_work_reader(worker=worker, currency=currency)
    return int(pay or 0), float(seconds or 0.0)


# --- pricing policy --------------------------------------------------------------------------


def policy_data(policy: PricingPolicy) -> pricing.PricingPolicyData:
    # A type added after a policy version was saved is priced by the built-in coefficients
    # until a new version names it.
    defaults = pricing.PricingPolicyData()
    return pricing.PricingPolicyData(
        version=policy.version,
        currency=policy.currency,
        base={**defaults.base, **policy.base},
        t0={**defaults.t0, **policy.t0},
        t_obj={**defaults.t_obj, **policy.t_obj},
        motion_coef=policy.motion_coef,
        clutter_coef=policy.clutter_coef,
        complexity_min=policy.complexity_min,
        complexity_max=policy.complexity_max,
        floor_hourly=policy.floor_hourly,
        country_floors={k.upper(): int(v) for k, v in (policy.country_floors or {}).items()},
        platform_fee_bps=policy.platform_fee_bps,
        tiers=tuple(
            pricing.TrustTier(float(t["min_trust"]), int(t["multiplier_bps"]), t.get("name", ""))
            for t in policy.tiers
        ),
        extra_replica_rate=policy.extra_replica_rate,
    )


def active_policy() -> pricing.PricingPolicyData:
    """The newest pricing policy version, or the built-in defaults (version 0) if none exists."""
    latest = PricingPolicy.objects.order_by("-version").first()
    if latest is None:
        return pricing.PricingPolicyData(currency=settings.PLATFORM_CURRENCY)
    return policy_data(latest)


def slot_reservation_for(*, microtask) -> int:
    """Escrow one replica slot of ``microtask`` reserves under the active pricing policy."""
    return pricing.slot_reservation(price=microtask.price, policy=active_policy())


# --- accounts and balances -------------------------------------------------------------------


def account_balance(account: LedgerAccount) -> int:
    """An account's balance: its cached column, or the sum of its entries for system accounts."""
    if account.kind in AccountKind.CACHED_KINDS:
        return account.balance
    return entries_sum(account)


def entries_sum(account: LedgerAccount) -> int:
    return LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0


def system_balance(*, kind: str, currency: str) -> int:
    return (
        LedgerEntry.objects.filter(
            account__kind=kind, account__currency=currency, account__job=None
        ).aggregate(s=Sum("amount"))["s"]
        or 0
    )


@dataclass(frozen=True)
class EscrowBalance:
    """A job's escrow, minor units: ``funded == available + reserved + paid + fees``."""

    funded: int  # paid in by the requester, net of refunds
    available: int
    reserved: int
    paid: int  # to workers (pay, top-ups, bonuses)
    fees: int  # platform fees (net of any fair-pay subsidy)
    refunded: int = 0
    currency: str = "usd"

    @property
    def committed(self) -> int:
        return self.reserved + self.paid + self.fees


def escrow_balance(*, job: Job) -> EscrowBalance:
    rows = (
        LedgerEntry.objects.filter(transaction__job_id=job.pk)
        .values_list("account__kind", "transaction__kind")
        .annotate(total=Sum("amount"))
    )
    by: dict[tuple[str, str], int] = {(k, t): s for k, t, s in rows}

    def total(account_kind: str, tx_kinds: tuple[str, ...] | None = None) -> int:
        return sum(
            v
            for (k, t), v in by.items()
            if k == account_kind and (tx_kinds is None or t in tx_kinds)
        )

    gross = total(AccountKind.JOB_ESCROW, (TxKind.FUND,))
    refunded = -total(AccountKind.JOB_ESCROW, (TxKind.REFUND, TxKind.REFUND_FAILED))
    return EscrowBalance(
        funded=gross - refunded,
        available=total(AccountKind.JOB_ESCROW),
        reserved=total(AccountKind.JOB_RESERVED),
        paid=total(AccountKind.WORKER_PENDING),
        fees=total(AccountKind.PLATFORM_REVENUE),
        refunded=refunded,
        currency=job.currency,
    )


def funding_processing(*, job: Job) -> int:
    """The money of ``job``'s bank payments still processing at Stripe, minor units: paid by
    the requester, not credited to escrow until Stripe confirms it (status ``processing``)."""
    total = Funding.objects.filter(job=job, status=FundingStatus.PROCESSING).aggregate(
        s=Sum("amount")
    )["s"]
    return int(total or 0)


@dataclass(frozen=True)
class WorkerEarnings:
    currency: str
    pending: int
    available: int
    in_transit: int
    paid: int
    effective_hourly: int | None  # minor units per hour over measured work time
    paid_seconds: float


def jobs_with_available_escrow(job_ids) -> set[int]:
    """Which of ``job_ids`` have funded escrow not yet reserved or spent (a cached balance)."""
    return set(
        LedgerAccount.objects.filter(
            kind=AccountKind.JOB_ESCROW, job_id__in=job_ids, balance__gt=0
        ).values_list("job_id", flat=True)
    )


def worker_balances(*, worker: User, currency: str | None = None) -> dict[str, int]:
    """The fast read: the worker's cached account balances (pending, available, in_transit)."""
    currency = currency or settings.PLATFORM_CURRENCY
    out = {"pending": 0, "available": 0, "in_transit": 0}
    names = {
        AccountKind.WORKER_PENDING: "pending",
        AccountKind.WORKER_AVAILABLE: "available",
        AccountKind.WORKER_IN_TRANSIT: "in_transit",
    }
    for kind, balance in LedgerAccount.objects.filter(
        worker_id=worker.pk, currency=currency, kind__in=list(names)
    ).values_list("kind", "balance"):
        out[names[kind]] = balance
    return out


def worker_earnings(*, worker: User, currency: str | None = None) -> WorkerEarnings:
    currency = currency or settings.PLATFORM_CURRENCY
    b = worker_balances(worker=worker, currency=currency)
    paid = (
        Payout.objects.filter(worker=worker, currency=currency, status=PayoutStatus.PAID).aggregate(
            s=Sum("amount")
        )["s"]
        or 0
    ) - (
        Payout.objects.filter(worker=worker, currency=currency).aggregate(s=Sum("amount_reversed"))[
            "s"
        ]
        or 0
    )
    pay, seconds = measured_work(worker=worker, currency=currency)
    return WorkerEarnings(
        currency=currency,
        pending=b["pending"],
        available=b["available"],
        in_transit=b["in_transit"],
        paid=paid,
        effective_hourly=pricing.effective_hourly(pay=pay, seconds=seconds),
        paid_seconds=seconds,
    )


def ledger_entries_for(*, account: LedgerAccount) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(account=account)
        .select_related("transaction", "transaction__assignment", "transaction__payout")
        .order_by("-id")
    )


def payouts_visible_to(user: User) -> QuerySet[Payout]:
    if not user.is_authenticated:
        return Payout.objects.none()
    if user.is_platform_admin:
        return Payout.objects.all()
    return Payout.objects.filter(Q(worker=user))


def assignment_unpaid_transaction(*, assignment_id: int) -> LedgerTransaction | None:
    """The ledger transaction that released a rejected assignment's reservation
    (``services.assignment_unpaid``), or None: callers ask here instead of building its key."""
    return LedgerTransaction.objects.filter(key=f"assignment:{assignment_id}:unpaid").first()


# --- the staff money dashboard -------------------------------------------------------------------
# Every figure is one SQL aggregate (GROUP BY currency, kind or status), never a loop over rows.


@dataclass(frozen=True)
class MoneyTotals:
    """The platform's money in one currency, minor units, from the ledger."""

    currency: str
    escrow_available: int = 0  # funded, not yet reserved (sum of job_escrow)
    escrow_reserved: int = 0  # reserved by replica slots (sum of job_reserved)
    worker_pending: int = 0  # earned, in the hold period
    payable: int = 0  # earned, available to pay out
    in_transit: int = 0  # in payouts not yet settled
    revenue: int = 0  # platform fees (sum of platform_revenue entries)
    refunds_owed: int = 0  # refunds to requesters Stripe has not confirmed

    @property
    def escrow(self) -> int:
        return self.escrow_available + self.escrow_reserved


_TOTAL_FIELDS = {
    AccountKind.JOB_ESCROW: "escrow_available",
    AccountKind.JOB_RESERVED: "escrow_reserved",
    AccountKind.WORKER_PENDING: "worker_pending",
    AccountKind.WORKER_AVAILABLE: "payable",
    AccountKind.WORKER_IN_TRANSIT: "in_transit",
    AccountKind.PLATFORM_REVENUE: "revenue",
    AccountKind.REFUNDS: "refunds_owed",
}


def money_totals() -> list[MoneyTotals]:
    """The platform's balances per currency (two GROUP BY queries: the cached balances of job
    and worker accounts, and the entry sums of the system accounts)."""
    by: dict[str, dict[str, int]] = {}
    cached = (
        LedgerAccount.objects.filter(kind__in=sorted(AccountKind.CACHED_KINDS))
        .values("currency", "kind")
        .annotate(total=Sum("balance"))
        .values_list("currency", "kind", "total")
    )
    summed = (
        LedgerEntry.objects.filter(
            account__kind__in=[AccountKind.PLATFORM_REVENUE, AccountKind.REFUNDS]
        )
        .values("account__currency", "account__kind")
        .annotate(total=Sum("amount"))
        .values_list("account__currency", "account__kind", "total")
    )
    for currency, kind, total in [*cached, *summed]:
        by.setdefault(currency, {})[_TOTAL_FIELDS[kind]] = int(total or 0)
    return [MoneyTotals(currency=c, **fields) for c, fields in sorted(by.items())]


@dataclass(frozen=True)
class PayoutTally:
    status: str
    label: str
    currency: str
    count: int
    amount: int


def payouts_by_status() -> list[PayoutTally]:
    labels = dict(PayoutStatus.choices)
    rows = (
        Payout.objects.values("status", "currency")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("currency", "status")
        .values_list("status", "currency", "n", "total")
    )
    return [
        PayoutTally(status=st, label=labels.get(st, st), currency=c, count=n, amount=int(t or 0))
        for st, c, n, t in rows
    ]


def revenue_by_period(*, period: str, since: datetime) -> dict[str, dict[date, int]]:
    """Platform revenue booked per period (its first day), per currency."""
    rows = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.PLATFORM_REVENUE, transaction__created_at__gte=since
        )
        .annotate(p=Trunc("transaction__created_at", period))
        .values("p", "account__currency")
        .annotate(total=Sum("amount"))
        .values_list("account__currency", "p", "total")
    )
    out: dict[str, dict[date, int]] = {}
    for currency, p, total in rows:
        out.setdefault(currency, {})[p.date()] = int(total or 0)
    return out


@dataclass(frozen=True)
class EarningsOnHold:
    """Earnings still in the hold period in one currency: how much, in how many, the next due."""

    currency: str
    amount: int
    count: int
    next_due: datetime | None = field(default=None)


def earnings_on_hold() -> list[EarningsOnHold]:
    rows = (
        EarningHold.objects.filter(released=False)
        .values("currency")
        .annotate(total=Sum("amount"), n=Count("id"), due=Min("available_at"))
        .order_by("currency")
        .values_list("currency", "total", "n", "due")
    )
    return [EarningsOnHold(c, int(t or 0), n, d) for c, t, n, d in rows]
