"""The requester's dataset download."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from marketplace.api.permissions import IsRequester
from marketplace.api.schema import error_response
from tasks import exporting, ingestion_selectors


class JobExportView(APIView):
    """Download a job's consensus labels as COCO JSON, MOT 1.1 (zip) or CVAT for video XML."""

    permission_classes = [IsRequester]

    @extend_schema(
        parameters=[
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(exporting.FORMATS))
        ],
        responses={
            # What ``exporting.job_export`` serves: COCO as JSON, MOT as a zip, CVAT as XML
            # (a zip of one XML per video when the job has several).
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "application/zip"): OpenApiTypes.BINARY,
            (200, "application/xml"): OpenApiTypes.BINARY,
            400: error_response(400),
        },
    )
    def get(self, request, job_id: int, fmt: str):
        job = ingestion_selectors.job_for_requester(user=request.user, job_id=job_id)
        export = exporting.job_export(job=job, fmt=fmt)
        response = HttpResponse(export.content, content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response
