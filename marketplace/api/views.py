"""Thin API views: validate input, call one service, serialize the result."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import lifecycle, login_guard, ratelimit, selectors, services
from marketplace.api.schema import ErrorSerializer
from marketplace.errors import PermissionDenied, RateLimited
from marketplace.models import Job, Role

from .filters import JobFilter
from .permissions import IsRequester
from .serializers import JobSerializer
from .throttles import THROTTLED, LoginThrottle, SignupThrottle


class JobViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A requester's jobs. Other requesters' jobs are invisible (404), not forbidden.

    Mounted by ``quality.api.jobs`` (which adds the job's review mode, quality's to know), not
    here."""

    serializer_class = JobSerializer
    permission_classes = [IsRequester]
    filterset_class = JobFilter
    ordering_fields = ["created_at", "budget", "priority", "deadline", "title"]
    ordering = ["-created_at"]

    queryset = Job.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        return selectors.jobs_visible_to(self.request.user).select_related("requester")

    def perform_create(self, serializer: JobSerializer) -> None:
        serializer.instance = services.job_create(
            requester=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: JobSerializer) -> None:
        serializer.instance = services.job_update(
            job=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    @extend_schema(request=None)  # answers the job as the view's serializer shows it
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):  # format: the router's /cancel.json route
        job = lifecycle.job_cancel(job=self.get_object(), by=request.user)
        return Response(self.get_serializer(job).data)


class SignupSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{3,150}$")
    # Length, common passwords, likeness to the username: AUTH_PASSWORD_VALIDATORS, applied by
    # services.user_create for every sign-up path.
    password = serializers.CharField(
        min_length=8,
        max_length=128,
        write_only=True,
        # The schema states the minimum; the words are the password validator's own.
        error_messages={
            "min_length": "This password is too short. It must contain at least 8 characters."
        },
    )
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    role = serializers.ChoiceField(choices=[Role.REQUESTER, Role.WORKER])
    organisation = serializers.CharField(required=False, allow_blank=True, max_length=200)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    username = serializers.CharField()
    role = serializers.CharField()


class SignupView(APIView):
    """Create a requester or worker account and return its API token.

    Limited per client IP (``THROTTLE_RATES["signup"]``, one count with the sign-up page); the
    password must pass Django's password validators (``services.user_create``)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [SignupThrottle]

    @extend_schema(
        request=SignupSerializer,
        responses={
            201: TokenSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="Invalid fields (a weak password among them)"
            ),
            429: THROTTLED,
        },
    )
    def post(self, request):
        data = SignupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(**data.validated_data)
        token, _ = Token.objects.get_or_create(user=user)
        return Response(
            {"token": token.key, "username": user.username, "role": user.role},
            status=status.HTTP_201_CREATED,
        )


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True)


class TokenView(APIView):
    """Exchange a username and password for an API token.

    Limited per client IP (``THROTTLE_RATES["login"]``, one count with the login page) and
    behind the failed-login lockout (``marketplace.login_guard``): while an account or an IP is
    locked even the right password gets 429, with ``Retry-After`` and when to come back."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [LoginThrottle]

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Missing fields"),
            403: OpenApiResponse(ErrorSerializer, description="Wrong username or password"),
            429: THROTTLED,
        },
    )
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
            lock = login_guard.lockout_for(
                username=data.validated_data["username"], ip=ratelimit.client_ip(request)
            )
            if lock is not None:
                raise RateLimited(lock.message, retry_after=lock.retry_after)
            raise PermissionDenied("Wrong username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key, "username": user.username, "role": user.role})


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()


class MeView(APIView):
    """Who the caller is."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        user = request.user
        return Response(
            MeSerializer({"id": user.pk, "username": user.username, "role": user.role}).data
        )
