"""Register many videos with a draft job in one go, from local disk or from media storage."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from marketplace.errors import ApplicationError
from marketplace.models import Job
from tasks import ingestion_pipeline, ingestion_uploads


def _local_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise CommandError(f"{p} is neither a file nor a folder.")
    return out


def _stored_files(prefixes: list[str]) -> list[str]:
    out: list[str] = []

    def walk(prefix: str) -> None:
        dirs, files = default_storage.listdir(prefix)
        out.extend(f"{prefix.rstrip('/')}/{f}".lstrip("/") for f in sorted(files))
        for d in sorted(dirs):
            walk(f"{prefix.rstrip('/')}/{d}")

    for raw in prefixes:
        try:
            dirs, files = default_storage.listdir(raw)
        except (FileNotFoundError, NotADirectoryError):
            dirs, files = [], []
        if dirs or files:
            walk(raw)
        elif default_storage.exists(raw):
            out.append(raw)
        else:
            raise CommandError(f"There is nothing at “{raw}” in media storage.")
    return out


class Command(BaseCommand):
    help = (
        "Register videos with a draft job, in bulk, with a progress bar. Local files and folders "
        "are checked like uploads and streamed into media storage; with --from-storage the paths "
        "are names or folders already in media storage (e.g. a bucket filled by another tool), "
        "registered without copying. Bad files are reported and skipped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="Files or folders")
        parser.add_argument("--job", type=int, required=True, help="Id of a draft job")
        parser.add_argument(
            "--from-storage", action="store_true", help="Paths are in media storage"
        )
        parser.add_argument(
            "--process", action="store_true", help="Start processing the job afterwards"
        )

    def handle(self, *args, **options) -> None:
        job = Job.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no job #{options['job']}.")
        if options["from_storage"]:
            items: list = _stored_files(options["paths"])
        else:
            items = _local_files(options["paths"])
        if not items:
            raise CommandError("No files found.")
        registered, failed = 0, []
        bar = tqdm(items, desc=f"job #{job.pk}", unit="video", file=self.stderr._out)
        for item in bar:
            bar.set_postfix_str(str(item)[-40:])
            try:
                if options["from_storage"]:
                    ingestion_uploads.video_register_stored(job=job, name=item)
                else:
                    ingestion_uploads.video_register_path(job=job, path=item)
            except ApplicationError as exc:
                failed.append((str(item), exc.message))
            else:
                registered += 1
        for name, reason in failed:
            self.stderr.write(f"skipped {name}: {reason}")
        self.stdout.write(
            f"Registered {registered} video(s) with job #{job.pk}; {len(failed)} skipped."
        )
        if options["process"] and registered:
            try:
                ingestion_pipeline.job_process(job=job, by=None)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"Job #{job.pk} is processing.")
