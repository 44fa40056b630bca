"""News the tasks app sends up to the apps built on it, which it never imports (layers: quality
builds on tasks). Receivers run inside the sender's transaction, so what they write commits or
rolls back with the change they react to."""

from __future__ import annotations

from django.dispatch import Signal

#: A person rejected work (a requester, an admin, or an admin upholding a requester's dispute).
#: Keyword arguments: ``assignment`` (the rejected ``Assignment``), ``by`` (the ``User`` who
#: decided) and ``confirmed`` (True when an admin upheld the requester's rejection: it is the
#: requester's word, confirmed). Quality records a requester's rejection in the worker's standing
#: with them, and in platform-wide trust only when an admin decided or confirmed it or the
#: evidence agrees (``quality.standing``).
work_rejected = Signal()
