"""Proposals (pre-annotations): configure a job's sources, compute and store them, show them to the
worker, and measure what a submission took from them.

The pure rules (shapes, references, provenance) are in ``tasks.proposal_sources``; detectors in
``tasks.vision``; the model backend's HTTP in ``tasks.ml_backend``; pixels through
``tasks.video``. This module reads frames from storage and writes ``ProposalConfig`` and
``Proposal`` rows.

Failure is an outcome, never an error: a source that fails, times out or answers garbage leaves
a ``Proposal`` row with that status and no shapes, and the microtask is plain annotation.
Computing is idempotent: a (microtask, source) pair that has a row is not computed again (a
configuration change clears the rows it makes stale), so a retried or redelivered Celery run
does only what is missing.

Gold microtasks get proposals like any other (a missing proposal would tell a worker which
microtask is gold), from the same inputs: a source is given the microtask's pixels and the job's
schema (``ProposalRequest``), never a gold answer or another worker's work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from marketplace.errors import NotFound, ValidationError
from marketplace.models import Job, User
from marketplace.selectors import jobs_visible_to

from . import ml_backend, proposal_sources, signals, tracking, video, vision, work_selectors
from .annotations import TOP_KEY, ValidatedAnnotation
from .models import (
    Assignment,
    AssignmentStatus,
    AssistMode,
    MicroTask,
    Proposal,
    ProposalConfig,
    ProposalStatus,
)
from .proposal_sources import (
    ML_BACKEND,
    MOTION,
    PEOPLE,
    PROPOSABLE_TYPES,
    SEAM,
    SEAM_TYPES,
    SOURCES,
    Detection,
    ProposalOutcome,
    ProposalRequest,
    StoredProposal,
)

log = logging.getLogger(__name__)

PEOPLE_CLASS_NAMES = ("person", "people", "pedestrian", "human")


# --- frames --------------------------------------------------------------------------------------


class _Frames:
    """Pixels and JPEG bytes of a microtask's stored frames, read once each."""

    def __init__(self, microtask: MicroTask):
        self._names: dict[int, str] = {}
        for index, (number, _ref, _ts) in enumerate(
            work_selectors.frame_entries(microtask.manifest or {})
        ):
            name = work_selectors.frame_storage_name(microtask.manifest or {}, index)
            if name:
                self._names[number] = name
        self._jpeg: dict[int, bytes] = {}
        self._pixels: dict[int, np.ndarray] = {}

    def available(self) -> list[int]:
        return sorted(self._names)

    def jpeg(self, frame: int) -> bytes:
        if frame not in self._jpeg:
            name = self._names.get(frame)
            if name is None:
                raise video.VideoError(f"frame {frame} is not in our storage")
            with default_storage.open(name, "rb") as f:
                self._jpeg[frame] = f.read()
        return self._jpeg[frame]

    def __call__(self, frame: int) -> np.ndarray:
        if frame not in self._pixels:
            self._pixels[frame] = video.decode_image(self.jpeg(frame))
        return self._pixels[frame]


def request_for(microtask: MicroTask, available: list[int] | None = None) -> ProposalRequest:
    """What a source is told about ``microtask`` (the frames it looks at, evenly at most
    ``PROPOSAL_MAX_FRAMES``; a track's keyframes at the job's step)."""
    job = microtask.job
    width, height = work_selectors.frame_size(microtask)
    if job.annotation_type == "track":
        step = max(1, microtask.keyframe_step)
        wanted = list(range(microtask.frame_start, microtask.frame_end + 1, step))
        if wanted[-1] != microtask.frame_end:
            wanted.append(microtask.frame_end)
    else:
        wanted = sorted(int(f) for f in (microtask.frames or []))
    if available is not None:
        have = set(available)
        wanted = [f for f in wanted if f in have]
    cap = max(1, int(settings.PROPOSAL_MAX_FRAMES))
    if len(wanted) > cap:
        picks = np.linspace(0, len(wanted) - 1, cap).round().astype(int)
        wanted = [wanted[i] for i in sorted(set(picks.tolist()))]
    return ProposalRequest(
        microtask_id=microtask.pk,
        annotation_type=job.annotation_type,
        classes=tuple(job.label_classes),
        width=width,
        height=height,
        frame_start=microtask.frame_start,
        frame_end=microtask.frame_end,
        frames=tuple(wanted),
        keyframe_step=microtask.keyframe_step,
    )


# --- sources -------------------------------------------------------------------------------------


