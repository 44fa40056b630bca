"""Builders for the quality service tests: published jobs over a generated scene, with gold."""

from __future__ import annotations

import pytest

from marketplace.models import Job
from payments.escrow import escrow_fund
from quality import services
from quality.shapes import annotation_to_payload
from quality.simulator import scene_truth
from tasks import claiming
from tasks.models import MicroTask
from tasks.synthetic import make_scene
from tests.factories import AdminFactory
from tests.tasks.claim_fixtures import HEIGHT, WIDTH, qualified_worker, ready_job

FRAME_SIZE = (WIDTH, HEIGHT)


class World:
    """A published job whose microtasks cover frames of one generated scene (the truth)."""

    def __init__(self, job: Job, scene):
        self.job = job
        self.scene = scene
        self.classes = list(job.label_classes)

    def frames_of(self, mt: MicroTask) -> list[int]:
        if self.job.annotation_type == "track" or not mt.frames:
            return list(range(mt.frame_start, mt.frame_end + 1))
        return [int(f) for f in mt.frames]

    def truth_for(self, mt: MicroTask):
        return scene_truth(self.scene, self.frames_of(mt), self.classes)

    def payload_for(self, mt: MicroTask, annotation=None):
        ann = self.truth_for(mt) if annotation is None else annotation
        return annotation_to_payload(ann, self.classes, annotation_type=self.job.annotation_type)

    def scene_truth_range(self, first: int, last: int):
        return scene_truth(self.scene, range(first, last + 1), self.classes)

    def regular(self):
        return list(MicroTask.objects.filter(job=self.job, is_gold=False).order_by("index"))

    def gold(self):
        return list(MicroTask.objects.filter(job=self.job, is_gold=True).order_by("index"))


def make_world(
    *,
    n: int = 4,
    gold: int = 0,
    overlap: int = 3,
    overlap_max: int = 5,
    annotation_type: str = "bbox",
    n_objects: int = 4,
    seed: int = 1,
    segment: int = 5,
    seam: int = 0,
    gold_by: str = "admin",
    publish: bool = True,
    **fields,
) -> World:
    """A published job over a generated scene. Its gold answers (the truth) are an admin's by
    default, so they count platform-wide at once; ``gold_by="requester"`` makes them the job
    requester's, pending until validated (``quality.standing``); ``gold_by=""`` leaves them
    unanswered, and ``publish=False`` the job ready (funded) but not published."""
    job = ready_job(
        n=n,
        gold=gold,
        overlap=overlap,
        annotation_type=annotation_type,
        frames_per_task=segment,
        **fields,
    )
    Job.objects.filter(pk=job.pk).update(overlap_max=max(overlap, overlap_max))
    if seam:
        # Consecutive segments share ``seam`` frames, as the ingestion splits track jobs.
        for mt in MicroTask.objects.filter(job=job):
            mt.frame_start = mt.index * (segment - seam)
            mt.frame_end = mt.frame_start + segment - 1
            mt.save(update_fields=["frame_start", "frame_end"])
    job.refresh_from_db()
    scene = make_scene(
        seed=seed,
        width=WIDTH,
        height=HEIGHT,
        frames=(n + gold) * segment + 5,
        n_objects=n_objects,
        motion=2.0,
        classes=tuple(job.label_classes),
    )
    world = World(job, scene)
    if gold_by:
        author = job.requester if gold_by == "requester" else AdminFactory()
        for mt in world.gold():
            services.gold_answer_set(microtask_id=mt.pk, payload=world.payload_for(mt), by=author)
    escrow_fund(job=job, amount=10**9, key=f"quality-test-{job.pk}")
    if not publish:
        return world
    claiming.job_publish(job=job, by=job.requester)
    job.refresh_from_db()
    world.job = job
    return world


@pytest.fixture
def world_factory(db):
    return make_world


@pytest.fixture
def workers(db):
    def make(k: int, annotation_type: str = "bbox"):
        return [qualified_worker(annotation_type) for _ in range(k)]

    return make


@pytest.fixture
def no_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


@pytest.fixture
def gold_first(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)
