"""``make run``'s embedded default: SQLite, in-process Celery, local media — no services."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

ROOT = settings.BASE_DIR
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "DJANGO_SETTINGS_MODULE",
    "MEDIA_ROOT",
    "STRIPE_API_BASE",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_embedded_default_migrates_loads_demo_and_serves(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", MEDIA_ROOT=str(tmp_path / "m"))
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    migrated = run("migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    demo = run("load_demo")
    assert demo.returncode == 0, demo.stderr
    assert "requester" in demo.stdout and "worker" in demo.stdout
    assert demo.stdout.count(": Published") == 3, demo.stdout  # ingested, priced, funded

    # A worker can claim and submit on SQLite (the portable claim statements).
    work = run(
        "shell",
        "-c",
        "from marketplace.models import User; from tasks import claiming; "
        "w = User.objects.get(username='worker'); a = claiming.assignment_claim(worker=w); "
        "claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={'boxes': []}); "
        "a.refresh_from_db(); print('claimed', a.microtask.job.title, a.status)",
    )
    assert work.returncode == 0, work.stderr
    assert "claimed" in work.stdout and ("submitted" in work.stdout or "approved" in work.stdout)

    # The demo crowd lives the whole marketplace on SQLite too: payout run and transfers
    # included (payments.transfers' portable twins of payments/payouts.sql).
    demo_crowd = run("demo", "--videos", "1")
    assert demo_crowd.returncode == 0, demo_crowd.stderr
    payouts_line = next(ln for ln in demo_crowd.stdout.splitlines() if " paid, " in ln)
    paid = int(payouts_line.split("payouts")[1].split()[0])
    assert paid > 0 and "Stripe transfer" in payouts_line, payouts_line
    assert "invariants         all held" in demo_crowd.stdout, demo_crowd.stdout

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pages = {}
        deadline = time.monotonic() + 60
        for path in ("/", "/api/docs/", "/api/schema/"):
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                        pages[path] = (r.status, r.read())
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
        assert pages["/"][0] == 200 and b"Crowdlabel" in pages["/"][1]
        assert pages["/api/docs/"][0] == 200
        assert pages["/api/schema/"][0] == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert (tmp_path / "db.sqlite3").exists()