def _motion(request: ProposalRequest, frames: _Frames) -> ProposalOutcome:
    images = [frames(f) for f in request.frames]
    label = request.classes[0]
    detections = [
        Detection(frame, box, score, label)
        for frame, found in zip(request.frames, vision.motion_regions(images), strict=True)
        for box, score in found
    ]
    return proposal_sources.detections_to_outcome(detections, request, model_version="motion-1")


def _people_label(classes: tuple[str, ...] | Any) -> str | None:
    for c in classes:
        if c.strip().lower() in PEOPLE_CLASS_NAMES:
            return c
    return None


def _people(request: ProposalRequest, frames: _Frames) -> ProposalOutcome:
    label = _people_label(request.classes)
    if label is None:
        return ProposalOutcome(
            status="invalid",
            error="the job has no person class (person, people, pedestrian or human)",
        )
    detections = [
        Detection(frame, box, score, label)
        for frame in request.frames
        for box, score in vision.people(frames(frame))
    ]
    return proposal_sources.detections_to_outcome(
        detections, request, model_version="opencv-hog-people"
    )


SEAM_WAITING = "the previous microtask has no consensus yet"
SEAM_SECONDS = 30.0  # the tracker's budget per microtask (it runs far faster: tasks.tracking)


# A seam (docs/architecture.md): consensus is quality's, above this app; quality installs its
# reader at startup (``QualityConfig.ready``). Until then no microtask has a consensus.
def _no_consensus(*, microtask_id: int) -> dict | None:
    return None


_consensus_reader: Callable[..., dict | None] = _no_consensus


def consensus_reader_install(*, reader: Callable[..., dict | None]) -> None:
    """Install the reader of a settled microtask's consensus shapes (``reader(microtask_id=)``,
    ``{"<frame>": [{"label", "box", ...}]}`` or None); quality does this once, at startup."""
    global _consensus_reader
    _consensus_reader = reader


def consensus_frames(microtask: MicroTask) -> dict | None:
    """The current consensus of a settled ``microtask``, or None."""
    return _consensus_reader(microtask_id=microtask.pk)


def _seam(request: ProposalRequest, frames: _Frames, microtask: MicroTask) -> ProposalOutcome:
    """The previous microtask of the same video: its consensus boxes at the frame nearest
    before this microtask's start (the seam), carried through this microtask's frames by the
    tracker (``tasks.tracking.propagate_across_seam``) until each is lost."""
    if request.annotation_type not in SEAM_TYPES:
        return ProposalOutcome(status="invalid", error="the seam source carries boxes and tracks")
    prev = (
        MicroTask.objects.filter(video_id=microtask.video_id, index=microtask.index - 1)
        .select_related("job")
        .first()
    )
    if prev is None:
        return ProposalOutcome(status="invalid", error="the first microtask of its video")
    consensus = consensus_frames(prev)
    if consensus is None:
        return ProposalOutcome(status="failed", error=SEAM_WAITING)
    numbers = sorted(int(f) for f in consensus)
    before = [f for f in numbers if f <= microtask.frame_start]
    if not numbers:
        return ProposalOutcome(status="ok", model_version="seam-1")
    seed_frame = before[-1] if before else numbers[-1]
    shapes = [s for s in consensus.get(str(seed_frame), []) if s.get("box")]
    seeds = {i: (seed_frame, tuple(float(v) for v in s["box"])) for i, s in enumerate(shapes)}
    labels = {i: s.get("label", "") for i, s in enumerate(shapes)}
    own = frames.available()
    seed_pixels = frames if seed_frame in own else _Frames(prev)
    later = own if request.annotation_type == "track" else list(request.frames)

    def pixels():  # grey, as the tracker looks at frames
        yield seed_frame, vision.gray(seed_pixels(seed_frame))
        for f in later:
            if f > seed_frame:
                yield f, vision.gray(frames(f))

    paths = tracking.propagate_across_seam(
        pixels(), seeds, deadline=time.monotonic() + SEAM_SECONDS
    )
    looked = set(request.frames)
    detections = []
    for tid, path in paths.items():
        if seed_frame in looked:
            detections.append(Detection(seed_frame, seeds[tid][1], 1.0, labels[tid]))
        detections += [
            Detection(s.frame, s.box, s.confidence, labels[tid])
            for s in path.steps
            if not s.lost and s.frame in looked
        ]
    return proposal_sources.detections_to_outcome(detections, request, model_version="seam-1")


