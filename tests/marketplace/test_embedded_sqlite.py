"""The embedded SQLite of ``make run`` never answers "database is locked": concurrent
transactions wait for the write lock (IMMEDIATE transactions, a busy timeout) and WAL lets
readers on. Real threads on a real SQLite file, in a process of its own (the suite's own
database is PostgreSQL; only the embedded mode's tests use SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.marketplace.test_embedded import SERVICE_VARS

pytestmark = pytest.mark.slow

SCRIPT = settings.BASE_DIR / "tests" / "marketplace" / "sqlite_contention.py"


def _run(tmp_path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "m"),
        QUALIFICATION_SEED_ON_MIGRATE="false",
        PYTHONPATH=str(settings.BASE_DIR),
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_concurrent_writers_wait_instead_of_failing(tmp_path):
    result = _run(tmp_path)
    assert result["errors"] == []
    assert result["writes"] == result["expected"]  # every transaction committed
    assert result["journal_mode"] == "wal"


def test_without_the_settings_the_same_load_fails(tmp_path):
    """The control: SQLite's defaults answer this load with "database is locked"."""
    result = _run(tmp_path, "--deferred")
    assert any("database is locked" in e for e in result["errors"]), result
    assert result["writes"] < result["expected"]
