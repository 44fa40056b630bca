"""The Celery application; configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.local")

app = Celery("marketplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Not ``transient_task``: the health check must report a failure, not retry it away.
@app.task(name="marketplace.ping", acks_late=True)
def ping(value: str) -> str:
    """Round-trip check used by the health endpoint and the test suite."""
    return f"pong:{value}"
