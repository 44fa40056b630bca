"""Reads of video ingestion, scoped to who is asking (another requester's job is a 404)."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import Avg, Count, Q, QuerySet

from marketplace.errors import NotFound
from marketplace.models import Job, User
from marketplace.selectors import jobs_visible_to

from .models import MicroTask, Video, VideoStatus


def job_for_requester(*, user: User, job_id: int) -> Job:
    job = jobs_visible_to(user).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def videos_of_job(job: Job) -> QuerySet[Video]:
    return Video.objects.filter(job=job).annotate(microtask_count=Count("microtasks"))


def microtasks_of_job(job: Job) -> QuerySet[MicroTask]:
    return MicroTask.objects.filter(job=job).select_related("video").order_by("video_id", "index")


def job_ingestion_progress(job: Job) -> dict:
    """Aggregated ingestion progress of a job and per-video stage and percent."""
    agg = job.videos.aggregate(
        n=Count("pk"),
        progress=Avg("progress"),
        ready=Count("pk", filter=Q(status=VideoStatus.READY)),
        failed=Count("pk", filter=Q(status=VideoStatus.FAILED)),
    )
    videos = list(
        job.videos.order_by("pk").values(
            "id", "original_name", "status", "stage", "progress", "failure_reason"
        )
    )
    return {
        "job": job.pk,
        "status": job.status,
        "failure_reason": job.failure_reason,
        "videos_total": agg["n"],
        "videos_ready": agg["ready"],
        "videos_failed": agg["failed"],
        "progress": round(agg["progress"] or 0.0, 1),
        "microtasks": job.microtasks.count(),
        "videos": videos,
    }


def manifest_with_urls(manifest: dict, *, storage=None) -> dict:
    """A microtask's manifest with an image URL for every frame (signed URLs are made now; null
    for a frame stored without an image)."""
    storage = storage or default_storage
    out = dict(manifest)
    out["frames"] = [
        {**f, "url": storage.url(f["image"]) if f.get("image") else None}
        for f in manifest.get("frames", [])
    ]
    return out
