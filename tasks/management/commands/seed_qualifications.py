"""Create the seeded qualification test of every annotation type. Safe to run twice."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from marketplace.models import AnnotationType
from tasks.qualification_bank import seed_qualifications


class Command(BaseCommand):
    help = (
        "Create a short qualification test per annotation type from synthetic scenes with known "
        "answers (images in media storage under qualification/). Idempotent; a type whose test an "
        "admin wrote is left alone."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "types",
            nargs="*",
            metavar="TYPE",
            help=f"Annotation types to seed: {', '.join(AnnotationType.values)} (default: all)",
        )

    def handle(self, *args, types: list[str] | None = None, **options) -> None:
        unknown = sorted(set(types or ()) - set(AnnotationType.values))
        if unknown:
            raise CommandError(f"Unknown annotation type(s): {', '.join(unknown)}.")
        result = seed_qualifications(types=types or None)
        for item in result.created:
            self.stdout.write(f"  created {item}")
        for kind, why in result.skipped.items():
            self.stdout.write(f"  {kind}: {why}")
        self.stdout.write(f"{len(result.created)} qualification question(s) created.")
