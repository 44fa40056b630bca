"""Celery tasks of the tasks app: take ids, load rows, call a service."""
