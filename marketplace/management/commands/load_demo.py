"""Create demo users for each role and a sample job, and print the logins (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace import services
from marketplace.models import Job, Role, User

DEMO_PASSWORD = "demo-pass-123"
DEMO_USERS = [
    ("admin", Role.ADMIN, {}),
    ("requester", Role.REQUESTER, {"organisation": "Demo Robotics"}),
    ("worker", Role.WORKER, {"country": "US"}),
    ("worker2", Role.WORKER, {"country": "DE"}),
]


class Command(BaseCommand):
    help = "Load the demo: one user per role and a sample job. Safe to run twice."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        for username, role, extra in DEMO_USERS:
            if not User.objects.filter(username=username).exists():
                services.user_create(
                    username=username,
                    password=DEMO_PASSWORD,
                    role=role,
                    email=f"{username}@demo.test",
                    **extra,
                )
        requester = User.objects.get(username="requester")
        if not Job.objects.filter(requester=requester).exists():
            services.job_create(
                requester=requester,
                title="Cars and pedestrians at a crossing",
                instructions="Draw a tight box around every car and person. "
                "Boxes include the whole visible object.",
                annotation_type="bbox",
                label_classes=["car", "person"],
                budget=25_000,
                currency="usd",
            )
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role, _ in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username}")
