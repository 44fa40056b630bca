"""Pages of ingestion: the upload and processing section of the requester's job page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from marketplace.errors import ApplicationError
from marketplace.selectors import jobs_visible_to

from . import ingestion_pipeline, ingestion_uploads
from .models import Video


def _job(request: HttpRequest, pk: int):
    if not (request.user.is_requester or request.user.is_staff):
        raise Http404("Requesters only.")
    return get_object_or_404(jobs_visible_to(request.user), pk=pk)


@login_required
@require_POST
def job_videos_upload(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    files = request.FILES.getlist("file")
    try:
        result = ingestion_uploads.videos_upload_each(job=job, by=request.user, files=files)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("requester-job-detail", pk=job.pk)
    names = ", ".join(v.original_name for v in result.videos)
    messages.success(request, f"Uploaded {names}. Process the job when all videos are in.")
    for refusal in result.refused:  # each bad file by name, with its reason
        messages.error(request, refusal.error.message)
    return redirect("requester-job-detail", pk=job.pk)


@login_required
@require_POST
def job_video_delete(request: HttpRequest, pk: int, video_id: int) -> HttpResponse:
    job = _job(request, pk)
    v = get_object_or_404(Video, pk=video_id, job=job)
    try:
        ingestion_uploads.video_delete(video_obj=v, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed {v.original_name}.")
    return redirect("requester-job-detail", pk=job.pk)


@login_required
@require_POST
def job_process(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    try:
        ingestion_pipeline.job_process(job=job, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Processing started: videos are probed, split and measured.")
    return redirect("requester-job-detail", pk=job.pk)
