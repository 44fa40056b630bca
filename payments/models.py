"""Money: pricing policies, the double-entry ledger, funding, payouts, webhooks, audit.

Be careful changing anything here: ledger rows are append-only (never updated or deleted; a
correction is a reversing transaction), and idempotency keys are what stop a retry, a crash or a
webhook replay from moving money twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .ledger import AccountKind


class AppendOnly(models.Model):
    """Rows that may be inserted, never changed or removed."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError(f"{type(self).__name__} rows are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} rows are append-only; post a reversal")


class PricingPolicy(AppendOnly):
    """A version of the pricing coefficients; the newest version is the active one.

    Editing a policy in the admin saves a *new* version, so every quote and reservation can say
    which coefficients it used.
    """

    version = models.PositiveIntegerField(unique=True)
    currency = models.CharField(max_length=3, default="usd")
    base = models.JSONField(help_text="Cents per frame·object at complexity 1, by type")
    t0 = models.JSONField(help_text="Fixed seconds per microtask, by type")
    t_obj = models.JSONField(help_text="Seconds per frame·object at complexity 1, by type")
    motion_coef = models.FloatField(default=25.0)  # see payments.pricing.complexity
    clutter_coef = models.FloatField(default=2.0)
    complexity_min = models.FloatField(default=0.75)
    complexity_max = models.FloatField(default=3.0)
    floor_hourly = models.PositiveIntegerField(help_text="Fair-pay floor, minor units per hour")
    country_floors = models.JSONField(
        default=dict, blank=True, help_text='Higher floors by country, e.g. {"GB": 1500}'
    )
    platform_fee_bps = models.PositiveIntegerField(help_text="Fee on worker pay, basis points")
    tiers = models.JSONField(
        help_text='Trust tiers: [{"min_trust": 0.8, "multiplier_bps": 11000, "name": "trusted"}]'
    )
    extra_replica_rate = models.FloatField(default=0.1)
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        verbose_name_plural = "pricing policies"

    def __str__(self) -> str:
        return f"pricing policy v{self.version}"


class LedgerAccount(models.Model):
    """A ledger account; ``balance`` is a cache of the sum of its entries (cached kinds only)."""

    kind = models.CharField(max_length=32, choices=AccountKind.CHOICES)
    currency = models.CharField(max_length=3)
    job = models.ForeignKey(
        "marketplace.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One account per kind and currency for each job, each worker and the platform
            # (partial indexes rather than NULLS NOT DISTINCT, which SQLite lacks).
            models.UniqueConstraint(
                fields=["kind", "currency", "job"],
                condition=Q(job__isnull=False),
                name="ledger_account_unique_job",
                violation_error_message="This job already has a ledger account of this kind.",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency", "worker"],
                condition=Q(worker__isnull=False),
                name="ledger_account_unique_worker",
                violation_error_message="This worker already has a ledger account of this kind.",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency"],
                condition=Q(job__isnull=True, worker__isnull=True),
                name="ledger_account_unique_platform",
                violation_error_message="The platform already has a ledger account of this kind.",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=sorted(AccountKind.NON_NEGATIVE)) | Q(balance__gte=0),
                name="ledger_account_non_negative",
                violation_error_message="This account's balance cannot go below zero.",
            ),
        ]

    def __str__(self) -> str:
        owner = f" job#{self.job_id}" if self.job_id else ""
        owner += f" worker#{self.worker_id}" if self.worker_id else ""
        return f"{self.get_kind_display()}{owner} ({self.currency})"


class TxKind(models.TextChoices):
    FUND = "fund", "Escrow funded"
    RESERVE = "reserve", "Escrow reserved"
    RELEASE = "release", "Reservation released"
    PAY = "pay", "Assignment paid"
    UNPAID = "unpaid", "Assignment rejected (reservation released)"
    BONUS = "bonus", "Bonus"
    HOLD_RELEASE = "hold_release", "Earnings available"
    PAYOUT = "payout", "Payout started"
    PAYOUT_PAID = "payout_paid", "Payout transferred"
    PAYOUT_FAILED = "payout_failed", "Payout failed (funds back)"
    CLAWBACK = "clawback", "Transfer reversed (clawback)"
    REFUND = "refund", "Unspent escrow refunded"
    REFUND_SETTLED = "refund_settled", "Refund settled"
    REFUND_FAILED = "refund_failed", "Refund failed (funds back)"
    REVERSAL = "reversal", "Reversal"


