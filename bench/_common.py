"""What several benchmarks share: their own PostgreSQL database, seeded workers and jobs, and
the shipped gunicorn (``gunicorn.conf.py``) and Celery worker processes run against it.

Nothing here imports Django at module level: a bench points ``DATABASE_URL`` at its database,
calls :func:`recreate_database`, runs ``django.setup()``, then uses the seeding helpers.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BASE_DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/crowdlabel")
FRAMES_PER_TASK = 5
BENCH_PASSWORD = "bench-pass-123"


def bench_db_name(bench: str) -> str:
    """``$BENCH_DB_PREFIX`` + the bench's name (the prefix keeps parallel runs apart)."""
    return os.environ.get("BENCH_DB_PREFIX", "cl_bench_") + bench


def with_db(url: str, name: str) -> str:
    return urlparse(url)._replace(path=f"/{name}").geturl()


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(with_db(BASE_DATABASE_URL, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(with_db(BASE_DATABASE_URL, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def peak_rss_mib(pid: int | str = "self") -> float:
    """A process's peak resident set size (``VmHWM``), in MiB. Not ``ru_maxrss``: Linux carries
    that over from the parent across fork and exec, while VmHWM is the process's own."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def report(name: str, result: dict, *, write: bool = True) -> None:
    """Write ``bench/results/<name>.json`` (unless ``write`` is false: a shortened run) and print
    the result as the final line of output."""
    if write:
        out = ROOT / "bench" / "results" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, default=str))


# --- data ----------------------------------------------------------------------------------------


def make_workers(n: int, prefix: str) -> list:
    """``n`` workers with a profile, a passed bbox qualification and an API token."""
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from marketplace.models import Qualification, QualificationStatus, Role, User, WorkerProfile

    password = make_password(BENCH_PASSWORD)
    users = User.objects.bulk_create(
        [User(username=f"{prefix}{i}", password=password, role=Role.WORKER) for i in range(n)]
    )
    WorkerProfile.objects.bulk_create([WorkerProfile(user=u, country="US") for u in users])
    Qualification.objects.bulk_create(
        [
            Qualification(
                worker=u, annotation_type="bbox", status=QualificationStatus.PASSED, score=1.0
            )
            for u in users
        ]
    )
    Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return users


def make_job(requester, title: str, *, status: str = "ready"):
    """A bbox job with one ready video (no file is read: microtasks are inserted directly)."""
    from marketplace.models import Job
    from tasks.models import Video

    job = Job.objects.create(
        requester=requester,
        title=title,
        annotation_type="bbox",
        label_classes=["car", "person"],
        overlap_min=3,
        overlap_max=5,
        gold_rate=0.0,
        budget=10**12,
        status=status,
    )
    video = Video.objects.create(
        job=job,
        file=f"videos/bench/{title}.mp4",
        original_name=f"{title}.mp4",
        status="ready",
        width=640,
        height=360,
        fps=30.0,
        frame_count=10**9,
    )
    return job, video


def insert_microtasks(job, video, n: int) -> None:
    """``n`` open microtasks of 5 frames each with one SQL statement; other columns default."""
    from django.db import connection
    from django.db.models import DateTimeField

    from tasks.models import MicroTask

    f = FRAMES_PER_TASK
    exprs = {
        "job_id": str(int(job.pk)),
        "video_id": str(int(video.pk)),
        "index": "g",
        "frame_start": f"g * {f}",
        "frame_end": f"g * {f} + {f - 1}",
        "frames": "jsonb_build_array(" + ", ".join(f"g * {f} + {i}" for i in range(f)) + ")",
        "price": "50",
        "replica_target": "3",
    }
    cols, values, args = [], [], []
    for field in MicroTask._meta.concrete_fields:
        if field.primary_key:
            continue
        cols.append(connection.ops.quote_name(field.column))
        if field.column in exprs:
            values.append(exprs[field.column])
        elif isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add):
            values.append("now()")
        elif field.has_default():
            values.append("%s")
            args.append(field.get_db_prep_save(field.get_default(), connection))
        elif field.null:
            values.append("NULL")
        else:
            raise RuntimeError(f"bench does not know a value for MicroTask.{field.name}")
    sql = (
        f"INSERT INTO tasks_microtask ({', '.join(cols)}) "
        f"SELECT {', '.join(values)} FROM generate_series(0, %s) AS g"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [*args, n - 1])


# --- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        CONN_MAX_AGE="600",
        DJANGO_SETTINGS_MODULE="marketplace.settings.test",
        REDIS_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="false",
        WHITENOISE_AUTOREFRESH="false",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def start_gunicorn(
    port: int, *, database_url: str, redis_url: str, workers: int, threads: int, **extra: str
) -> subprocess.Popen:
    """gunicorn with the shipped ``gunicorn.conf.py``, at ``workers`` x ``threads``; ``extra``
    environment variables on top (throttle rates, the Stripe server's address)."""
    env = _service_env(
        database_url,
        redis_url,
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(workers),
        WEB_THREADS=str(threads),
        **extra,
    )
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),  # the running venv
            "marketplace.wsgi:application",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def start_celery_worker(
    *,
    database_url: str,
    redis_url: str,
    name: str,
    concurrency: int = 1,
    queues: str = "",
    **extra: str,
) -> subprocess.Popen:
    """A real ``celery worker`` (prefork, ``concurrency`` processes) on the bench's broker,
    consuming ``queues`` (comma-separated; all of ``CELERY_TASK_QUEUES`` when empty); returns
    once it answers a ping."""
    from marketplace.celery import app

    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketplace", "worker",
         f"--concurrency={concurrency}", "--loglevel=WARNING", f"--hostname={name}@%h",
         *(["-Q", queues] if queues else []),
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=_service_env(database_url, redis_url, **extra), start_new_session=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.5):
        if time.monotonic() > deadline or proc.poll() is not None:
            stop_process(proc)
            raise RuntimeError("the celery worker did not start")
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group ``proc`` leads (gunicorn, celery), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