def seam_ready(*, microtask: MicroTask) -> bool:
    """``microtask`` has its consensus now: the next microtask's seam proposal, if it waited for
    it, is computed again (after this transaction commits). True when one was waiting."""
    waiting = Proposal.objects.filter(
        microtask__video_id=microtask.video_id,
        microtask__index=microtask.index + 1,
        source=SEAM,
        status=ProposalStatus.FAILED,
        error=SEAM_WAITING,
    )
    if not waiting.exists() or not job_wants_proposals(microtask.job_id):
        return False
    waiting.delete()
    job_id = microtask.job_id
    transaction.on_commit(lambda: _queue(job_id))
    return True


def _backend(request: ProposalRequest, frames: _Frames, config: ProposalConfig) -> ProposalOutcome:
    images = [
        ml_backend.FrameImage(f, frames.jpeg(f), request.width, request.height)
        for f in request.frames
    ]
    try:
        prediction = ml_backend.predict(
            config.backend_url,
            token=config.backend_token,
            project=f"job-{config.job_id}",
            classes=list(request.classes),
            frames=images,
        )
    except ml_backend.BackendError as exc:
        return ProposalOutcome(status=exc.status, error=str(exc)[:500])
    fallback = prediction.score if prediction.score is not None else 0.5
    detections = [
        Detection(b.frame, b.box, b.score if b.score is not None else fallback, b.label)
        for b in prediction.boxes
        if b.label in request.classes  # a model knowing more classes than the job: the rest
    ]
    return proposal_sources.detections_to_outcome(
        detections, request, model_version=prediction.model_version
    )


def run_source(
    source: str,
    request: ProposalRequest,
    frames: _Frames,
    config: ProposalConfig | None,
    microtask: MicroTask | None = None,
) -> ProposalOutcome:
    """One source on one microtask; any failure becomes the outcome's status."""
    if request.annotation_type not in PROPOSABLE_TYPES:
        return ProposalOutcome(
            status="invalid", error=f"no proposals for {request.annotation_type} work"
        )
    if not request.frames:
        return ProposalOutcome(status="failed", error="the microtask's frames are not stored")
    try:
        if source == MOTION:
            return _motion(request, frames)
        if source == PEOPLE:
            return _people(request, frames)
        if source == SEAM and microtask is not None:
            return _seam(request, frames, microtask)
        if source == ML_BACKEND and config is not None and config.backend_url:
            return _backend(request, frames, config)
        return ProposalOutcome(status="failed", error="the source is not configured")
    except (video.VideoError, OSError) as exc:
        return ProposalOutcome(status="failed", error=f"frames could not be read: {exc}"[:500])
    except Exception as exc:  # a detector's own error (cv2.error...) must not stop the job's run
        log.exception("proposal source %s crashed on microtask %s", source, request.microtask_id)
        return ProposalOutcome(status="failed", error=f"the source failed: {exc}"[:500])


# --- computing and storing -----------------------------------------------------------------------


# After this many backend calls in a row that failed or timed out, a run stops calling it: the
# rest of its batch is recorded failed at once, not each after a full timeout.
BACKEND_FAILURES_BEFORE_SKIPPING = 3


@dataclass
class _Breaker:
    failures: int = 0

    def open(self) -> bool:
        return self.failures >= BACKEND_FAILURES_BEFORE_SKIPPING

    def record(self, outcome: ProposalOutcome) -> None:
        down = outcome.status in (ProposalStatus.FAILED, ProposalStatus.TIMEOUT)
        self.failures = self.failures + 1 if down else 0


def microtask_proposals_compute(
    *, microtask: MicroTask, config: ProposalConfig, breaker: _Breaker | None = None
) -> list[Proposal]:
    """Compute the enabled sources missing for ``microtask`` and store each outcome."""
    done = set(Proposal.objects.filter(microtask=microtask).values_list("source", flat=True))
    missing = [s for s in config.sources if s in SOURCES and s not in done]
    if not missing:
        return []
    frames = _Frames(microtask)
    request = request_for(microtask, frames.available())
    breaker = breaker or _Breaker()
    stored = []
    for source in missing:
        if source == ML_BACKEND and breaker.open():
            outcome = ProposalOutcome(
                status=ProposalStatus.FAILED,
                error=f"not called: the backend failed {breaker.failures} times in a row just "
                "before; save the proposal settings again to retry",
            )
        else:
            outcome = run_source(source, request, frames, config, microtask)
            if source == ML_BACKEND:
                breaker.record(outcome)
        try:
            with transaction.atomic():
                stored.append(
                    Proposal.objects.create(
                        microtask=microtask,
                        source=source,
                        model_version=outcome.model_version[:100],
                        status=outcome.status,
                        shapes=outcome.shapes if outcome.status == ProposalStatus.OK else [],
                        confidences=outcome.confidences
                        if outcome.status == ProposalStatus.OK
                        else [],
                        confidence=outcome.confidence if outcome.status == ProposalStatus.OK else 0,
                        error=outcome.error[:500],
                    )
                )
        except IntegrityError:  # a concurrent run stored it first: theirs stands
            continue
        if outcome.status != ProposalStatus.OK:
            log.info("proposal %s for microtask %s: %s", source, microtask.pk, outcome.error)
    return stored


