"""One claim rule, two implementations: the same scenarios through both claim paths.

``claiming.sql``'s ``claim_next`` runs on PostgreSQL (production, and the rest of this suite);
``tasks.portable.claim_next`` is its ORM twin for the embedded SQLite mode. Each scenario of
``tests/tasks/claim_scenarios.py`` runs here twice: in-process on the suite's PostgreSQL, and
on a real SQLite database in a subprocess (the suite itself stays on PostgreSQL). Running the
portable path on PostgreSQL would prove little: the two databases disagree on things like where
NULL sorts, which is exactly how the twin once put jobs without a deadline first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from tests.tasks import claim_scenarios

NAMES = sorted(claim_scenarios.SCENARIOS)
# What the subprocess must not inherit: it gets its own database, media and in-process Celery.
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "DJANGO_SETTINGS_MODULE",
    "MEDIA_ROOT",
)


@pytest.mark.django_db
@pytest.mark.parametrize("name", NAMES)
def test_claim_next_on_postgresql(name):
    assert connection.vendor == "postgresql"
    claim_scenarios.SCENARIOS[name]()


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory) -> dict[str, str | None]:
    tmp = tmp_path_factory.mktemp("portable")
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        DJANGO_SETTINGS_MODULE="marketplace.settings.local",
    )
    run = subprocess.run(
        [sys.executable, "-c", claim_scenarios.RUN],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_portable_claim_next_on_sqlite(name, sqlite_results):
    assert name in sqlite_results, sorted(sqlite_results)
    failure = sqlite_results[name]
    assert failure is None, failure
