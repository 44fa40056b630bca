"""Fixtures shared by the whole suite: API clients per role and a real Celery worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import AdminFactory, RequesterFactory, WorkerFactory

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.tiers"]  # the pure tier: which tests, and the guard that keeps it honest


def _client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user
    return client


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def requester(db):
    return RequesterFactory()


@pytest.fixture
def other_requester(db):
    return RequesterFactory()


@pytest.fixture
def worker(db):
    return WorkerFactory()


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def requester_client(requester) -> APIClient:
    return _client_for(requester)


@pytest.fixture
def other_requester_client(other_requester) -> APIClient:
    return _client_for(other_requester)


@pytest.fixture
def worker_client(worker) -> APIClient:
    return _client_for(worker)


@pytest.fixture
def admin_client_api(admin_user) -> APIClient:
    return _client_for(admin_user)


@pytest.fixture
def client_for():
    """Make an authenticated API client for any user."""
    return _client_for


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that shares this test run's database and broker."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="marketplace.settings.test",
        DATABASE_URL=(
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        REDIS_URL=settings.REDIS_URL,
        CELERY_TASK_ALWAYS_EAGER="false",
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@contextmanager
def celery_workers(count: int = 1, **extra_env: str) -> Iterator[list[subprocess.Popen]]:
    """``count`` real ``celery worker`` processes (solo pool, one task at a time each) on the
    test database and the real Redis broker, with ``extra_env`` added to their environment.

    Tasks sent meanwhile go through Redis to them (not eager mode); callers see committed data
    only, so use it from tests with ``transactional_db``.
    """
    from marketplace.celery import app

    procs = [
        subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "marketplace", "worker",
                "--pool=solo", "--concurrency=1", "--loglevel=WARNING",
                f"--hostname=test-worker-{n}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT,
            env=subprocess_env(**extra_env),
            start_new_session=True,
        )
        for n in range(count)
    ]  # fmt: skip
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if len(app.control.ping(timeout=0.5) or []) >= count:
                    break
            except Exception:
                pass
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"celery worker exited with {proc.returncode}")
        else:
            raise RuntimeError(f"{count} celery workers did not answer a ping within 30 s")
        yield procs
    finally:
        app.conf.task_always_eager = previous
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_for_worker(app, proc: subprocess.Popen, *, seconds: float = 30.0) -> None:
    """Poll until the worker ``proc`` answers a ping over the broker (or died, or time is up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}")
        try:
            if app.control.ping(timeout=0.5):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"celery worker did not answer a ping within {seconds:g} s")


def stop_process_group(proc: subprocess.Popen) -> None:
    """End a process group a test started (``start_new_session``): SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def celery_worker_process(transactional_db) -> Iterator[subprocess.Popen]:
    """A real ``celery worker`` process on the test database and the real Redis broker (see
    ``celery_workers``)."""
    with celery_workers(1) as procs:
        yield procs[0]


@pytest.fixture(autouse=True)
def _reset_celery_join_guard():
    """Eager tasks run inside celery's ``denied_join_result()``, which saves and restores a
    process-global flag. Eager tasks on several threads at once (the concurrency tests) can
    restore it in the wrong order and leave it set, after which every ``result.get()`` in this
    process raises "Never call result.get() within a task". Start every test from a clean flag."""
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)
    yield
    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Rate limits and sign-in lockouts live in the cache (Redis): every test starts with none.
    Only the cache's own keys (its KEY_PREFIX) go: the same Redis database is Celery's broker.
    A pure test (tests/tiers.py) reaches no Redis, so there is nothing of its own to clear."""
    if request.node.get_closest_marker("pure") is not None:
        yield
        return
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(write=True)
        keys = list(client.scan_iter(match=backend.make_key("*"), count=1000))
        if keys:
            client.delete(*keys)
    else:
        backend.clear()
    yield
