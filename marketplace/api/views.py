"""Thin API views: validate input, call one service, serialize the result."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import selectors, services
from marketplace.errors import PermissionDenied
from marketplace.models import Job, Role

from .filters import JobFilter
from .permissions import IsRequester
from .schema import error_response
from .serializers import JobSerializer


class JobViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A requester's jobs. Other requesters' jobs are invisible (404), not forbidden."""

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
            job=serializer.instance, **serializer.validated_data
        )

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):  # format: the router's /cancel.json route
        job = services.job_cancel(job=self.get_object(), by=request.user)
        return Response(JobSerializer(job).data)


class SignupSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{3,150}$")
    password = serializers.CharField(min_length=8, write_only=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=[Role.REQUESTER, Role.WORKER])
    organisation = serializers.CharField(required=False, allow_blank=True, max_length=200)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    username = serializers.CharField()
    role = serializers.CharField()


class SignupView(APIView):
    """Create a requester or worker account and return its API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=SignupSerializer, responses={201: TokenSerializer})
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
    username = serializers.CharField()
    password = serializers.CharField(write_only=True)


class TokenView(APIView):
    """Exchange a username and password for an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        request=LoginSerializer, responses={200: TokenSerializer, 403: error_response(403)}
    )
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
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
