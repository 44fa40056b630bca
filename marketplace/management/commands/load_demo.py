"""Load the demo: one user per role, the seeded qualification tests, and jobs that went through
the real pipeline.

Idempotent: running it twice changes nothing. The demo videos are synthetic (``tasks.synthetic``)
and go through the same services a requester's upload does — ingestion (in-process in the
embedded mode), pricing, escrow funding, publishing — so that after ``make run`` a worker can log
in and claim work straight away. The first two jobs' funding is credited to escrow directly
(as Stripe's confirmed payment would be), so there is work at once; the third is left ready and
unfunded, for the requester to pay through Stripe Checkout on its funding page (``make run``
starts the local Stripe server and points the app and its webhooks at it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace import services
from marketplace.models import (
    AnnotationType,
    Job,
    JobStatus,
    Qualification,
    QualificationStatus,
    Role,
    User,
)

DEMO_PASSWORD = "demo-pass-123"
DEMO_USERS = [
    ("admin", Role.ADMIN, {}),
    ("requester", Role.REQUESTER, {"organisation": "Demo Robotics"}),
    ("worker", Role.WORKER, {"country": "US"}),
    ("worker2", Role.WORKER, {"country": "DE"}),
]
DEMO_QUALIFIED = {
    "worker": (AnnotationType.BBOX, AnnotationType.TRACK),
    "worker2": (AnnotationType.BBOX,),
}
CLASSES = ["car", "person"]
DEMO_JOBS = [
    {
        "title": "Cars and pedestrians at a crossing",
        "instructions": "Draw a tight box around every car and person. Boxes include the whole "
        "visible object; skip objects less than half visible.",
        "annotation_type": AnnotationType.BBOX,
        "frame_step": 10,
        "frames_per_task": 5,
        "scene": {"seed": 7, "frames": 300, "n_objects": 3, "motion": 2.0},
    },
    {
        "title": "Track every vehicle through the clip",
        "instructions": "Follow each object with one track. Put a keyframe where it changes "
        "direction; mark it outside when it leaves the picture.",
        "annotation_type": AnnotationType.TRACK,
        "segment_frames": 60,
        "overlap_frames": 10,
        "keyframe_step": 10,
        "scene": {"seed": 11, "frames": 240, "n_objects": 2, "motion": 3.0, "shot_cuts": (120,)},
    },
    {
        # Nobody is qualified yet: a demo worker takes the seeded event test first.
        "title": "When does someone cross? (events on the timeline)",
        "instructions": "On the timeline, mark each stretch of frames with a car in the picture "
        "as a 'car' event and each stretch with a person as a 'person' event.",
        "annotation_type": AnnotationType.EVENT,
        "segment_frames": 60,
        "keyframe_step": 3,
        "expected_objects": 2,
        "scene": {"seed": 13, "frames": 180, "n_objects": 2, "motion": 4.0},
    },
    {
        # Left for the requester to fund in the browser (Checkout) and publish.
        "title": "Boxes on a parking lot (fund me)",
        "instructions": "Draw a tight box around every car and person.",
        "annotation_type": AnnotationType.BBOX,
        "frame_step": 10,
        "frames_per_task": 5,
        "scene": {"seed": 5, "frames": 150, "n_objects": 2, "motion": 1.0},
        "funded": False,
    },
    {
        # Segmentation: priced and ready; the requester funds and publishes it. Workers take the
        # seeded mask test first (load_demo seeds every type's questions).
        "title": "Paint every car and person (masks, fund me)",
        "instructions": "Paint each car and person with the brush, one mask per object; use "
        "Polygon to mask for straight edges and Fill for holes.",
        "annotation_type": AnnotationType.MASK,
        "consensus_method": "staple",
        "frame_step": 15,
        "frames_per_task": 2,
        "scene": {"seed": 13, "frames": 90, "n_objects": 2, "motion": 1.5},
        "funded": False,
    },
]


class Command(BaseCommand):
    help = "Load the demo (users, ingested and funded jobs). Safe to run twice."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--users-only", action="store_true", help="Create the demo users, no jobs."
        )

    def handle(self, *args, users_only: bool = False, **options) -> None:
        with transaction.atomic():
            for username, role, extra in DEMO_USERS:
                if not User.objects.filter(username=username).exists():
                    services.user_create(
                        username=username,
                        password=DEMO_PASSWORD,
                        role=role,
                        email=f"{username}@demo.test",
                        **extra,
                    )
            # worker2 still has the track test to take (seeded below), to show the flow.
            for username, kinds in DEMO_QUALIFIED.items():
                for kind in kinds:
                    Qualification.objects.update_or_create(
                        worker=User.objects.get(username=username),
                        annotation_type=kind,
                        defaults={"status": QualificationStatus.PASSED, "score": 1.0},
                    )
        # Imported here: the command must load even where a feature app is being migrated.
        from tasks.qualification_bank import seed_qualifications

        seeded = seed_qualifications()
        self.stdout.write(f"  qualification tests: {len(seeded.created)} question(s) created")
        if not users_only:
            requester = User.objects.get(username="requester")
            for spec in DEMO_JOBS:
                if not Job.objects.filter(requester=requester, title=spec["title"]).exists():
                    job = self._demo_job(requester, dict(spec))
                    self.stdout.write(f"  job #{job.pk} {job.title}: {job.get_status_display()}")

        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role, _ in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username}")

    def _demo_job(self, requester: User, spec: dict) -> Job:
        # Imported here: the command must load even where a feature app is being migrated.
        from payments import escrow
        from tasks import claiming, ingestion_pipeline, ingestion_uploads, quoting
        from tasks.synthetic import make_scene
        from tasks.video import write_video

        scene_args = spec.pop("scene")
        funded = spec.pop("funded", True)
        job = services.job_create(
            requester=requester,
            label_classes=CLASSES,
            budget=0,
            currency="usd",
            overlap_min=2,
            overlap_max=3,
            gold_rate=0.0,
            **spec,
        )
        scene = make_scene(width=320, height=240, classes=tuple(CLASSES), **scene_args)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"demo-{job.pk}.mp4"
            write_video(scene, str(path), fps=15.0)
            ingestion_uploads.video_register_path(job=job, path=path, by=requester)
        ingestion_pipeline.job_process(job=job, by=requester)  # in-process in the embedded mode
        job.refresh_from_db()
        if job.status != JobStatus.READY:
            return job  # with a broker configured, ingestion runs on the Celery worker
        quote = quoting.job_prices_save(job=job)
        Job.objects.filter(pk=job.pk).update(budget=quote.fund_amount)
        if not funded:
            return job
        escrow.escrow_fund(
            job=job, amount=quote.fund_amount, key=f"demo:job:{job.pk}", memo="Demo funding"
        )
        claiming.job_publish(job=job, by=requester)
        job.refresh_from_db()
        return job
