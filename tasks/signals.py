"""News the tasks app sends up to the apps built on it, which it never imports (layers: quality
builds on tasks). Receivers run inside the sender's transaction, so what they write commits or
rolls back with the change they react to."""

from __future__ import annotations

from django.dispatch import Signal

#: A person rejected submitted work (a requester, or an admin upholding a requester's dispute).
#: Keyword arguments: ``assignment`` (the rejected ``Assignment``), ``by`` (the ``User`` who
#: decided) and ``confirmed`` (True when an admin decided: the rejection is the platform's word,
#: not only the requester's). Quality records it in the worker's standing with the requester,
#: and platform-wide only when confirmed (``quality.standing``).
work_rejected = Signal()
