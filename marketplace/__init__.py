"""The Django project and the marketplace domain (users, roles, profiles, jobs)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
