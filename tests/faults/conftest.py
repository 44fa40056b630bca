"""Processes the fault tests run against: gunicorn serving the test database, a private Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT, subprocess_env, wait_for_worker
from tests.conftest import stop_process_group as stop
from tests.payments.conftest import stripe_server  # noqa: F401 (the local Stripe fixture)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, *, seconds: float = 30.0) -> None:
    """Poll until something accepts connections on ``port`` (or the process died)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {seconds} s")


@pytest.fixture
def gunicorn_server(transactional_db) -> Iterator[str]:
    """gunicorn (the project's ``gunicorn.conf.py``, one process) on the test database; yields
    its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "marketplace.wsgi:application",
            "-c",
            "gunicorn.conf.py",
        ],
        cwd=ROOT,
        env=subprocess_env(
            WEB_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1", WEB_THREADS="2", LOG_LEVEL="WARNING"
        ),
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@dataclass
class PrivateRedis:
    """A redis-server of this test alone (never the shared one on 6379): restartable."""

    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (the fault tests need their own Redis)")
    server = PrivateRedis(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc: the prefork pool's children)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


@dataclass
class Worker:
    """A real ``celery worker`` (prefork, one child) this test started."""

    proc: subprocess.Popen

    def child(self, *, seconds: float = 30.0) -> int:
        """The pool child's pid (the process that runs tasks), once there is exactly one."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            kids = children_of(self.proc.pid)
            if len(kids) == 1:
                return kids[0]
            time.sleep(0.05)
        raise RuntimeError("the worker has no single pool child")


def _drop_connections(app) -> None:
    """Forget the app's broker connections (the broker URL is about to change). Not
    ``app.close()``: that also deregisters the app, and tasks imported later never register."""
    app._pool = None  # kombu keeps the pool per broker URL (kombu.pools); not closed here
    app.amqp._producer_pool = None


WORKER_ARGS = (
    "--pool=prefork",
    "--concurrency=1",
    "--loglevel=WARNING",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
)


@pytest.fixture
def celery_worker_factory(transactional_db) -> Iterator:
    """Start real Celery workers on the test database: ``start(broker_url=..., **env)``.

    Prefork with one child, so SIGKILL of the child is what an OOM kill does to a busy worker:
    the parent sees the child lost and, with ``reject_on_worker_lost``, the broker gives the
    message to the next child. The test process sends its tasks through the same broker."""
    from django.conf import settings

    from marketplace.celery import app

    started: list[subprocess.Popen] = []
    previous = (app.conf.task_always_eager, app.conf.broker_url, app.conf.result_backend)

    def start(*, broker_url: str | None = None, **env: str) -> Worker:
        url = broker_url or settings.REDIS_URL
        if app.conf.broker_url != url:
            _drop_connections(app)
            app.conf.broker_url = url
            app.conf.result_backend = url
        app.conf.task_always_eager = False
        app.set_current()
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "marketplace", "worker", *WORKER_ARGS],
            cwd=ROOT,
            env=subprocess_env(REDIS_URL=url, CELERY_BROKER_URL=url, **env),
            start_new_session=True,
        )
        started.append(proc)
        wait_for_worker(app, proc)
        return Worker(proc)

    try:
        yield start
    finally:
        for proc in started:
            stop(proc)
        # A task still queued would run in the next test's worker: drop this test's messages.
        with contextlib.suppress(Exception), app.connection_for_write() as conn:
            for queue in app.conf.task_queues:
                conn.default_channel.queue_purge(queue.name)
        _drop_connections(app)
        app.conf.task_always_eager, app.conf.broker_url, app.conf.result_backend = previous
