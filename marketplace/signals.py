"""News marketplace sends upwards (tasks listens; marketplace never imports the apps above it).

Sent inside the transaction that made the change, so a receiver's writes commit with it.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A job's status changed (``marketplace.lifecycle.job_transition``). Keyword arguments: ``job``
#: (the row-locked ``Job``, already in its new status), ``previous`` (the status it left) and
#: ``by`` (the ``User`` who asked, or None when the system moved it). ``tasks.receivers`` ends
#: the claims and returns the work of a job a person closed and refunds its unspent escrow, and
#: makes newly covered work claimable when a paused job is resumed.
job_transitioned = Signal()
