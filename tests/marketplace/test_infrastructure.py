"""The suite's own footing: PostgreSQL, a real Celery worker over Redis, the OpenAPI schema."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from marketplace.celery import app, ping

ROOT = settings.BASE_DIR


def test_suite_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_test_settings_refuse_sqlite():
    env = {"DATABASE_URL": "sqlite:////tmp/never.sqlite3", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "import marketplace.settings.test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PostgreSQL only" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECRET_KEY": "insecure-dev-key-change-me"}, "SECRET_KEY"),
        ({"DEBUG": "true", "SECRET_KEY": "x" * 50}, "DEBUG"),
        ({"SECRET_KEY": "x" * 50}, "DATABASE_URL"),
    ],
)
def test_production_settings_fail_fast(env, message):
    result = subprocess.run(
        [sys.executable, "-c", "import marketplace.settings.production"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.slow
def test_celery_round_trip_through_a_real_worker(celery_worker_process):
    assert app.conf.task_always_eager is False
    result = ping.apply_async(args=["hello"])
    assert result.get(timeout=30) == "pong:hello"
    assert celery_worker_process.poll() is None


def test_every_beat_entry_names_a_registered_task():
    app.loader.import_default_modules()
    missing = [
        entry["task"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] not in app.tasks
    ]
    assert missing == []


def test_celery_is_configured_for_safety():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    # A task is killed before its message could be delivered again (README: Operations).
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit < visibility
    assert visibility == settings.CELERY_VISIBILITY_TIMEOUT


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELERY_VISIBILITY_TIMEOUT": "600", "CELERY_TASK_TIME_LIMIT": "600"}, "must grow"),
        ({"CELERY_TASK_TIME_LIMIT": "60", "CELERY_TASK_SOFT_TIME_LIMIT": "90"}, "must grow"),
    ],
)
def test_settings_refuse_a_time_limit_not_below_the_visibility_timeout(env, message):
    proc = subprocess.run(
        [sys.executable, "-c", "import marketplace.settings.test"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert proc.returncode != 0 and message in proc.stderr


def test_the_broker_channel_publishes_every_message_through_one_redis_client():
    """``marketplace.kombu_redis``: kombu built a ``redis.Redis`` per published message; the
    channel now keeps one (commands still take a pooled connection each), and the messages are
    in the queue as before."""
    queue = "test-kombu-redis-client"
    with app.connection_for_write() as conn:
        assert conn.transport_cls == "marketplace.kombu_redis:Transport"
        channel = conn.default_channel
        channel.queue_purge(queue)
        clients = set()
        for n in range(5):
            with channel.conn_or_acquire() as client:
                clients.add(id(client))
            channel._put(queue, {"body": str(n)})
        assert len(clients) == 1
        assert channel.client.llen(queue) == 5
        channel._disconnect_pools()  # a new pool (reconnection, fork): a new client on it
        with channel.conn_or_acquire() as client:
            assert id(client) not in clients and client.connection_pool is channel.pool
        assert channel.client.llen(queue) == 5
        channel.queue_purge(queue)


@pytest.mark.django_db
def test_openapi_schema_generates_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--file", "/dev/null"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "marketplace.settings.test"},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_unknown_api_route_gets_json_404(requester_client):
    response = requester_client.get("/api/jobs/999999/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