@dataclass(frozen=True)
class BatchResult:
    computed: int
    remaining: bool


def job_proposals_compute_batch(*, job_id: int, batch_size: int | None = None) -> BatchResult:
    """Compute proposals for up to ``batch_size`` microtasks of the job that miss one; say whether
    more are left (the Celery task then queues the next batch)."""
    config = ProposalConfig.objects.filter(job_id=job_id).select_related("job").first()
    if config is None or not config.sources:
        return BatchResult(0, False)
    size = batch_size or int(settings.PROPOSAL_BATCH_SIZE)
    wanted = [s for s in config.sources if s in SOURCES]
    todo = list(
        MicroTask.objects.filter(job_id=job_id)
        .select_related("job", "video")
        .order_by("id")
        .exclude(id__in=_complete_microtasks(job_id, wanted))[: size + 1]
    )
    breaker = _Breaker()
    stored = 0
    for microtask in todo[:size]:
        stored += len(
            microtask_proposals_compute(microtask=microtask, config=config, breaker=breaker)
        )
    if stored:
        # Upward news (quality routes the microtasks); each row is committed already.
        signals.proposals_stored.send(sender=Proposal, job_id=job_id)
    return BatchResult(len(todo[:size]), len(todo) > size)


def _complete_microtasks(job_id: int, sources: list[str]):
    return (
        Proposal.objects.filter(microtask__job_id=job_id, source__in=sources)
        .values("microtask_id")
        .annotate(n=Count("id", filter=Q(source__in=sources)))
        .filter(n=len(sources))
        .values("microtask_id")
    )


# --- configuration -------------------------------------------------------------------------------


def _own_job(job_id: int, by: User) -> Job:
    """The job, if ``by`` may manage it (its requester, or a platform admin); else 404."""
    job = jobs_visible_to(by).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def proposal_config_get(*, job_id: int, by: User) -> ProposalConfig:
    job = _own_job(job_id, by)
    config = ProposalConfig.objects.filter(job=job).first()
    return config or ProposalConfig(job=job, sources=[])


@transaction.atomic
def proposal_config_set(
    *,
    job_id: int,
    by: User,
    sources: list[str],
    backend_url: str | None = None,
    backend_token: str | None = None,
) -> ProposalConfig:
    """Set the job's proposal sources (and its model backend); queue computing what is missing.

    ``backend_token`` None keeps the stored one, "" clears it. Changing the backend's URL or
    token drops its stored proposals (they came from another model); saving again drops the
    enabled sources' failed and timed-out ones (a retry). Removing a source keeps its rows (past
    provenance points at them) but no longer computes or shows them.
    """
    job = _own_job(job_id, by)
    errors: dict[str, list[str]] = {}
    if job.annotation_type not in PROPOSABLE_TYPES and sources:
        errors["sources"] = [f"{job.get_annotation_type_display()} work takes no proposals."]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        errors["sources"] = [f"Unknown source {unknown[0]!r}; use: {', '.join(SOURCES)}."]
    if len(set(sources)) != len(sources):
        errors.setdefault("sources", []).append("A source is listed twice.")
    config = ProposalConfig.objects.select_for_update().filter(job=job).first() or ProposalConfig(
        job=job
    )
    url = config.backend_url if backend_url is None else backend_url.strip()
    if backend_url is not None and backend_url.strip():
        problem = ml_backend.url_problem(url)
        if problem:
            errors["backend_url"] = [problem]
    if backend_token is not None and len(backend_token) > ml_backend.TOKEN_MAX_LENGTH:
        errors["backend_token"] = [f"At most {ml_backend.TOKEN_MAX_LENGTH} characters."]
    if ML_BACKEND in sources and not url:
        errors.setdefault("backend_url", []).append("The ml_backend source needs a backend URL.")
    if errors:
        raise ValidationError("The proposal settings are not valid.", extra={"fields": errors})
    token = config.backend_token if backend_token is None else backend_token
    backend_changed = (url, token) != (config.backend_url, config.backend_token)
    config.sources, config.backend_url, config.backend_token = list(sources), url, token
    config.save()
    rows = Proposal.objects.filter(microtask__job=job)
    if backend_changed:
        rows.filter(source=ML_BACKEND).delete()
    rows.filter(
        source__in=config.sources, status__in=(ProposalStatus.FAILED, ProposalStatus.TIMEOUT)
    ).delete()
    if config.sources:
        transaction.on_commit(lambda: _queue(job.pk))
    return config


