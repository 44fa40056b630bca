"""Builders of the proposal tests: jobs whose microtasks show a generated clip (truth known), and
the local model server (``ml_local``, a real HTTP process in a thread) on a free port."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from marketplace.models import JobStatus
from tasks.models import MicroTask
from tasks.synthetic import Scene, make_scene, render_frame
from tests.factories import JobFactory, VideoFactory

WIDTH, HEIGHT = 160, 120


SCENE_PARAMS = {"seed": 3, "frames": 60, "n_objects": 2, "motion": 3.0, "clutter": 4}


def clip_scene() -> Scene:
    return make_scene(width=WIDTH, height=HEIGHT, classes=("car", "person"), **SCENE_PARAMS)


def scene_spec() -> str:
    """The ``ml_local --scene`` spec of ``clip_scene()``: the process renders the same truth."""
    params = {"width": WIDTH, "height": HEIGHT, **SCENE_PARAMS}
    return ",".join(f"{k}={v}" for k, v in params.items())


def _jpeg(pixels) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def clip_job(
    scene: Scene,
    *,
    annotation_type: str = "bbox",
    tasks: list[tuple[int, int]] = ((0, 59),),
    step: int = 6,
    gold: tuple[int, ...] = (),
    status: str = JobStatus.READY,
    classes: tuple[str, ...] = ("car", "person"),
    **job_fields,
):
    """A job with one microtask per (start, end) of ``scene``; its frames (every ``step``-th, or
    every frame for tracks) stored as ingestion stores them."""
    job = JobFactory(
        status=status,
        annotation_type=annotation_type,
        label_classes=list(classes),
        keyframe_step=step,
        **job_fields,
    )
    video = VideoFactory(job=job, width=WIDTH, height=HEIGHT, frame_count=scene.frames)
    for index, (start, end) in enumerate(tasks):
        numbers = (
            list(range(start, end + 1))
            if annotation_type == "track"
            else list(range(start, end + 1, step))
        )
        entries = []
        for f in numbers:
            name = f"{video.frames_prefix}/{f:06d}.jpg"
            if not default_storage.exists(name):
                default_storage.save(name, ContentFile(_jpeg(render_frame(scene, f))))
            entries.append({"frame": f, "time": f / 30, "image": name})
        MicroTask.objects.create(
            job=job,
            video=video,
            index=index,
            frame_start=start,
            frame_end=end,
            frames=[] if annotation_type == "track" else numbers,
            keyframe_step=step if annotation_type == "track" else 1,
            manifest={"width": WIDTH, "height": HEIGHT, "frames": entries},
            is_gold=index in gold,
            replica_target=1 if index in gold else 3,
        )
    return job
