"""Thin API views of ingestion: upload videos to a draft job, follow progress. (Processing it,
``POST /api/jobs/{id}/process/``, is an action of ``quality.api.jobs.JobWithReviewViewSet``, which
answers the job with its review mode.)"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import IsRequester
from marketplace.api.schema import error_response
from tasks import ingestion_selectors, ingestion_uploads
from tasks.models import MicroTask, Video

from .serializers import (
    IngestionProgressSerializer,
    MicroTaskSerializer,
    VideoSerializer,
    VideoUploadResultSerializer,
    VideoUploadSerializer,
)

# Multipart framing around the file; a request longer than the limit plus this is refused before
# its body is read.
MULTIPART_SLACK = 64 * 1024


class _JobScoped:
    permission_classes = [IsRequester]

    def job(self):
        return ingestion_selectors.job_for_requester(
            user=self.request.user, job_id=self.kwargs["job_id"]
        )


class JobVideosView(_JobScoped, generics.ListAPIView):
    """A job's videos with their ingestion status, stage and percent; POST uploads more: each
    good file is added and each bad one named with its reason (201 while one was added)."""

    serializer_class = VideoSerializer
    parser_classes = [MultiPartParser]
    queryset = Video.objects.none()
    ordering_fields = ["id", "created_at"]
    ordering = ["id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Video.objects.none()
        return ingestion_selectors.videos_of_job(self.job())

    @extend_schema(
        request=VideoUploadSerializer,
        responses={201: VideoUploadResultSerializer, 413: error_response(413)},
    )
    def post(self, request, job_id: int):
        job = self.job()  # 404 before the body is read
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        limit, most = settings.VIDEO_UPLOAD_MAX_BYTES, settings.VIDEO_UPLOAD_MAX_FILES
        # Room for every file of a full upload at the limit: one oversized file among good ones
        # is named in the answer (``videos_upload_each``), not a reason to refuse them all.
        if length > limit * most + MULTIPART_SLACK:
            raise ingestion_uploads.UploadTooLarge(
                f"The upload is {length / 1024 / 1024:.1f} MB; the limit is "
                f"{limit / 1024 / 1024:.1f} MB per video, {most} videos per upload."
            )
        data = VideoUploadSerializer(data={"file": request.FILES.getlist("file")})
        data.is_valid(raise_exception=True)
        files = data.validated_data["file"]
        result = ingestion_uploads.videos_upload_each(job=job, by=request.user, files=files)
        body = {
            "videos": VideoSerializer(result.videos, many=True).data,
            "refused": [r.as_dict() for r in result.refused],
        }
        return Response(body, status=status.HTTP_201_CREATED)


class JobVideoDetailView(_JobScoped, generics.RetrieveDestroyAPIView):
    """One video of a job; DELETE removes it while the job is a draft."""

    serializer_class = VideoSerializer
    queryset = Video.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Video.objects.none()
        return ingestion_selectors.videos_of_job(self.job())

    def perform_destroy(self, instance: Video) -> None:
        ingestion_uploads.video_delete(video_obj=instance, by=self.request.user)


class JobIngestionView(_JobScoped, APIView):
    """Ingestion progress of a job: overall percent and each video's stage and percent."""

    @extend_schema(responses=IngestionProgressSerializer)
    def get(self, request, job_id: int):
        return Response(ingestion_selectors.job_ingestion_progress(self.job()))


class JobMicroTasksView(_JobScoped, generics.ListAPIView):
    """A job's microtasks with complexity features and frame manifests (requesters only)."""

    serializer_class = MicroTaskSerializer
    queryset = MicroTask.objects.none()
    filterset_fields = ["video", "status"]
    ordering_fields = ["index", "complexity", "motion", "clutter"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MicroTask.objects.none()
        return ingestion_selectors.microtasks_of_job(self.job())


class JobMicroTaskDetailView(_JobScoped, generics.RetrieveAPIView):
    serializer_class = MicroTaskSerializer
    queryset = MicroTask.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MicroTask.objects.none()
        return ingestion_selectors.microtasks_of_job(self.job())