def _queue(job_id: int) -> None:
    from .tasks import compute_proposals  # the Celery module imports the services, as ingestion

    compute_proposals.delay(job_id)


def job_wants_proposals(job_id: int) -> bool:
    return ProposalConfig.objects.filter(job_id=job_id).exclude(sources=[]).exists()


def proposal_summary(*, job_id: int) -> dict[str, dict[str, int]]:
    """Per source, how many microtasks got each status (the requester's view of the sources)."""
    out: dict[str, dict[str, int]] = {}
    rows = Proposal.objects.filter(microtask__job_id=job_id).values_list("source", "status")
    for source, status in rows.iterator():
        out.setdefault(source, {}).setdefault(status, 0)
        out[source][status] += 1
    return out


# --- what a worker sees, what a submission took -------------------------------------------------


def shown_proposals(microtask: MicroTask) -> list[Proposal]:
    """The ok proposals of ``microtask`` from the sources its job has enabled, oldest first."""
    config = ProposalConfig.objects.filter(job_id=microtask.job_id).first()
    if config is None or not config.sources:
        return []
    return list(
        Proposal.objects.filter(
            microtask=microtask, status=ProposalStatus.OK, source__in=config.sources
        ).order_by("id")
    )


def worker_proposals(microtask: MicroTask) -> list[dict[str, Any]]:
    """The proposals a worker on ``microtask`` sees (a whitelist of fields): each shape with its
    reference ``"<proposal>:<index>"`` and confidence."""
    out = []
    key = TOP_KEY.get(microtask.job.annotation_type, "")
    for p in shown_proposals(microtask):
        shapes = []
        for i, shape in enumerate(p.shapes):
            item = {
                k: shape[k]
                for k in ("frame", "label", "box", "points", "id", "keyframes")
                if k in shape
            }
            conf = p.confidences[i] if i < len(p.confidences) else p.confidence
            shapes.append({"ref": proposal_sources.shape_ref(p.pk, i), "confidence": conf, **item})
        out.append(
            {
                "id": p.pk,
                "source": p.source,
                "model_version": p.model_version,
                "confidence": p.confidence,
                "key": key,
                "shapes": shapes,
            }
        )
    return out


def assignment_view(assignment: Assignment) -> dict[str, Any]:
    """``work_selectors.worker_view_of`` plus the microtask's proposals while the claim is live
    (the assignment API and the annotation page both show this)."""
    view = work_selectors.worker_view_of(assignment)
    live = assignment.status == AssignmentStatus.CLAIMED
    # Full annotation routed by the assisted policy (an audit, an unconfident proposal, an
    # escalation) is drawn with the proposal hidden: its consensus keeps measuring the source.
    hidden = assignment.microtask.assist_mode == AssistMode.FULL
    view["proposals"] = worker_proposals(assignment.microtask) if live and not hidden else []
    return view


def submission_provenance(
    *, microtask: MicroTask, raw: Any, result: ValidatedAnnotation
) -> list[dict[str, Any]]:
    """Provenance of a valid submission (``tasks.proposal_sources.provenance_of``); a
    ``from_proposal`` naming anything but a shown proposal of this microtask is a field error."""
    kind = microtask.job.annotation_type
    if not proposal_sources.claimed_refs(raw, kind):
        return []
    # Every ok proposal of the microtask, shown or not any more: a source the requester turned
    # off while the worker held the claim still backs what the worker accepted from it.
    rows = Proposal.objects.filter(microtask=microtask, status=ProposalStatus.OK).order_by("id")
    stored = [StoredProposal(p.pk, p.source, p.shapes) for p in rows]
    errors = proposal_sources.check_refs(raw, kind, stored)
    if errors:
        first = next(iter(errors))
        raise ValidationError(
            f"The annotation is not valid: {first} {errors[first][0]}.", extra={"fields": errors}
        )
    return proposal_sources.provenance_of(
        raw,
        result.payload[TOP_KEY[kind]],
        annotation_type=kind,
        proposals=stored,
        frame_start=microtask.frame_start,
        frame_end=microtask.frame_end,
    )
