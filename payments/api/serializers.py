"""Serializers of the payments API (output shapes and input validation only)."""

from __future__ import annotations

from rest_framework import serializers

from payments.models import Payout


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


class FundingInSerializer(serializers.Serializer):
    # Within PostgreSQL's bigint (a larger amount reached the database as a 500).
    amount = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class BonusInSerializer(serializers.Serializer):
    worker = serializers.IntegerField()
    amount = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(max_length=300)
    key = serializers.CharField(max_length=100, help_text="Your idempotency key for this bonus")


class ReasonInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)
    amount = serializers.IntegerField(required=False, min_value=1)
