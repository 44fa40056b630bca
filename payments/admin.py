"""Admin for money: read-only ledger with drill-down, pricing versions, payouts, events, audit.

Ledger rows, events and the audit log are read-only here: money moves only through services.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Sum
from django.urls import reverse
from django.utils.html import format_html

from marketplace.bounds import supported_currencies

from .models import (
    AuditLog,
    EarningHold,
    Funding,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PaymentAnomaly,
    Payout,
    PayoutRun,
    PricingPolicy,
    ReconciliationIssue,
    Refund,
    StripeEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _link(obj, label: str | None = None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


# The coefficients an admin edits; saving makes a new policy version (pricing_policy_create).
POLICY_FIELDS = (
    "currency",
    "base",
    "t0",
    "t_obj",
    "motion_coef",
    "clutter_coef",
    "complexity_min",
    "complexity_max",
    "floor_hourly",
    "country_floors",
    "platform_fee_bps",
    "tiers",
    "extra_replica_rate",
)


class PricingPolicyForm(forms.ModelForm):
    class Meta:
        model = PricingPolicy
        fields = (*POLICY_FIELDS, "note")

    def clean_currency(self) -> str:
        # The service refuses it too; checking here shows the error on the field.
        currency = (self.cleaned_data.get("currency") or "").lower()
        if currency not in supported_currencies():
            raise forms.ValidationError(f"Use one of: {', '.join(supported_currencies())}.")
        return currency


@admin.register(PricingPolicy)
class PricingPolicyAdmin(admin.ModelAdmin):
    """Saving a policy (new or edited) always stores a new version; old ones stay as they were."""

    form = PricingPolicyForm

    list_display = (
        "version",
        "currency",
        "floor_hourly",
        "platform_fee_bps",
        "note",
        "created_by",
        "created_at",
    )
    search_fields = ("note",)
    readonly_fields = ("version", "created_by", "created_at")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        from .work import pricing_policy_create

        fields = {
            name: form.cleaned_data[name] for name in POLICY_FIELDS if name in form.cleaned_data
        }
        created = pricing_policy_create(
            actor=request.user, note=form.cleaned_data.get("note", ""), **fields
        )
        obj.pk, obj.version = created.pk, created.version
        messages.info(request, f"Saved as pricing policy version {created.version}.")


class EntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "currency", "job", "worker", "balance_shown", "created_at")
    list_filter = ("kind", "currency")
    search_fields = ("worker__username", "job__title", "=job__id")
    raw_id_fields = ("job", "worker")

    @admin.display(description="balance")
    def balance_shown(self, obj: LedgerAccount) -> int:
        from .selectors import account_balance

        return account_balance(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        entries = []
        if account is not None:
            from .selectors import ledger_entries_for

            entries = list(ledger_entries_for(account=account)[:200])
        extra_context = {**(extra_context or {}), "ledger_entries": entries}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "key",
        "currency",
        "job",
        "worker",
        "assignment_link",
        "payout_link",
        "amount_moved",
        "created_at",
    )
    list_filter = ("kind", "currency")
    search_fields = ("key", "memo", "worker__username", "=job__id", "=assignment__id")
    date_hierarchy = "created_at"
    inlines = [EntryInline]
    raw_id_fields = ("job", "worker", "assignment", "payout", "reverses", "created_by")

    @admin.display(description="assignment")
    def assignment_link(self, obj: LedgerTransaction) -> str:
        return _link(obj.assignment)

    @admin.display(description="payout")
    def payout_link(self, obj: LedgerTransaction) -> str:
        return _link(obj.payout)

    @admin.display(description="moved")
    def amount_moved(self, obj: LedgerTransaction) -> int:
        return obj.entries.filter(amount__gt=0).aggregate(s=Sum("amount"))["s"] or 0


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "transaction", "account", "amount")
    list_filter = ("account__kind",)
    search_fields = ("transaction__key", "account__worker__username")
    raw_id_fields = ("transaction", "account")


@admin.register(EarningHold)
class EarningHoldAdmin(ReadOnlyAdmin):
    list_display = ("id", "worker", "amount", "currency", "available_at", "released")
    list_filter = ("released", "currency")
    search_fields = ("worker__username",)


@admin.register(Funding)
class FundingAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "job",
        "requester",
        "amount",
        "currency",
        "status",
        "amount_refunded",
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "created_at",
    )
    list_filter = ("status", "currency")
    search_fields = (
        "stripe_checkout_session_id",
        "stripe_payment_intent_id",
        "requester__username",
        "=job__id",
    )


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "amount", "currency", "status", "stripe_refund_id", "created_at")
    list_filter = ("status",)
    search_fields = ("stripe_refund_id", "=job__id")


class PayoutInline(admin.TabularInline):
    model = Payout
    fields = ("worker", "amount", "status", "stripe_transfer_id", "failure_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PayoutRun)
class PayoutRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "started_at", "finished_at", "payouts_created", "total_amount", "note")
    inlines = [PayoutInline]


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "worker",
        "amount",
        "currency",
        "status",
        "attempt",
        "stripe_transfer_id",
        "failure_code",
        "amount_reversed",
        "created_at",
    )
    list_filter = ("status", "currency", "failure_code")
    search_fields = ("worker__username", "stripe_transfer_id", "destination")
    raw_id_fields = ("run", "worker")
    actions = ("resubmit", "reconcile")

    @admin.action(description="Resubmit the selected open payouts (same idempotency keys)")
    def resubmit(self, request, queryset) -> None:
        from .payouts import payout_submit_enqueue
        from .posting import audit_log_record

        n = 0
        for payout in queryset.filter(status__in=["pending", "queued"]):
            payout_submit_enqueue(payout.pk)
            audit_log_record(action="payout.resubmitted", actor=request.user, obj=payout)
            n += 1
        messages.info(request, f"{n} payouts resubmitted.")

    @admin.action(description="Reconcile all payouts with Stripe now")
    def reconcile(self, request, queryset) -> None:
        from .posting import audit_log_record
        from .reconciliation import payouts_reconcile

        report = payouts_reconcile()
        audit_log_record(action="payouts.reconciled", actor=request.user, **report.__dict__)
        messages.info(
            request,
            f"Saw {report.transfers_seen} transfers; confirmed {report.confirmed}, "
            f"resubmitted {report.resubmitted}, {report.issues} issues.",
        )


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_event_id",
        "type",
        "endpoint",
        "status",
        "attempts",
        "received_at",
        "processed_at",
    )
    list_filter = ("status", "endpoint", "type")
    search_fields = ("stripe_event_id", "type", "account", "error")


@admin.register(PaymentAnomaly)
class PaymentAnomalyAdmin(admin.ModelAdmin):
    """Money Stripe told us about that did not match our rows: nothing was credited. An admin
    looks, acts outside (Stripe dashboard, the requester) and marks it resolved."""

    list_display = (
        "id",
        "kind",
        "stripe_object_id",
        "funding_link",
        "refund",
        "stripe_event",
        "resolved",
        "created_at",
    )
    list_filter = ("resolved", "kind")
    search_fields = ("stripe_object_id", "stripe_event__stripe_event_id", "=funding__id")
    date_hierarchy = "created_at"
    fields = ("kind", "stripe_object_id", "funding", "refund", "stripe_event", "detail", "resolved")
    readonly_fields = ("kind", "stripe_object_id", "funding", "refund", "stripe_event", "detail")

    @admin.display(description="funding")
    def funding_link(self, obj: PaymentAnomaly) -> str:
        return _link(obj.funding)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        from .posting import audit_log_record

        super().save_model(request, obj, form, change)
        if "resolved" in form.changed_data:
            audit_log_record(
                action="payment_anomaly.resolved" if obj.resolved else "payment_anomaly.reopened",
                actor=request.user,
                obj=obj,
            )


@admin.register(ReconciliationIssue)
class ReconciliationIssueAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "payout", "stripe_transfer_id", "resolved", "created_at")
    list_filter = ("kind", "resolved")
    search_fields = ("stripe_transfer_id", "detail")
    raw_id_fields = ("payout",)
    fields = ("kind", "payout", "stripe_transfer_id", "detail", "resolved")
    readonly_fields = ("kind", "payout", "stripe_transfer_id", "detail")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "actor",
        "action",
        "amount",
        "currency",
        "object_type",
        "object_id",
        "reason",
    )
    list_filter = ("action",)
    search_fields = ("actor__username", "reason", "object_id")
    date_hierarchy = "created_at"
