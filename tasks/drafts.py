"""Work in progress: the draft a worker's page sends with its heartbeat (pure).

A draft is what the annotation page would submit if the worker pressed Submit now, plus the time
(the page's clock, milliseconds since the epoch) it was saved at::

    {"saved_at": 1764556800000, "payload": {"boxes": [...]}}

It is stored on the assignment so that a reload, a crash or another device gets the work back,
and it **never counts as a submission**: nothing reads it but the page of the worker who holds
the claim (``tasks.work_selectors.worker_view_of``, while the claim is live). So it is checked
for its shape and its size only, not against the job's schema: work in progress may be
unfinished (a box without its class yet, a frame still empty). The page chooses the newer of the
draft kept on the device and this one by ``saved_at`` (``newestDraft`` in
``static/js/annotate/core.mjs``); ``tests/vectors/drafts.json`` holds the cases both sides are
tested on.
"""

from __future__ import annotations

import json
from typing import Any

from marketplace import label_schema
from marketplace.errors import ValidationError

from .annotations import TOP_KEY

# Far more than any real microtask's work (5,000 boxes are about 400 kB), small enough that a
# heartbeat stays a cheap write.
DRAFT_MAX_BYTES = 1_000_000
# JavaScript's Number.MAX_SAFE_INTEGER: a page's Date.now() is always below it.
SAVED_AT_MAX = 2**53 - 1


def _invalid(path: str, message: str) -> ValidationError:
    return ValidationError(
        f"The draft was not saved: {path} {message}.", extra={"fields": {path: [message]}}
    )


def clean_draft(value: Any, *, annotation_type: str, max_bytes: int = DRAFT_MAX_BYTES) -> dict:
    """``value`` as a draft of an ``annotation_type`` job, or a ValidationError naming the field
    (``draft``, ``draft.saved_at``, ``draft.payload``, ``draft.payload.<key>``)."""
    if not isinstance(value, dict):
        raise _invalid("draft", "must be an object {saved_at, payload}")
    extra = sorted(set(value) - {"saved_at", "payload"})
    if extra:
        raise _invalid(f"draft.{extra[0]}", "is not a field of a draft")
    saved_at = value.get("saved_at")
    if (
        isinstance(saved_at, bool)
        or not isinstance(saved_at, int)
        or not 0 <= saved_at <= SAVED_AT_MAX
    ):
        raise _invalid("draft.saved_at", "must be milliseconds since the epoch")
    payload = value.get("payload")
    if not isinstance(payload, dict):
        raise _invalid("draft.payload", "must be an object")
    # A track job's payload may carry its tracks' events beside the tracks; objects' relations
    # ride beside the objects of the kinds that take them.
    keys = {
        TOP_KEY[annotation_type],
        *(("events",) if annotation_type == "track" else ()),
        *(("relations",) if annotation_type in label_schema.KINDS else ()),
    }
    for k, items in payload.items():
        if k not in keys:
            raise _invalid(f"draft.payload.{k}", f"is not part of a {annotation_type} annotation")
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise _invalid(f"draft.payload.{k}", "must be a list of objects")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise _invalid("draft", f"is {size} bytes, more than the {max_bytes} a draft may take")
    return {"saved_at": saved_at, "payload": payload}
