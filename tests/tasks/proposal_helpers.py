"""Builders of the proposal tests: jobs whose microtasks show a generated clip (truth known) or
still frames (a standing person for the HOG detector), their frames stored as ingestion stores
them."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw, ImageFilter

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


def standing_person(
    width: int = 320, height: int = 240, *, x: int = 160, top: int = 20, size: int = 100
):
    """A frame with a dark standing figure (head, torso, arms, legs; ``size`` pixels tall) on a
    light background — what OpenCV's HOG people detector was trained to find — and the figure's
    tight box."""
    im = Image.new("RGB", (width, height), (200, 200, 190))
    d = ImageDraw.Draw(im)
    h, fill = size / 8, (40, 40, 50)
    d.ellipse([x - h * 0.5, top, x + h * 0.5, top + h * 1.1], fill=fill)
    for side in (-1, 1):
        d.polygon(
            [
                (x + side * h, top + h * 1.3),
                (x + side * h * 1.4, top + h * 4.0),
                (x + side * h * 1.1, top + h * 4.1),
                (x + side * h * 0.7, top + h * 1.6),
            ],
            fill=fill,
        )
        d.polygon(
            [
                (x + side * h * 0.05, top + h * 4.1),
                (x + side * h * 0.8, top + h * 4.1),
                (x + side * h * 0.8, top + h * 8),
                (x + side * h * 0.2, top + h * 8),
            ],
            fill=fill,
        )
    d.polygon(
        [
            (x - h, top + h * 1.3),
            (x + h, top + h * 1.3),
            (x + h * 0.8, top + h * 4.2),
            (x - h * 0.8, top + h * 4.2),
        ],
        fill=fill,
    )
    im = im.filter(ImageFilter.GaussianBlur(1))
    return np.asarray(im), [x - h * 1.4, top, x + h * 1.4, top + size]


def stills_job(images, *, classes=("person", "car"), **job_fields):
    """A ready bbox job of one microtask whose frames 0, 1, ... are ``images`` (RGB arrays)."""
    height, width = images[0].shape[:2]
    job = JobFactory(
        status=JobStatus.READY, annotation_type="bbox", label_classes=list(classes), **job_fields
    )
    video = VideoFactory(job=job, width=width, height=height, frame_count=len(images))
    entries = []
    for f, pixels in enumerate(images):
        name = default_storage.save(
            f"{video.frames_prefix}/{f:06d}.jpg", ContentFile(_jpeg(pixels))
        )
        entries.append({"frame": f, "time": f / 30, "image": name})
    MicroTask.objects.create(
        job=job,
        video=video,
        index=0,
        frame_start=0,
        frame_end=len(images) - 1,
        frames=list(range(len(images))),
        manifest={"width": width, "height": height, "frames": entries},
    )
    return job
