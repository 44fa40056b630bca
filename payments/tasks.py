"""Celery tasks of the payments app: take ids, load rows, call a service."""
