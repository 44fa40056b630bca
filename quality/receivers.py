"""Quality's answers to the news lower apps send (``tasks.signals``); connected in ``apps.py``."""

from __future__ import annotations

from typing import Any

from . import services


def on_work_rejected(sender: Any, *, assignment, by, confirmed: bool, **kwargs: Any) -> None:
    """A person rejected work: it moves the worker's standing with the requester, and their
    platform trust only when confirmed (``quality.standing``)."""
    services.rejection_record(assignment=assignment, by=by, confirmed=confirmed)
