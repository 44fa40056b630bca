"""Videos into a draft job: checking uploads, storing and registering files, deleting videos.

Bad uploads are refused before anything is stored: empty files, files over
``VIDEO_UPLOAD_MAX_BYTES``, files whose first bytes are no known video container (the file name
is never trusted), re-uploads of the same bytes to the same job (refused with 409, naming the
existing video), uploads to a job that is not a draft (409) or not the caller's (404). Files that
look like a video but are not usable (truncated, audio only, absurd size, too damaged) fail
later, during ingestion (``ingestion_pipeline``): the video becomes ``failed`` with a reason, and
nothing of it survives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction

from marketplace.errors import ApplicationError, Conflict, NotFound, ValidationError
from marketplace.models import Job, User

from . import video
from .ingestion_common import _delete_prefix, _delete_quietly, _job_for, _require_draft, _storage
from .models import Video, VideoStatus


class UploadTooLarge(ValidationError):
    """The file is larger than this server accepts."""

    status_code = 413
    code = "too_large"


class NotAVideo(ValidationError):
    """The file is not a video."""

    code = "not_a_video"


class DuplicateVideo(Conflict):
    """This file was already uploaded to this job."""

    code = "duplicate_video"


SNIFF_BYTES = 512


HASH_CHUNK = 1024 * 1024


# --- Checks --------------------------------------------------------------------------------------


def _read_head(handle: IO[bytes]) -> bytes:
    handle.seek(0)
    head = handle.read(SNIFF_BYTES)
    handle.seek(0)
    return head


def _sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


@dataclass
class _Checked:
    name: str
    handle: Any
    size: int
    checksum: str
    container: str


def _check_upload(*, job: Job, handle: Any, name: str, size: int) -> _Checked:
    """Size, content and duplicate checks on one incoming file; stores nothing."""
    limit = settings.VIDEO_UPLOAD_MAX_BYTES
    if size <= 0:
        raise ValidationError(f"“{name}” is empty (0 bytes). Choose the video file itself.")
    if size > limit:
        raise UploadTooLarge(
            f"“{name}” is {_megabytes(size)}; the limit is {_megabytes(limit)}. "
            "Split or compress the video first."
        )
    container = video.sniff_container(_read_head(handle))
    if container is None:
        raise NotAVideo(
            f"“{name}” is not a video: its content is no known video container "
            "(MP4/MOV, WebM/MKV, AVI, MPEG-TS, ...), whatever its name says."
        )
    checksum = _sha256(handle)
    existing = Video.objects.filter(job=job, checksum=checksum).first()
    if existing is not None:
        raise DuplicateVideo(
            f"“{name}” has the same content as video #{existing.pk} "
            f"(“{existing.original_name}”) already on this job; it was not added again.",
            extra={"video": existing.pk},
        )
    return _Checked(name[:255], handle, size, checksum, container)


# --- Upload and registration ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One file of an upload that was not added, and why (the error a lone file would get)."""

    name: str
    error: ApplicationError

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "code": self.error.code, "message": self.error.message}


@dataclass(frozen=True)
class UploadResult:
    videos: list[Video]
    refused: list[Refusal]


def _check_files(
    *, job: Job, files: list[Any], keep_going: bool
) -> tuple[list[_Checked], list[Refusal]]:
    """Check every file (stores nothing). ``keep_going``: a bad file is a ``Refusal`` and the
    others are still checked; otherwise the first bad file raises its error."""
    if not files:
        raise ValidationError("Choose at least one video file.", extra={"fields": {"file": []}})
    most = settings.VIDEO_UPLOAD_MAX_FILES
    if len(files) > most:
        message = f"Upload at most {most} videos at once; this upload has {len(files)}."
        raise ValidationError(message, extra={"fields": {"file": [message]}})
    checked: list[_Checked] = []
    refused: list[Refusal] = []
    seen: dict[str, str] = {}
    for f in files:
        name = Path(getattr(f, "name", "") or "video").name
        try:
            item = _check_upload(job=job, handle=f, name=name, size=int(f.size or 0))
            if item.checksum in seen:
                raise DuplicateVideo(f"“{name}” and “{seen[item.checksum]}” are the same file.")
        except ApplicationError as exc:
            if not keep_going:
                raise
            refused.append(Refusal(name[:255], exc))
            continue
        seen[item.checksum] = name
        checked.append(item)
    return checked, refused