class LedgerTransaction(AppendOnly):
    """A balanced set of entries, posted once per ``key`` (the idempotency key)."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=24, choices=TxKind.choices, db_index=True)
    currency = models.CharField(max_length=3)
    memo = models.CharField(max_length=500, blank=True)
    # What caused it, for drill-down in the admin.
    job = models.ForeignKey(
        "marketplace.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assignment = models.ForeignKey(
        "tasks.Assignment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payout = models.ForeignKey(
        "payments.Payout", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["job", "kind"])]

    def __str__(self) -> str:
        return f"tx#{self.pk} {self.kind} {self.key}"


class LedgerEntry(AppendOnly):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="Signed: what this adds to the account's balance")

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["account", "id"])]

    def __str__(self) -> str:
        return f"{self.amount:+d} → {self.account}"


class EarningHold(models.Model):
    """Pending earnings of one posting, payable from ``available_at`` (the hold period)."""

    transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, related_name="earning_hold"
    )
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    available_at = models.DateTimeField()
    released = models.BooleanField(default=False)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at"], condition=Q(released=False), name="earning_hold_due"
            )
        ]

    def __str__(self) -> str:
        return f"hold {self.amount} for worker#{self.worker_id} until {self.available_at:%Y-%m-%d}"


class ConnectedAccount(models.Model):
    """A worker's Stripe connected account (Express, ``transfers`` only) as Stripe last said.

    ``WorkerProfile.stripe_account_id`` and ``payouts_enabled`` mirror it for the other apps.
    """

    worker = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connected_account"
    )
    stripe_account_id = models.CharField(max_length=64, unique=True)
    details_submitted = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    transfers_active = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_account_id} ({self.worker_id})"

    @property
    def can_receive_transfers(self) -> bool:
        return self.payouts_enabled and self.transfers_active


class FundingStatus(models.TextChoices):
    CREATED = "created", "Awaiting payment"
    # Paid with a delayed method (a bank debit): the Checkout Session is complete (nothing more
    # to pay on it) and Stripe's PaymentIntent is processing; the bank's answer can take a few
    # business days. Nothing is credited until Stripe says it succeeded.
    PROCESSING = "processing", "Bank payment processing (not credited yet)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    # The Checkout Session expired (or the requester cancelled it) unpaid: nothing was charged.
    EXPIRED = "expired", "Expired (nothing charged)"
    # Stripe's PaymentIntent disagrees with this row (amount, currency): nothing was credited;
    # an admin looks at its PaymentAnomaly.
    FLAGGED = "flagged", "Flagged (Stripe disagrees; not credited)"


# A funding whose payment Stripe may still confirm (or refuse): the ones asked about again.
FUNDING_AWAITING = (FundingStatus.CREATED, FundingStatus.PROCESSING)


class Funding(models.Model):
    """A requester's payment into a job's escrow: a Stripe Checkout Session (its id recorded
    when the row is made) and the PaymentIntent that Stripe's copy of the session names once
    the requester pays (``payments.funding``)."""

    job = models.ForeignKey("marketplace.Job", on_delete=models.PROTECT, related_name="fundings")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    quote = models.JSONField(default=dict, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=64, blank=True, db_index=True)
    client_secret = models.CharField(max_length=200, blank=True)
    stripe_checkout_session_id = models.CharField(max_length=255, blank=True, db_index=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    status = models.CharField(
        max_length=16, choices=FundingStatus.choices, default=FundingStatus.CREATED
    )
    amount_refunded = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"funding #{self.pk} job#{self.job_id} {self.amount} {self.status}"

    @property
    def payment_page_url(self) -> str | None:
        """Stripe's hosted page to pay this funding on, only while it awaits payment: a session
        that is complete (a bank payment processing, paid), expired or refused takes no payment,
        so no one is sent to it (the API answers null, the page offers no link)."""
        if self.status != FundingStatus.CREATED:
            return None
        return self.checkout_url or None


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTED = "submitted", "Submitted"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Refund(models.Model):
    """Unspent escrow going back to the requester through a Stripe refund."""

    job = models.ForeignKey("marketplace.Job", on_delete=models.PROTECT, related_name="refunds")
    funding = models.ForeignKey(Funding, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    stripe_refund_id = models.CharField(max_length=64, blank=True, db_index=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"refund #{self.pk} job#{self.job_id} {self.amount} {self.status}"


class PayoutRun(models.Model):
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payouts_created = models.PositiveIntegerField(default=0)
    total_amount = models.BigIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"payout run #{self.pk} ({self.payouts_created} payouts)"


class PayoutStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # funds in transit in the ledger, no transfer confirmed yet
    QUEUED = "queued", "Queued (platform balance insufficient)"
    SUBMITTED = "submitted", "Submitted (transfer created)"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed (funds back to available)"
    REVERSED = "reversed", "Reversed (clawed back)"


class Payout(models.Model):
    """One transfer of a worker's available balance to their connected account."""

    run = models.ForeignKey(
        PayoutRun, null=True, blank=True, on_delete=models.PROTECT, related_name="payouts"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    destination = models.CharField(max_length=64, help_text="Connected account id")
    status = models.CharField(
        max_length=16, choices=PayoutStatus.choices, default=PayoutStatus.PENDING, db_index=True
    )
    # The idempotency key sent to Stripe is f"payout:{id}:{attempt}". The attempt is bumped only
    # after Stripe definitely refused the request (a 4xx), never after a timeout: after a
    # timeout the transfer may exist, and only the same key makes retrying safe.
    attempt = models.PositiveIntegerField(default=1)
    stripe_transfer_id = models.CharField(max_length=64, blank=True, db_index=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    last_error = models.CharField(max_length=500, blank=True, help_text="Last transient error")
    amount_reversed = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One unsettled payout per worker and currency at a time.
            models.UniqueConstraint(
                fields=["worker", "currency"],
                condition=Q(status__in=["pending", "queued", "submitted"]),
                name="payout_one_open_per_worker",
                violation_error_message="This worker already has a payout in progress.",
            )
        ]

    def __str__(self) -> str:
        return f"payout #{self.pk} {self.worker_id} {self.amount} {self.status}"

    @property
    def idempotency_key(self) -> str:
        return f"payout:{self.pk}:{self.attempt}"


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    IGNORED = "ignored", "Ignored (not handled on this endpoint)"
    # Applied, and what Stripe said did not match what we hold: see its PaymentAnomaly rows.
    FLAGGED = "flagged", "Flagged for an admin"


class StripeEvent(models.Model):
    """A webhook event, stored by Stripe's id before anything is done with it."""

    stripe_event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    endpoint = models.CharField(max_length=16, default="platform")  # platform | connect
    account = models.CharField(max_length=64, blank=True, help_text="Connect account, if any")
    api_version = models.CharField(max_length=32, blank=True)
    created = models.DateTimeField(null=True, blank=True, help_text="Stripe's event time")
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.RECEIVED, db_index=True
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.stripe_event_id} {self.type} {self.status}"


