"""Serializers of the payments API (output shapes and input validation only)."""

from __future__ import annotations

from rest_framework import serializers

from marketplace import bounds
from marketplace.api.serializers import text
from payments.funding import STRIPE_MINIMUM_CHARGE
from payments.models import FundingStatus, Payout, RefundStatus


class QuoteSerializer(serializers.Serializer):
    currency = serializers.CharField()
    microtasks = serializers.IntegerField()
    replicas = serializers.FloatField()
    work = serializers.IntegerField()
    gold_overhead = serializers.IntegerField()
    platform_fee = serializers.IntegerField()
    total = serializers.IntegerField()
    headroom = serializers.IntegerField()
    fund_amount = serializers.IntegerField()
    expected_hours = serializers.FloatField()
    policy_version = serializers.IntegerField()
    floor_hourly = serializers.IntegerField()


class EscrowSerializer(serializers.Serializer):
    currency = serializers.CharField()
    funded = serializers.IntegerField()
    available = serializers.IntegerField()
    reserved = serializers.IntegerField()
    paid = serializers.IntegerField()
    fees = serializers.IntegerField()
    refunded = serializers.IntegerField()


class EarningsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    pending = serializers.IntegerField()
    available = serializers.IntegerField()
    in_transit = serializers.IntegerField()
    paid = serializers.IntegerField()
    effective_hourly = serializers.IntegerField(allow_null=True)
    paid_seconds = serializers.FloatField()


class PayoutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payout
        fields = (
            "id",
            "amount",
            "currency",
            "status",
            "stripe_transfer_id",
            "failure_reason",
            "amount_reversed",
            "created_at",
            "settled_at",
        )


def _amount(*, minimum: int = 1, **kwargs) -> serializers.IntegerField:
    """An amount of minor units within ``MONEY_AMOUNT_MAX`` (read per request, not at import)."""
    return serializers.IntegerField(
        min_value=minimum, max_value=bounds.money_amount_max(), help_text="Minor units", **kwargs
    )


def _id(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=bounds.ID_MAX, **kwargs)


class FundingInSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        # Stripe refuses charges under its minimum, so the schema starts there.
        return {
            "amount": _amount(minimum=STRIPE_MINIMUM_CHARGE, required=False),
            "fit_budget": serializers.BooleanField(
                required=False,
                default=False,
                help_text="Without `amount`: when the quote needs more than the job's budget "
                "leaves, pay what the budget leaves (publishing then covers fewer microtasks) "
                "instead of answering 409 `over_budget`",
            ),
        }


class _FundingQuoteSerializer(QuoteSerializer):
    """The quote a funding was made for (null for a row that recorded none)."""

    def get_attribute(self, instance):
        return instance.quote or None


class FundingOutSerializer(serializers.Serializer):
    """A funding and what a client needs to complete it: send the payer to ``checkout_url``
    (Stripe's hosted Checkout page; null when there is nothing to pay on it). Escrow is credited
    when Stripe confirms the payment (webhook ``checkout.session.completed``, or the funding
    page's check on return)."""

    funding = serializers.IntegerField(source="pk")
    status = serializers.ChoiceField(choices=FundingStatus.choices)
    amount = serializers.IntegerField(help_text="Minor units")
    currency = serializers.CharField()
    checkout_session = serializers.CharField(
        source="stripe_checkout_session_id", help_text="Stripe Checkout Session id"
    )
    checkout_url = serializers.CharField(
        source="payment_page_url",
        allow_null=True,
        help_text="Stripe's hosted payment page for the session, while the funding awaits "
        "payment (`created`); null once it does not (a bank payment `processing`, paid, "
        "failed, expired: the session takes no payment), and for a funding made before Checkout",
    )
    payment_intent = serializers.CharField(
        source="stripe_payment_intent_id",
        help_text="Set once the payer has paid (Stripe creates it on the Checkout page)",
    )
    return_url = serializers.SerializerMethodField(
        help_text="Where Stripe sends the payer back: the job's funding page"
    )
    quote = _FundingQuoteSerializer(allow_null=True)

    def get_return_url(self, funding) -> str:
        return self.context.get("return_url", "")


class BonusInSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "worker": _id(),
            "amount": _amount(),
            "reason": text(max_length=300),
            "key": text(max_length=100, help_text="Your idempotency key for this bonus"),
        }


class ReasonInSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "reason": text(max_length=300),
            "amount": _amount(required=False),
        }


class BonusOutSerializer(serializers.Serializer):
    bonus = serializers.IntegerField(help_text="What the worker gets (the fee is on top)")


class EarningsReleaseInSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "worker": _id(
                required=False,
                help_text="Release only this worker's held earnings; leave out for every worker",
            )
        }


class EarningsReleaseOutSerializer(serializers.Serializer):
    released = serializers.IntegerField(
        help_text="How many earnings left the hold period now (0 when nothing was held)"
    )


class ConnectLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Stripe's onboarding page; open it in a browser")


class ConnectStatusSerializer(serializers.Serializer):
    """The worker's payout account as Stripe last told us (only ``connected`` and
    ``payouts_enabled``, both false, before the worker has one)."""

    connected = serializers.SerializerMethodField()
    account = serializers.CharField(source="stripe_account_id", required=False)
    payouts_enabled = serializers.SerializerMethodField()
    details_submitted = serializers.BooleanField(required=False)
    requirements_due = serializers.ListField(child=serializers.CharField(), required=False)

    def get_connected(self, account) -> bool:
        return account is not None

    def get_payouts_enabled(self, account) -> bool:
        return account is not None and account.can_receive_transfers


class RefundRowSerializer(serializers.Serializer):
    """A refund as created: Stripe is asked after the request commits, so it starts pending."""

    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Minor units, in the job's currency")
    status = serializers.ChoiceField(choices=RefundStatus.choices)


class RefundsSerializer(serializers.Serializer):
    refunds = RefundRowSerializer(
        many=True, help_text="One per funding refunded from (newest first); empty: nothing left"
    )


class PayoutRunQueuedSerializer(serializers.Serializer):
    task = serializers.CharField(
        help_text="The id of the Celery task running the payout run (one run per currency)"
    )


class PayoutHoldSerializer(serializers.Serializer):
    """Whether the worker's payouts are held now."""

    held = serializers.BooleanField(source="payouts_held")


class ReconcileReportSerializer(serializers.Serializer):
    """What a reconciliation did (``payments.reconciliation.ReconcileReport``)."""

    transfers_seen = serializers.IntegerField(help_text="Transfers Stripe listed")
    confirmed = serializers.IntegerField(help_text="Open payouts whose transfer exists: now paid")
    resubmitted = serializers.IntegerField(
        help_text="Pending payouts with no transfer: sent again with their key"
    )
    issues = serializers.IntegerField(
        help_text="Duplicate or missing transfers found, each a reconciliation issue for an admin"
    )