def _record(*, job: Job, item: _Checked, name: str) -> Video:
    """The uploaded video's row for a checked file stored under ``name``."""
    v = Video(
        job=job,
        original_name=item.name,
        size_bytes=item.size,
        checksum=item.checksum,
        status=VideoStatus.UPLOADED,
    )
    v.file.name = name
    v.save()
    return v


def _store(*, job: Job, checked: list[_Checked]) -> list[Video]:
    """Stream checked files to storage and record them; a failure deletes what was stored."""
    storage = _storage()
    stored: list[str] = []
    try:
        videos = []
        for item in checked:
            ext = video.CONTAINER_EXTENSIONS.get(item.container, ".bin")
            target = f"videos/job-{job.pk}/{item.checksum[:16]}{ext}"
            item.handle.seek(0)
            saved = storage.save(target, File(item.handle, name=target))
            stored.append(saved)
            videos.append(_record(job=job, item=item, name=saved))
        return videos
    except BaseException:
        for name in stored:
            _delete_quietly(storage, name)
        raise


@transaction.atomic
def videos_upload(*, job: Job, by: User | None, files: Iterable[Any]) -> list[Video]:
    """Add uploaded files (Django ``UploadedFile``s or ``File``s) to a draft job, all or none.

    Every file is checked first (size, content sniffing, checksum against the job's videos and
    the other files of the request); only then are the files streamed to storage. If anything
    fails after a file was stored, the stored files are deleted again.
    """
    job = _job_for(job=job, by=by)
    _require_draft(job)
    checked, _ = _check_files(job=job, files=list(files), keep_going=False)
    return _store(job=job, checked=checked)


@transaction.atomic
def videos_upload_each(*, job: Job, by: User | None, files: Iterable[Any]) -> UploadResult:
    """Add each good file to a draft job and name each bad one (the upload page and API).

    The same checks as ``videos_upload``, file by file: a bad file (empty, too large, not a
    video, already on the job, twice in the upload) is a ``Refusal`` with the error it would get
    alone, and the good ones are stored. With nothing good to add it raises: a lone file's own
    error, or a ``ValidationError`` naming every file.
    """
    job = _job_for(job=job, by=by)
    _require_draft(job)
    checked, refused = _check_files(job=job, files=list(files), keep_going=True)
    if not checked:
        if len(refused) == 1:
            raise refused[0].error
        raise ValidationError(
            f"None of the {len(refused)} files was added: "
            + " ".join(r.error.message for r in refused),
            extra={
                "fields": {"file": [r.error.message for r in refused]},
                "refused": [r.as_dict() for r in refused],
            },
        )
    return UploadResult(_store(job=job, checked=checked), refused)


def video_upload(*, job: Job, by: User | None, file: Any) -> Video:
    """Add one uploaded file to a draft job (see ``videos_upload``)."""
    return videos_upload(job=job, by=by, files=[file])[0]


def video_register_path(*, job: Job, path: Path | str, by: User | None = None) -> Video:
    """Register a video file from local disk: checked like an upload, streamed into storage."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"{path} is not a file.")
    with path.open("rb") as handle:
        f = File(handle, name=path.name)
        return videos_upload(job=job, by=by, files=[f])[0]


@transaction.atomic
def video_register_stored(*, job: Job, name: str, by: User | None = None) -> Video:
    """Register a file already in media storage (e.g. copied to the bucket) without copying it."""
    job = _job_for(job=job, by=by)
    _require_draft(job)
    storage = _storage()
    if not storage.exists(name):
        raise NotFound(f"There is no file “{name}” in media storage.")
    if Video.objects.filter(file=name).exists():
        raise DuplicateVideo(f"“{name}” is already registered.")
    with storage.open(name, "rb") as handle:
        item = _check_upload(job=job, handle=handle, name=Path(name).name, size=storage.size(name))
    return _record(job=job, item=item, name=name)


@transaction.atomic
def video_delete(*, video_obj: Video, by: User | None) -> None:
    """Remove a video (and its file) from a draft job."""
    job = _job_for(job=video_obj.job, by=by)
    _require_draft(job)
    name = video_obj.file.name
    prefix = video_obj.frames_prefix
    video_obj.delete()
    storage = _storage()
    transaction.on_commit(lambda: (_delete_quietly(storage, name), _delete_prefix(storage, prefix)))
