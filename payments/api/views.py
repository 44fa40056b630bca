"""Thin API views of the payments app: validate, call one service, serialize."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import IsPlatformAdmin, IsRequester, IsWorker
from marketplace.api.schema import error_response
from marketplace.errors import NotFound
from marketplace.models import Role, User
from marketplace.selectors import jobs_visible_to
from payments import clawbacks, connect, funding, posting, reconciliation, selectors
from payments.api import serializers as s
from payments.models import Payout

# Views that call Stripe answer 502 when it fails or refuses (``payments.errors.StripeError``).
STRIPE_FAILED = error_response(502)


def _job(request: Request, pk: int):
    job = jobs_visible_to(request.user).filter(pk=pk).first()
    if job is None:
        raise NotFound("No such job.")
    return job


class JobEscrowView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(responses=s.EscrowSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.EscrowSerializer(selectors.escrow_balance(job=_job(request, pk))).data)


class JobRefundView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(request=None, responses={201: s.RefundsSerializer, 502: STRIPE_FAILED})
    def post(self, request: Request, pk: int) -> Response:
        refunds = funding.job_refund_unspent(job=_job(request, pk), actor=request.user)
        return Response(
            s.RefundsSerializer({"refunds": refunds}).data, status=status.HTTP_201_CREATED
        )


class EarningsView(APIView):
    permission_classes = [IsWorker]

    @extend_schema(responses=s.EarningsSerializer)
    def get(self, request: Request) -> Response:
        return Response(s.EarningsSerializer(selectors.worker_earnings(worker=request.user)).data)


class PayoutListView(ListAPIView):
    serializer_class = s.PayoutSerializer
    filterset_fields = ("status",)

    def get_queryset(self):
        return selectors.payouts_visible_to(self.request.user).order_by("-id")


class ConnectOnboardingView(APIView):
    permission_classes = [IsWorker]

    @extend_schema(request=None, responses={201: s.ConnectLinkSerializer, 502: STRIPE_FAILED})
    def post(self, request: Request) -> Response:
        """A Stripe onboarding link. Its return and refresh pages carry a signed state for your
        account, so they work in a browser without signing in (``payments.connect``)."""
        url = connect.onboarding_link_create(
            worker=request.user,
            refresh_url=request.build_absolute_uri("/payments/connect/refresh/"),
            return_url=request.build_absolute_uri("/payments/connect/return/"),
            with_state=True,
        )
        return Response({"url": url}, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.ConnectStatusSerializer)
    def get(self, request: Request) -> Response:
        account = getattr(request.user, "connected_account", None)
        if account is None:
            return Response({"connected": False, "payouts_enabled": False})
        return Response(s.ConnectStatusSerializer(account).data)


class AdminPayoutRunView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(request=None, responses={202: s.PayoutRunQueuedSerializer})
    def post(self, request: Request) -> Response:
        from payments.tasks import payout_run_task

        result = payout_run_task.delay(request.user.pk, "on demand")
        return Response(
            s.PayoutRunQueuedSerializer({"task": result.id}).data, status=status.HTTP_202_ACCEPTED
        )


class AdminEarningsReleaseView(APIView):
    """Release held earnings now (one worker's or everyone's), so a payout run can pay them."""

    permission_classes = [IsPlatformAdmin]

    @extend_schema(
        request=s.EarningsReleaseInSerializer,
        responses={200: s.EarningsReleaseOutSerializer, 404: error_response(404)},
    )
    def post(self, request: Request) -> Response:
        data = s.EarningsReleaseInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        worker = None
        if "worker" in data.validated_data:
            worker = User.objects.filter(pk=data.validated_data["worker"], role=Role.WORKER).first()
            if worker is None:
                raise NotFound("No such worker.")
        released = funding.earnings_release_now(actor=request.user, worker=worker)
        return Response(s.EarningsReleaseOutSerializer({"released": released}).data)


class AdminWorkerHoldView(APIView):
    permission_classes = [IsPlatformAdmin]

    def _worker(self, pk: int) -> User:
        return get_object_or_404(User, pk=pk, role=Role.WORKER)

    @extend_schema(request=s.ReasonInSerializer, responses=s.PayoutHoldSerializer)
    def post(self, request: Request, pk: int) -> Response:
        data = s.ReasonInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = clawbacks.worker_payouts_hold(
            worker=self._worker(pk), reason=data.validated_data["reason"], actor=request.user
        )
        return Response(s.PayoutHoldSerializer(profile).data)

    @extend_schema(request=None, responses={200: s.PayoutHoldSerializer})
    def delete(self, request: Request, pk: int) -> Response:
        profile = clawbacks.worker_payouts_release(worker=self._worker(pk), actor=request.user)
        return Response(s.PayoutHoldSerializer(profile).data)


class AdminPayoutReverseView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(
        request=s.ReasonInSerializer, responses={200: s.PayoutSerializer, 502: STRIPE_FAILED}
    )
    def post(self, request: Request, pk: int) -> Response:
        data = s.ReasonInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payout = clawbacks.payout_reverse(
            payout=get_object_or_404(Payout, pk=pk),
            reason=data.validated_data["reason"],
            amount=data.validated_data.get("amount"),
            actor=request.user,
        )
        return Response(s.PayoutSerializer(payout).data)


class AdminReconcileView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(request=None, responses={200: s.ReconcileReportSerializer, 502: STRIPE_FAILED})
    def post(self, request: Request) -> Response:
        report = reconciliation.payouts_reconcile()
        posting.audit_log_record(
            action="payouts.reconciled", actor=request.user, detail_report=report.__dict__
        )
        return Response(s.ReconcileReportSerializer(report).data)
