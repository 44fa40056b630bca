"""Reads of the claim path, always scoped to the worker or requester asking.

Everything a worker is shown passes through ``worker_view_of`` / ``worker_frames``: they copy an
explicit whitelist of fields, so gold flags, known answers, replica counts and other workers'
work cannot reach a worker by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import F, QuerySet

from marketplace.models import (
    Job,
    JobStatus,
    Qualification,
    QualificationStatus,
    User,
)
from marketplace.selectors import jobs_visible_to
from marketplace.sql import fetch_prepared, native, statement
from payments import selectors as trust_seam

from . import portable
from .models import (
    Assignment,
    AssignmentStatus,
    DisputeStatus,
    MicroTask,
    RejectionDispute,
    Slot,
    Submission,
    Video,
)

MAX_CANDIDATE_JOBS = 50


def prior_trust() -> float:
    """A worker's trust for a type with no evidence yet; the ``claim_next`` statement applies it
    when quality has no ``WorkerTrust`` row. Quality's value, through the trust seam
    (``payments.selectors``): tasks sits below quality and never imports it."""
    return trust_seam.prior_trust()


def passed_types(worker: User) -> list[str]:
    return list(
        Qualification.objects.filter(worker=worker, status=QualificationStatus.PASSED).values_list(
            "annotation_type", flat=True
        )
    )


def _published_jobs() -> QuerySet[Job]:
    return Job.objects.filter(status=JobStatus.PUBLISHED).order_by(
        "-priority", F("deadline").asc(nulls_last=True), "published_at", "id"
    )


@dataclass(frozen=True)
class CandidateJob:
    """What the claim path needs of a job (read with one precompiled statement)."""

    pk: int
    gold_rate: float
    min_trust: float
    annotation_type: str
    claim_time_limit: timedelta


def claimable_jobs_for(*, worker: User, job_id: int | None = None) -> list[CandidateJob]:
    """Published jobs ``worker`` qualifies for (type passed, trust ≥ min_trust), in claim order.

    Plain SQL (``claiming.sql``: ``candidate_jobs``): this runs on every claim, and compiling the
    equivalent ORM query cost more than running it.
    """
    params = {"worker_id": worker.pk, "job_id": job_id, "limit": MAX_CANDIDATE_JOBS}
    if native():
        rows = fetch_prepared(statement("tasks/claiming.sql", "candidate_jobs"), params, many=True)
    else:
        rows = portable.candidate_jobs(**params)
    jobs = [CandidateJob(*row) for row in rows]
    trust: dict[str, float] = {}
    result = []
    for job in jobs:
        if job.min_trust > 0:
            if job.annotation_type not in trust:
                trust[job.annotation_type] = trust_seam.worker_trust(
                    worker=worker, annotation_type=job.annotation_type
                )
            if trust[job.annotation_type] < job.min_trust:
                continue
        result.append(job)
    return result


def why_no_work(*, worker: User) -> str:
    """A message a worker can act on when there is nothing to claim."""
    types = set(_published_jobs().values_list("annotation_type", flat=True).distinct())
    if not types:
        return "There is no published work right now. Check back soon."
    passed = set(passed_types(worker))
    if not types & passed:
        needed = ", ".join(sorted(types))
        return f"Pass a qualification test first (work is open for: {needed})."
    return "There is no work available for you right now. Check back soon."


def frame_size(microtask: MicroTask) -> tuple[int, int]:
    """Pixel size of the frames the worker annotates (the manifest's, else the video's)."""
    manifest = microtask.manifest or {}
    width = manifest.get("width") or getattr(microtask.video, "width", None)
    height = manifest.get("height") or getattr(microtask.video, "height", None)
    return int(width or 0), int(height or 0)


def _first(d: dict[str, Any], *names: str) -> Any:
    for name in names:
        if d.get(name) is not None:
            return d[name]
    return None


# Where a worker fetches frame ``index`` (its position in ``frame_entries``) of their assignment:
# ``tasks.frame_views.assignment_frame`` (route ``work-frame``) streams it after checking who asks.
# Plain string formatting: the claim response builds one per frame on the hot path.
FRAME_URL = "/work/assignments/{assignment}/frames/{index}.jpg"

STORAGE, EXTERNAL = "storage", "external"


def frame_entries(manifest: dict[str, Any]) -> list[tuple[int, Any, float | None]]:
    """``(frame number, image reference, timestamp)`` of every frame of a manifest, by frame.

    Reads the manifest written at ingestion (``{"frames": [{"frame", "image", "time"}]}``),
    tolerating the usual spellings (``url``/``image``/``path``/``file``, ``timestamp``/``time``).
    A frame's position in this list is its index in the worker's frame URLs.
    """
    out = []
    for entry in manifest.get("frames") or []:
        if not isinstance(entry, dict):
            continue
        number = _first(entry, "frame", "number", "index")
        if not isinstance(number, int):
            continue
        ts = _first(entry, "timestamp", "time", "pts_time", "t")
        out.append(
            (
                number,
                _first(entry, "url", "image", "path", "file"),
                float(ts) if isinstance(ts, int | float) else None,
            )
        )
    out.sort(key=lambda e: e[0])
    return out


def frame_source(value: Any) -> tuple[str | None, str]:
    """Where a manifest's image reference points: ``(STORAGE, name in default_storage)``,
    ``(EXTERNAL, url)`` or ``(None, "")`` when there is no image.

    A storage name is taken as is; a URL under ``MEDIA_URL`` maps back to its storage name. Any
    other URL (``http(s)://`` elsewhere, or site-relative outside the media) is not ours to serve
    and is handed to the worker unchanged: whoever put it in a manifest chose to publish it.
    """
    if not isinstance(value, str) or not value:
        return None, ""
    media = settings.MEDIA_URL
    if media and value.startswith(media):
        return STORAGE, unquote(value[len(media) :])
    if value.startswith(("http://", "https://", "/")):
        return EXTERNAL, value
    return STORAGE, value


def worker_frames(
    *,
    manifest: dict[str, Any],
    frames: list[int],
    start: int,
    end: int,
    assignment_id: int | None = None,
) -> list[dict]:
    """The frames a worker sees: number, image URL and timestamp only (never other keys).

    With ``assignment_id``, an image in our storage gets the opaque, access-checked
    ``FRAME_URL`` of that assignment (no storage path, video id or bucket in it); without it
    (qualification questions: public test material), the storage's own URL.
    """
    out = []
    for index, (number, ref, ts) in enumerate(frame_entries(manifest)):
        kind, where = frame_source(ref)
        if kind == STORAGE:
            if assignment_id is not None:
                url = FRAME_URL.format(assignment=assignment_id, index=index)
            else:
                url = default_storage.url(where)
        else:
            url = where
        out.append({"frame": number, "url": url, "timestamp": ts})
    if not out:
        numbers = frames or list(range(start, end + 1))
        out = [{"frame": n, "url": "", "timestamp": None} for n in sorted(numbers)]
    return out


def frame_storage_name(manifest: dict[str, Any], index: int) -> str | None:
    """The storage name of the frame at ``index`` of ``worker_frames`` (None: no such frame, or
    its image is not in our storage)."""
    entries = frame_entries(manifest)
    if not 0 <= index < len(entries):
        return None
    kind, where = frame_source(entries[index][1])
    return where if kind == STORAGE else None


_LOADED = ((Assignment, "a"), (MicroTask, "m"), (Video, "v"), (Job, "j"), (Submission, "s"))


@cache
def _assignment_select() -> tuple[str, list[tuple[type, list, list, int]]]:
    """One SELECT of an assignment with its microtask, video, job and submission.

    Built once from the models' own fields, so it follows schema changes; the ORM's
    ``select_related`` equivalent spends more time compiling than PostgreSQL spends running it.
    """
    columns, layout = [], []
    for model, alias in _LOADED:
        fields = list(model._meta.concrete_fields)
        converters = [
            (i, f.cached_col, conv)
            for i, f in enumerate(fields)
            for conv in connection.ops.get_db_converters(f.cached_col)
            + f.cached_col.get_db_converters(connection)
        ]
        attnames = [f.attname for f in fields]
        layout.append((model, attnames, converters, len(columns)))
        columns += [f"{alias}.{connection.ops.quote_name(f.column)}" for f in fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM tasks_assignment a "
        "JOIN tasks_microtask m ON m.id = a.microtask_id "
        "JOIN tasks_video v ON v.id = m.video_id "
        "JOIN marketplace_job j ON j.id = m.job_id "
        "LEFT JOIN tasks_submission s ON s.assignment_id = a.id "
        "WHERE a.id = %s"
    )
    return sql, layout


def _instance(model, attnames, converters, values):
    values = list(values)
    for i, col, conv in converters:
        values[i] = conv(values[i], col, connection)
    return model.from_db(connection.alias, attnames, values)


def load_assignment(*, assignment_id: int, for_update: bool = False) -> Assignment:
    """The assignment with ``microtask``, ``microtask.video``, ``microtask.job`` and
    ``submission`` loaded in one query (optionally locking the assignment row)."""
    if not native():
        return portable.load_assignment(assignment_id=assignment_id, for_update=for_update)
    sql, layout = _assignment_select()
    if for_update:
        sql += " FOR UPDATE OF a"
    row = fetch_prepared(sql, [assignment_id])
    if row is None:
        raise Assignment.DoesNotExist(f"No assignment {assignment_id}.")
    objs = {}
    for model, attnames, converters, offset in layout:
        values = row[offset : offset + len(attnames)]
        objs[model] = None if values[0] is None else _instance(model, attnames, converters, values)
    a, mt = objs[Assignment], objs[MicroTask]
    mt.video, mt.job = objs[Video], objs[Job]
    a.microtask = mt
    a._state.fields_cache["submission"] = objs[Submission]
    return a


@cache
def _claim_and_load(sql_name: str) -> tuple[str, list]:
    """A claim statement of ``claiming.sql`` whose result row is the new assignment with its
    microtask, video and job (saving the round trip of loading them after the claim), then the
    "picked a slot" flag. Every column is NULL when nothing was claimed."""
    base = statement("tasks/claiming.sql", sql_name)
    returning = "ON CONFLICT DO NOTHING\n    RETURNING id, slot_id"
    final = "SELECT (SELECT id FROM filled), "
    assert base.count(returning) == 1 and base.count(final) == 1, sql_name
    head, _, picked = base.partition(final)
    head = head.replace(returning, "ON CONFLICT DO NOTHING\n    RETURNING *")
    _sql, layout = _assignment_select()
    layout = [entry for entry in layout if entry[0] is not Submission]
    q = connection.ops.quote_name
    columns, offset, shifted = [], 0, []
    for (model, attnames, converters, _), alias in zip(layout, "amvj", strict=True):
        fields = model._meta.concrete_fields
        columns += [f"{alias}.{q(f.column)}" for f in fields]
        shifted.append((model, attnames, converters, offset))
        offset += len(fields)
    sql = (
        f"{head}SELECT {', '.join(columns)}, {picked} "
        "FROM (SELECT 1) AS one "
        "LEFT JOIN created a ON a.id = (SELECT id FROM filled) "
        "LEFT JOIN tasks_microtask m ON m.id = a.microtask_id "
        "LEFT JOIN tasks_video v ON v.id = m.video_id "
        "LEFT JOIN marketplace_job j ON j.id = m.job_id"
    )
    return sql, shifted


def claim_and_load(sql_name: str, params: dict) -> tuple[Assignment | None, bool]:
    """Run a claim statement; return ``(the new assignment fully loaded or None, picked)``.
    On SQLite, ``tasks.portable``'s twin of the statement, with the same parameters."""
    if not native():
        return getattr(portable, sql_name)(**params)
    sql, layout = _claim_and_load(sql_name)
    row = fetch_prepared(sql, params)
    picked = bool(row[-1])
    if row[0] is None:
        return None, picked
    objs = {
        model: _instance(model, attnames, converters, row[offset : offset + len(attnames)])
        for model, attnames, converters, offset in layout
    }
    a, mt = objs[Assignment], objs[MicroTask]
    mt.video, mt.job = objs[Video], objs[Job]
    a.microtask = mt
    a._state.fields_cache["submission"] = None
    return a, picked


def assignment_for_worker(*, worker: User, assignment_id: int) -> Assignment:
    """``worker``'s own assignment, fully loaded; DoesNotExist for anyone else's."""
    a = load_assignment(assignment_id=assignment_id)
    if a.worker_id != worker.pk:
        raise Assignment.DoesNotExist(f"No assignment {assignment_id} of this worker.")
    return a


def worker_view_of(assignment: Assignment) -> dict[str, Any]:
    """Everything a worker may see about their own assignment (a whitelist)."""
    mt = assignment.microtask
    job = mt.job
    width, height = frame_size(mt)
    limit = job.claim_time_limit.total_seconds()
    view: dict[str, Any] = {
        "id": assignment.pk,
        "status": assignment.status,
        "job": {
            "id": job.pk,
            "title": job.title,
            "instructions": job.instructions,
            "annotation_type": job.annotation_type,
            "classes": list(job.label_classes),
            "event_labels": list(job.event_labels or []),
            "attributes": dict(job.label_attributes or {}),
            "predicates": list(job.relation_predicates or []),
            "track_masks": bool(job.track_masks),
        },
        "task": {
            "frame_start": mt.frame_start,
            "frame_end": mt.frame_end,
            "frames": worker_frames(
                manifest=mt.manifest or {},
                frames=list(mt.frames or []),
                start=mt.frame_start,
                end=mt.frame_end,
                assignment_id=assignment.pk,
            ),
            "annotate_frames": list(mt.frames or []),
            "keyframe_step": mt.keyframe_step,
            "width": width,
            "height": height,
            "fps": getattr(mt.video, "fps", None),
        },
        "time_limit_seconds": int(limit),
        "claimed_at": assignment.claimed_at,
        "deadline": assignment.deadline,
        "pay": {"amount": int(mt.price), "currency": job.currency},
        "submitted_at": assignment.submitted_at,
        "active_seconds": assignment.active_seconds,
        "pay_amount": assignment.pay_amount,
        "rejection_reason": assignment.rejection_reason,
    }
    submission = getattr(assignment, "submission", None) if assignment.submitted_at else None
    view["submission"] = {"payload": submission.payload} if submission is not None else None
    # The worker's own work in progress, only while it can still become a submission.
    live = assignment.status == AssignmentStatus.CLAIMED
    view["draft"] = assignment.draft if live else None
    return view


def my_work(*, worker: User) -> QuerySet[Assignment]:
    """The worker's own assignments, newest first."""
    return (
        Assignment.objects.filter(worker=worker)
        .select_related("microtask__job")
        .order_by("-claimed_at", "-id")
    )


def my_work_row(assignment: Assignment) -> dict[str, Any]:
    job = assignment.microtask.job
    return {
        "id": assignment.pk,
        "job_title": job.title,
        "annotation_type": job.annotation_type,
        "status": assignment.status,
        "claimed_at": assignment.claimed_at,
        "deadline": assignment.deadline,
        "submitted_at": assignment.submitted_at,
        "reviewed_at": assignment.reviewed_at,
        "pay": {"amount": int(assignment.microtask.price), "currency": job.currency},
        "pay_amount": assignment.pay_amount,
        "rejection_reason": assignment.rejection_reason,
    }


@dataclass
class BoardEntry:
    job: Job
    open_tasks: int  # capped at BOARD_COUNT_CAP; the page shows "1000+"
    pay: int
    estimated_seconds: int
    qualified: bool


BOARD_COUNT_CAP = 1_000
SECONDS_PER_OBJECT_FRAME = {"bbox": 6, "polygon": 15, "classify": 2, "track": 1.5, "event": 2}


def job_board(*, worker: User) -> list[BoardEntry]:
    """Published jobs with open work, pay and an estimated time, marking those not yet qualified."""
    passed = set(passed_types(worker))
    entries = []
    for job in _published_jobs()[:200]:
        free = Slot.objects.filter(job=job, assignment__isnull=True, is_gold=False)
        open_tasks = free[: BOARD_COUNT_CAP + 1].count()
        if open_tasks == 0:
            continue
        sample = list(
            MicroTask.objects.filter(job=job, is_gold=False).values("price", "frames")[:50]
        )
        pay = int(sum(s["price"] for s in sample) / len(sample)) if sample else 0
        frames = sum(len(s["frames"] or []) or 10 for s in sample) / max(len(sample), 1)
        per = SECONDS_PER_OBJECT_FRAME.get(job.annotation_type, 5)
        estimated = int(30 + frames * job.expected_objects * per)
        entries.append(BoardEntry(job, open_tasks, pay, estimated, job.annotation_type in passed))
    return entries


def submissions_for_review(*, job: Job, status: str | None = None) -> QuerySet[Assignment]:
    """A job's submitted and reviewed assignments (the caller already scoped ``job``)."""
    qs = (
        Assignment.objects.filter(microtask__job=job)
        .exclude(status__in=[AssignmentStatus.CLAIMED, AssignmentStatus.EXPIRED])
        .exclude(status=AssignmentStatus.RELEASED)
        .select_related("worker", "microtask", "submission")
        .order_by("submitted_at", "id")
    )
    if status:
        qs = qs.filter(status=status)
    return qs


def disputes_visible_to(*, user: User, pending_only: bool = False) -> QuerySet[RejectionDispute]:
    """Disputes over rejected exported work: an admin sees every one, a requester their jobs'."""
    qs = RejectionDispute.objects.select_related("assignment__worker", "job").order_by(
        "created_at", "pk"
    )
    if not user.is_platform_admin:
        qs = qs.filter(job__in=jobs_visible_to(user))
    if pending_only:
        qs = qs.filter(status=DisputeStatus.PENDING)
    return qs
