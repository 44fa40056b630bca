"""The job state machine (pure): which status may follow which."""

from __future__ import annotations

from .models import FINAL_JOB_STATUSES, JobStatus

_FORWARD: dict[str, frozenset[str]] = {
    JobStatus.DRAFT: frozenset({JobStatus.PROCESSING}),
    JobStatus.PROCESSING: frozenset({JobStatus.READY}),
    JobStatus.READY: frozenset({JobStatus.PUBLISHED}),
    JobStatus.PUBLISHED: frozenset({JobStatus.PAUSED, JobStatus.COMPLETED}),
    JobStatus.PAUSED: frozenset({JobStatus.PUBLISHED, JobStatus.COMPLETED}),
}


def allowed_next(status: str) -> frozenset[str]:
    """Statuses a job in ``status`` may move to; cancelled and failed from any non-final one."""
    if status in FINAL_JOB_STATUSES:
        return frozenset()
    return _FORWARD.get(status, frozenset()) | {JobStatus.CANCELLED, JobStatus.FAILED}


def can_transition(current: str, new: str) -> bool:
    return new in allowed_next(current)
