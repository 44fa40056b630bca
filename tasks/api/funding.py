"""The requester's money endpoints that need the job's microtasks: its quote (pricing every
microtask), funding it at that quote, and bonuses to workers who handed work in. Their routes
keep the ``payments-*`` names and ``/api/payments/`` paths clients know."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.error_schema import ErrorSerializer
from marketplace.api.permissions import IsRequester
from marketplace.api.schema import error_response
from marketplace.api.throttles import THROTTLED, FundingCheckThrottle
from marketplace.errors import NotFound
from marketplace.models import Role, User
from marketplace.selectors import jobs_visible_to
from payments import funding as pay_funding
from payments.api import serializers as s
from tasks import paying, quoting


def _job(request: Request, pk: int):
    job = jobs_visible_to(request.user).filter(pk=pk).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def _return_url(request: Request, job) -> str:
    """Where Checkout sends the payer back: the job's funding page."""
    return request.build_absolute_uri(reverse("payments-job-funding", args=[job.pk]))


class JobQuoteView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(request=None, responses=s.QuoteSerializer)
    def post(self, request: Request, pk: int) -> Response:
        quote = quoting.job_prices_save(job=_job(request, pk))
        return Response(s.QuoteSerializer(quote).data)


class JobFundView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(
        request=s.FundingInSerializer,
        responses={
            201: s.FundingOutSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Invalid input, or nothing left to fund (under Stripe's minimum)",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The payment would exceed the job's budget (`over_budget`: fund "
                "with `fit_budget`, or raise the budget), a bank payment of the job still "
                "processing already pays for it (`funding_processing`: its amount counts "
                "toward the quote's need and the budget until the bank answers), the job is "
                "finished, or its currency is not priced",
            ),
            502: error_response(502),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        """Open a Stripe Checkout Session for the job's quote (or `amount`); send the payer to
        `checkout_url`."""
        data = s.FundingInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = _job(request, pk)
        return_url = _return_url(request, job)
        f = paying.job_funding_create(
            job=job,
            requester=request.user,
            return_url=return_url,
            amount=data.validated_data.get("amount"),
            fit_budget=data.validated_data.get("fit_budget", False),
        )
        return Response(
            s.FundingOutSerializer(f, context={"return_url": return_url}).data,
            status=status.HTTP_201_CREATED,
        )


class JobFundingCheckView(APIView):
    """Ask Stripe now whether a funding was paid (what the funding page does when the payer
    comes back from Checkout); idempotent: Stripe's confirmation credits the escrow once."""

    permission_classes = [IsRequester]
    # Each check asks Stripe: per requester, THROTTLE_RATES["funding_check"] (with the page's).
    throttle_classes = [FundingCheckThrottle]

    @extend_schema(
        request=None,
        responses={
            200: s.FundingOutSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such job, or funding of it"),
            409: OpenApiResponse(ErrorSerializer, description="The job is finished"),
            429: THROTTLED,
        },
    )
    def post(self, request: Request, pk: int, funding_id: int) -> Response:
        job = _job(request, pk)
        funding = job.fundings.filter(pk=funding_id).first()
        if funding is None:
            raise NotFound("No such funding.")
        pay_funding.funding_check(job=job, requester=request.user)
        funding = pay_funding.funding_refresh(funding=funding)
        return_url = _return_url(request, job)
        return Response(s.FundingOutSerializer(funding, context={"return_url": return_url}).data)


class JobBonusView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(
        request=s.BonusInSerializer,
        responses={
            201: s.BonusOutSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Invalid input, or the worker has no submitted work on this job "
                "(`bonus_not_allowed`)",
            ),
            401: OpenApiResponse(ErrorSerializer, description="Not signed in"),
            403: OpenApiResponse(ErrorSerializer, description="Not a requester"),
            404: OpenApiResponse(ErrorSerializer, description="No such job, or worker"),
            409: OpenApiResponse(
                ErrorSerializer, description="The job's available escrow does not cover it"
            ),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        data = s.BonusInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        worker = User.objects.filter(pk=v["worker"], role=Role.WORKER).first()
        if worker is None:
            raise NotFound("No such worker.")
        pay = paying.bonus_grant(
            job=_job(request, pk),
            worker=worker,
            amount=v["amount"],
            reason=v["reason"],
            actor=request.user,
            key=v["key"],
        )
        return Response({"bonus": pay}, status=status.HTTP_201_CREATED)
