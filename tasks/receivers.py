"""What the tasks app does with news from payments (``payments.signals``); connected in ``apps``."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from payments import signals

from .tasks import fill_job_slots


@receiver(signals.escrow_funded, dispatch_uid="tasks.fill_slots_on_funding")
def on_escrow_funded(sender, *, job_id: int, **kwargs) -> None:
    """Publish the work the new escrow covers, once the credit has committed."""
    transaction.on_commit(lambda: fill_job_slots.delay(job_id))
