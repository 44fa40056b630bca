"""Qualification tests, tasks' side: the questions of a type and the test's terms.

Before paid work of an annotation type, a worker answers a short set of gold-like questions
(``QualificationItem``, tasks' models) scored against their known answers. Scoring and passing
are quality's (``quality.qualifying``: a question is scored exactly like a paid gold submission),
so this module holds only what the pages below quality need: which questions there are, how a
question reads as an annotation context, and the settings that bound a test.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from . import work_selectors
from .annotations import AnnotationContext
from .models import QualificationItem


def _setting(name: str) -> float:
    return float(getattr(settings, name))


def max_attempts() -> int:
    """How many times a worker may take one qualification test."""
    return int(_setting("QUALIFICATION_MAX_ATTEMPTS"))


def pass_score() -> float:
    """The mean score a worker needs to pass a qualification test."""
    return _setting("QUALIFICATION_PASS_SCORE")


def iou_threshold() -> float:
    """The IoU at which a worker's shape matches a question's known one."""
    return _setting("QUALIFICATION_IOU_THRESHOLD")


def qualification_items(*, annotation_type: str) -> list[QualificationItem]:
    """The active questions of a type that have a known answer (a question without one could
    not be scored), with the answer loaded."""
    return list(
        QualificationItem.objects.filter(
            annotation_type=annotation_type, is_active=True, answer__isnull=False
        ).select_related("answer")
    )


def item_context(item: QualificationItem) -> AnnotationContext:
    manifest = item.manifest or {}
    return AnnotationContext(
        annotation_type=item.annotation_type,
        classes=list(item.label_classes),
        width=int(manifest.get("width") or 0),
        height=int(manifest.get("height") or 0),
        frame_start=item.frame_start,
        frame_end=item.frame_end,
        frames=list(item.frames or []),
        label_attributes=dict(item.label_attributes or {}),
        relation_predicates=list(item.relation_predicates or []),
        event_labels=list(item.event_labels or []),
    )


def question_for_worker(item: QualificationItem) -> dict[str, Any]:
    """A qualification question as a worker sees it (never its answer).

    Its frames keep their storage URLs (no ``assignment_id``): they are public test material,
    the same for every worker, and live in their own folder (``qualification/<type>/...``, where
    ``tasks.qualification_bank`` renders them and copying a gold microtask copies its images),
    so a URL tells nothing about any job, video or gold microtask.
    """
    manifest = item.manifest or {}
    return {
        "id": item.pk,
        "instructions": item.instructions,
        "classes": list(item.label_classes),
        "attributes": dict(item.label_attributes or {}),
        "predicates": list(item.relation_predicates or []),
        "event_labels": list(item.event_labels or []),
        "frame_start": item.frame_start,
        "frame_end": item.frame_end,
        "annotate_frames": list(item.frames or []),
        "width": manifest.get("width"),
        "height": manifest.get("height"),
        "frames": work_selectors.worker_frames(
            manifest=manifest,
            frames=list(item.frames or []),
            start=item.frame_start,
            end=item.frame_end,
        ),
    }
