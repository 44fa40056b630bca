"""News payments sends upwards (the tasks app listens; payments never imports it for these)."""

from __future__ import annotations

from django.dispatch import Signal

#: Stripe confirmed a funding and its amount was credited to the job's available escrow (sent
#: inside that transaction). Keyword arguments: ``job_id`` and ``funding`` (the ``Funding``).
#: The tasks app publishes the work the new escrow covers (``tasks.receivers``), on commit.
escrow_funded = Signal()