class AnomalyKind(models.TextChoices):
    UNKNOWN_PAYMENT_INTENT = "unknown_payment_intent", "PaymentIntent unknown to us or to Stripe"
    PAYMENT_INTENT_MISMATCH = (
        "payment_intent_mismatch",
        "PaymentIntent not the one recorded for the funding",
    )
    NOT_SUCCEEDED = "not_succeeded", "Event says succeeded, Stripe does not"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount received differs from the funding"
    CURRENCY_MISMATCH = "currency_mismatch", "Currency differs from the funding"
    EVENT_DISAGREES = "event_disagrees", "Event body differs from Stripe (Stripe's used)"
    UNKNOWN_CHECKOUT_SESSION = (
        "unknown_checkout_session",
        "Checkout Session unknown to us or to Stripe",
    )
    CHECKOUT_SESSION_MISMATCH = (
        "checkout_session_mismatch",
        "Checkout Session not the one recorded for the funding",
    )
    UNKNOWN_REFUND = "unknown_refund", "Refund unknown to us or to Stripe"
    REFUND_MISMATCH = "refund_mismatch", "Refund differs from ours"


class PaymentAnomaly(models.Model):
    """Money Stripe told us about that does not match our rows: stored, never credited.

    Written by the funding and refund checks (``payments.funding``) instead of moving money, so
    that a forged or mismatched event costs nothing and an admin sees it (admin, /staff/money/).
    """

    kind = models.CharField(max_length=32, choices=AnomalyKind.choices, db_index=True)
    funding = models.ForeignKey(
        Funding, null=True, blank=True, on_delete=models.PROTECT, related_name="anomalies"
    )
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="anomalies"
    )
    stripe_event = models.ForeignKey(
        "payments.StripeEvent",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="anomalies",
    )
    stripe_object_id = models.CharField(max_length=100, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True, help_text="What Stripe, the event, we said")
    resolved = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "payment anomalies"

    def __str__(self) -> str:
        return f"{self.kind}: {self.stripe_object_id}"


class ReconciliationIssue(models.Model):
    """A difference between our payouts and Stripe's transfers found by reconciliation."""

    payout = models.ForeignKey(
        Payout, null=True, blank=True, on_delete=models.PROTECT, related_name="issues"
    )
    stripe_transfer_id = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=40)
    detail = models.TextField()
    resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind}: payout#{self.payout_id} {self.stripe_transfer_id}"


class AuditLog(AppendOnly):
    """Every money action: who, when, what, why."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64, db_index=True)
    amount = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}#{self.object_id}"
