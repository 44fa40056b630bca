"""Builders shared by the claim-path tests: a published job with microtasks, qualified workers."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from marketplace.models import JobStatus, Qualification, QualificationStatus
from payments.escrow import escrow_fund
from tasks import claiming
from tasks.models import MicroTask
from tests.factories import JobFactory, VideoFactory, WorkerFactory

WIDTH, HEIGHT = 640, 360


def manifest_for(frames: list[int], *, base: str = "/media/frames/test") -> dict:
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "frames": [
            {"frame": f, "url": f"{base}/{f:06d}.jpg", "timestamp": round(f / 30, 4)}
            for f in frames
        ],
    }


def ready_job(
    *,
    n: int = 10,
    gold: int = 0,
    overlap: int = 3,
    annotation_type: str = "bbox",
    budget: int | None = None,
    price: int = 50,
    frames_per_task: int = 5,
    **job_fields,
):
    """A ready job with ``n`` ordinary and ``gold`` gold microtasks, its escrow funded with
    ``budget`` (not yet published)."""
    job = JobFactory(
        status=JobStatus.READY,
        annotation_type=annotation_type,
        overlap_min=overlap,
        overlap_max=max(overlap, 5),
        budget=budget if budget is not None else 10**9,
        **job_fields,
    )
    video = VideoFactory(job=job, width=WIDTH, height=HEIGHT, frame_count=100_000)
    rows = []
    for i in range(n + gold):
        start = i * frames_per_task
        end = start + frames_per_task - 1
        frames = list(range(start, end + 1))
        rows.append(
            MicroTask(
                job=job,
                video=video,
                index=i,
                frame_start=start,
                frame_end=end,
                frames=frames if annotation_type != "track" else [],
                manifest=manifest_for(frames),
                price=price,
                is_gold=i >= n,
                replica_target=1 if i >= n else overlap,
            )
        )
    MicroTask.objects.bulk_create(rows)
    if job.budget:
        escrow_fund(job=job, amount=job.budget, key=f"test-fund:{job.pk}")
    return job


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (seed * 37 % 256, seed * 91 % 256, 120)).save(buf, "JPEG")
    return buf.getvalue()


def store_frames(job, *, as_media_url: bool = False) -> dict[str, bytes]:
    """Rewrite the job's manifests as ingestion writes them (storage names under the video's
    folder, or their ``/media/`` URLs) with the images in storage; returns name -> bytes."""
    stored = {}
    for mt in MicroTask.objects.filter(job=job).select_related("video"):
        entries = []
        for f in range(mt.frame_start, mt.frame_end + 1):
            name = f"{mt.video.frames_prefix}/{f:06d}.jpg"
            if name not in stored:
                stored[name] = _jpeg(f + 1)
                default_storage.save(name, ContentFile(stored[name]))
            ref = {"url": f"/media/{name}"} if as_media_url else {"image": name}
            entries.append({"frame": f, "time": f / 30, **ref})
        mt.manifest = {"video": mt.video_id, "width": WIDTH, "height": HEIGHT, "frames": entries}
        mt.save(update_fields=["manifest"])
    return stored


def published_job(**kwargs):
    job = ready_job(**kwargs)
    claiming.job_publish(job=job, by=job.requester)
    job.refresh_from_db()
    return job


def qualify(worker, annotation_type: str = "bbox"):
    Qualification.objects.update_or_create(
        worker=worker,
        annotation_type=annotation_type,
        defaults={"status": QualificationStatus.PASSED, "score": 1.0},
    )
    return worker


def qualified_worker(annotation_type: str = "bbox", **kwargs):
    return qualify(WorkerFactory(**kwargs), annotation_type)


def now():
    return timezone.now()
