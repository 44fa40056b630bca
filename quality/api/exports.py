"""The requester's dataset download."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from marketplace.api.error_schema import ERROR
from marketplace.api.permissions import IsRequester
from quality import exporting
from tasks import ingestion_selectors


class JobExportView(APIView):
    """Download a job's consensus labels: COCO JSON, MOT 1.1 (zip), CVAT for video XML, Label
    Studio JSON or YOLO (zip); polygon jobs as COCO segmentation, CVAT polygons or YOLO
    segmentation. The file is streamed as it is written.

    Only results that rest on approved work are in the file; each download is recorded, and a
    later rejection of the work it carried goes to an admin as a dispute.
    """

    permission_classes = [IsRequester]

    @extend_schema(
        parameters=[
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(exporting.FORMATS))
        ],
        responses={
            # What ``exporting.job_export`` serves: COCO and Label Studio as JSON, MOT and YOLO
            # as a zip, CVAT as XML (a zip of one XML per video when the job has several).
            # Approved work only; headers:
            # X-Export-Id (the recorded export), X-Export-Microtasks (results delivered),
            # X-Export-Withheld (results waiting on work not approved).
            # COCO and ActivityNet are objects; Label Studio's import format is a list of tasks.
            (200, "application/json"): {
                "oneOf": [
                    # One object entry for both: two alike would make every object match both
                    # branches of the oneOf, which a oneOf forbids.
                    {
                        "type": "object",
                        "description": "COCO, or ActivityNet (event jobs)",
                        "additionalProperties": True,
                    },
                    {
                        "type": "array",
                        "description": "Label Studio tasks",
                        "items": {"type": "object", "additionalProperties": True},
                    },
                ]
            },
            (200, "application/zip"): OpenApiTypes.BINARY,
            (200, "application/xml"): OpenApiTypes.BINARY,
            400: OpenApiResponse(ERROR, description="Unknown format"),
            409: OpenApiResponse(ERROR, description="A format that cannot carry the job's type"),
            403: OpenApiResponse(ERROR, description="Not a requester"),
            404: OpenApiResponse(ERROR, description="No such job of yours"),
        },
    )
    def get(self, request, job_id: int, fmt: str):
        job = ingestion_selectors.job_for_requester(user=request.user, job_id=job_id)
        export = exporting.job_export(job=job, fmt=fmt, by=request.user)
        # Streamed from the export's temporary file (closed by the response when sent).
        response = FileResponse(
            export.file,
            content_type=export.content_type,
            as_attachment=True,
            filename=export.filename,
        )
        response["Content-Length"] = str(export.size)
        response["X-Export-Id"] = str(export.export_id)
        response["X-Export-Microtasks"] = str(export.microtasks)
        response["X-Export-Withheld"] = str(export.withheld)
        return response
