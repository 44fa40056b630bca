"""News this app sends upwards (quality listens; ``tasks`` never imports it for these).

Both are sent inside the transaction (or right after the statement) that made the change, so a
receiver's writes commit with it.
"""

from __future__ import annotations

from django.dispatch import Signal

# A worker reported more active time than can be credited (beyond the tolerance): a fraud signal.
# Sent with ``assignment`` (an Assignment with its microtask and job loaded), ``credit`` (the
# ``tasks.worktime.Credit``: reported, credited, elapsed, wall clock, others) and ``at``.
time_overreported = Signal()

# A worker passed the qualification test that ends a suspension from a type (``tasks.suspensions``).
# Sent with ``worker`` and ``annotation_type``.
qualification_reinstated = Signal()

#: A person rejected work (a requester, an admin, or an admin upholding a requester's dispute).
#: Keyword arguments: ``assignment`` (the rejected ``Assignment``), ``by`` (the ``User`` who
#: decided) and ``confirmed`` (True when an admin upheld the requester's rejection: it is the
#: requester's word, confirmed). Quality records a requester's rejection in the worker's standing
#: with them, and in platform-wide trust only when an admin decided or confirmed it or the
#: evidence agrees (``quality.standing``).
work_rejected = Signal()

#: A worker's submission was stored (inside the submit's transaction). Keyword argument:
#: ``submission`` (the ``Submission``, with its assignment). Quality queues its scoring once the
#: row is committed; the submission is its own outbox entry (``quality.services.processing``).
submission_stored = Signal()

#: Microtasks of a job whose replica target was raised (dynamic overlap, a suspension) and whose
#: extra replica slots the job's available escrow cannot fund (sent by the slot fill, under the
#: job's row lock). Keyword arguments: ``job`` and ``microtask_ids``. Quality sends them to the
#: review queue, so no microtask waits forever for a replica nobody can claim.
replicas_unfunded = Signal()

#: Proposals of a job's microtasks were stored (after the transaction that stored them). Keyword
#: argument: ``job_id``. Quality routes the microtasks (model-assisted routing).
proposals_stored = Signal()
