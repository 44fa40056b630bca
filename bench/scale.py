"""Benchmark of scale: one long video across Celery workers, and jobs of 100,000 microtasks.

1. **Ingestion across workers.** A 10-minute 720p H.264 clip (``tasks.synthetic``, a keyframe
   every 2 s) is ingested as a track job by real ``celery worker`` processes (solo pool, one task
   at a time each) over Redis: the video is cut into parts of ``SCALE_PART_SECONDS`` (a tenth of
   the clip) decoded in parallel and joined (``tasks.ingestion_parts``). Wall time from sending
   ``tasks.ingest_video`` to the video being ready, with 1 worker and with 2. Goal: 2 workers /
   1 worker ≤ 0.6 (the machine has 2 cores).
2. **Memory per worker** (``VmHWM`` of each worker process, read before it stops) with 2 workers,
   on a 1-minute and on the 10-minute clip, each with fresh workers. Goal: ratio ≤ 1.25.
3. **Jobs of 100,000 microtasks** (``SCALE_JOB_SIZES``, default 1,000 and 100,000; 1,000
   microtasks a video, 3 approved submissions of each, made in bulk, not ingested). Each step
   runs in a fresh process that reports its own peak RSS (``VmHWM``): publishing a box job
   (every replica slot reserved in escrow), the whole-job consensus of a classification job
   (Dawid-Skene) and a COCO export of a box job (read through, as served). Goal, per step: peak
   at 100k ≤ 1.5 x peak at 1k.

Shorten for development: ``SCALE_LONG_SECONDS=60 SCALE_SHORT_SECONDS=8
SCALE_JOB_SIZES=200,2000``; ``SCALE_SKIP=ingestion`` or ``jobs`` leaves a part out (the
results file keeps that part's figures from its last run, stamped ``measured_at``);
``SCALE_STEPS=consensus`` runs (and builds the jobs of) only the steps named. Creates and
drops its own database (``$BENCH_DB_PREFIX`` + ``scale``, default ``cl_bench_scale``) and media
folder; the broker is ``REDIS_URL``.

    DJANGO_SETTINGS_MODULE=marketplace.settings.test .venv/bin/python bench/scale.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    BASE_DATABASE_URL,
    bench_db_name,
    drop_database,
    peak_rss_mib,
    recreate_database,
    with_db,
)
from _common import report as write_report  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
DB_NAME = bench_db_name("scale")
BENCH_URL = with_db(BASE_DATABASE_URL, DB_NAME)
MEDIA = Path(tempfile.gettempdir()) / f"{DB_NAME}-media"
LONG_SECONDS = int(os.environ.get("SCALE_LONG_SECONDS", "600"))
SHORT_SECONDS = int(os.environ.get("SCALE_SHORT_SECONDS", "60"))
PART_SECONDS = float(os.environ.get("SCALE_PART_SECONDS", str(LONG_SECONDS / 10)))
JOB_SIZES = [int(n) for n in os.environ.get("SCALE_JOB_SIZES", "1000,100000").split(",")]
SKIP = set(os.environ.get("SCALE_SKIP", "").split(","))  # "ingestion" and/or "jobs"
STEPS = [s for s in os.environ.get("SCALE_STEPS", "publish,consensus,export").split(",") if s]
FPS = 30
WIDTH, HEIGHT = 1280, 720


def _env(bench_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=bench_url,
        MEDIA_ROOT=str(MEDIA),
        DJANGO_SETTINGS_MODULE=env.get("DJANGO_SETTINGS_MODULE", "marketplace.settings.test"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _setup_django(bench_url: str, *, eager: bool) -> None:
    os.environ.update(_env(bench_url, CELERY_TASK_ALWAYS_EAGER="true" if eager else "false"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- 1 and 2: one long video across workers -----------------------------------------------------


def _clip(seconds: int) -> Path:
    """A synthetic 720p clip (``tasks.synthetic``: moving, occluding objects, a cut every
    17 s), H.264 ``ultrafast`` with a keyframe every 2 s; generated once, cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synthetic-{HEIGHT}p-{seconds}s.mp4"
    if path.exists():
        return path
    from tasks import video
    from tasks.synthetic import make_scene

    frames = seconds * FPS
    log(f"generating {path.name} ({frames} frames, cached afterwards)...")
    scene = make_scene(
        seed=11, width=WIDTH, height=HEIGHT, frames=frames, n_objects=5, motion=6.0,
        classes=("car", "person"), shot_cuts=tuple(range(FPS * 17, frames, FPS * 17)),
    )  # fmt: skip
    tmp = path.with_suffix(".part.mp4")
    video.write_video(scene, str(tmp), fps=FPS, gop=2 * FPS)
    tmp.rename(path)
    return path


def _requester():
    from marketplace.models import User
    from marketplace.services import user_create

    return User.objects.filter(username="bench").first() or user_create(
        username="bench", password="bench-pass-123", role="requester"
    )


def _register(clip: Path):
    """A processing track job with ``clip`` registered (symlinked into media, not copied)."""
    from marketplace.lifecycle import job_transition
    from marketplace.models import JobStatus
    from marketplace.services import job_create
    from tasks.ingestion_uploads import video_register_stored

    job = job_create(
        requester=_requester(), title=f"bench {clip.name}", budget=0, annotation_type="track",
        label_classes=["car", "person"],
    )  # fmt: skip
    target = MEDIA / "bench" / f"job-{job.pk}" / clip.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(clip)
    v = video_register_stored(job=job, name=f"bench/job-{job.pk}/{clip.name}")
    job_transition(job=job, to=JobStatus.PROCESSING)
    return job, v


def _workers(n: int, bench_url: str) -> list[subprocess.Popen]:
    from marketplace.celery import app

    env = _env(
        bench_url, CELERY_TASK_ALWAYS_EAGER="false", VIDEO_INGEST_PART_SECONDS=str(PART_SECONDS)
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "marketplace", "worker", "--pool=solo",
             "--concurrency=1", "--loglevel=WARNING", f"--hostname=scale-{k}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for k in range(n)
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=0.5) or []) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("the celery workers did not start")
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ingest_with(n_workers: int, clip: Path, bench_url: str) -> dict:
    from marketplace.celery import app
    from tasks.models import MicroTask, VideoPart

    _, v = _register(clip)
    procs = _workers(n_workers, bench_url)
    try:
        cpu0 = sum(_cpu_seconds(p.pid) for p in procs)  # after the workers' start-up
        t0 = time.perf_counter()
        app.send_task("tasks.ingest_video", args=[v.pk])
        while True:
            v.refresh_from_db()
            if v.status in ("ready", "failed"):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        peaks = [peak_rss_mib(p.pid) for p in procs]
        cpu = sum(_cpu_seconds(p.pid) for p in procs) - cpu0
    finally:
        _stop(procs)
    if v.status != "ready":
        raise RuntimeError(f"ingestion failed: {v.failure_reason}")
    parts = list(VideoPart.objects.filter(video=v).values_list("worker", flat=True))
    return {
        "workers": n_workers,
        "seconds": round(seconds, 2),
        "frames": v.frame_count,
        "parts": len(parts),
        "parts_per_worker": {w.split("@")[0]: parts.count(w) for w in sorted(set(parts))},
        "microtasks": MicroTask.objects.filter(video=v).count(),
        "peak_rss_mib_per_worker": [round(p, 1) for p in peaks],
        # CPU of the worker processes (all their threads) over the wall time: the cores the
        # ingestion kept busy (a part decodes and writes its JPEGs on one thread: about 1 core
        # a worker).
        "worker_cpu_seconds": round(cpu, 2),
        "cores_busy": round(cpu / seconds, 2),
        "frames_per_second": round(v.frame_count / seconds, 1),
        "video_id": v.pk,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The peer: the same decoding (``tasks.video.decode_range``, one thread, the analysis picture
# of every frame) of the clip's two halves, in one process, then in two processes at once. No
# queue, no database, no JPEGs: the best a split in two can do for this work on this machine.
_DECODE_HALVES = """
import sys, time
sys.path.insert(0, {root!r})
from tasks import video
path, which = {path!r}, sys.argv[1]
scan = video.scan_seams(path)
mid = min(scan.seams, key=lambda s: abs(s.index - scan.frames / 2))
halves = {{"a": [(scan.seams[0], mid.index - 1)], "b": [(mid, scan.frames - 1)]}}
for start, stop in halves["a"] + halves["b"] if which == "both" else halves[which]:
    for _ in video.decode_range(path, start=start, stop_index=stop):
        pass
"""


def _decode_peer(clip: Path) -> dict:
    script = _DECODE_HALVES.format(root=str(ROOT), path=str(clip))

    def run(*which: str) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", script, w]) for w in which]
        if any(p.wait() for p in procs):
            raise RuntimeError("the decoding peer failed")
        return time.perf_counter() - t0

    one, two = run("both"), run("a", "b")
    return {
        "one_process_seconds": round(one, 2),
        "two_processes_seconds": round(two, 2),
        "ratio": round(two / one, 3),
    }


def bench_ingestion(bench_url: str) -> dict:
    long_clip, short_clip = _clip(LONG_SECONDS), _clip(SHORT_SECONDS)
    subprocess.run(["cat", str(long_clip)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    one = _ingest_with(1, long_clip, bench_url)
    log(f"1 worker: {one}")
    two = _ingest_with(2, long_clip, bench_url)
    log(f"2 workers: {two}")
    short = _ingest_with(2, short_clip, bench_url)
    log(f"2 workers, short clip: {short}")
    peer = _decode_peer(long_clip)
    log(f"plain decoding of the halves, 2 processes vs 1: {peer}")
    return {
        "one_worker": one,
        "two_workers": two,
        "short_clip_two_workers": short,
        "decode_peer_two_vs_one_process": peer,
        # Two workers can at best share out what one kept busy over the 2 cores: a lower
        # bound of the ratio, before the machine's own slow-down under two loads (the peer).
        "ratio_bound_from_cores": round(one["cores_busy"] / (os.cpu_count() or 1), 3),
    }


# --- 3: jobs of many microtasks -----------------------------------------------------------------

PER_VIDEO = 1_000  # microtasks per video: a 100,000-microtask job spans 100 videos
BUILD_BATCH = 5_000
CLASSES = ["car", "person"]


def _video(job, k: int):
    from tasks.models import Video

    v = Video(job=job, original_name=f"v{k}.mp4", status="ready", width=1280, height=720,
              fps=30.0, frame_count=30 * PER_VIDEO, frame_width=1280, frame_height=720,
              checksum=f"bench-{job.pk}-{k}")  # fmt: skip
    v.file.name = f"bench/none-{job.pk}-{k}.mp4"
    v.save()
    return v


def _build_job(n: int, annotation_type: str, *, with_work: bool) -> int:
    """A ready, funded job of ``n`` microtasks (frames 3 apart), in bulk; ``with_work`` adds 3
    approved submissions of each and its current consensus result (what an export reads)."""
    from django.db import transaction
    from django.utils import timezone

    from marketplace.models import JobStatus, User
    from marketplace.services import job_create, user_create
    from payments.escrow import escrow_fund
    from quality.models import ConsensusDecision, ConsensusResult
    from tasks.models import Assignment, MicroTask, Submission

    job = job_create(
        requester=_requester(), title=f"bench {n} {annotation_type}", budget=10**11,
        annotation_type=annotation_type, label_classes=CLASSES, overlap_min=3, overlap_max=3,
    )  # fmt: skip
    workers = [
        User.objects.filter(username=f"bench-w{k}").first()
        or user_create(username=f"bench-w{k}", password="bench-pass-123", role="worker")
        for k in range(3)
    ]
    now = timezone.now()
    for start in range(0, n, BUILD_BATCH):
        with transaction.atomic():
            count = min(BUILD_BATCH, n - start)
            videos = {}
            rows = []
            for i in range(start, start + count):
                k = i // PER_VIDEO
                if k not in videos:
                    videos[k] = _video(job, k)
                first = 3 * (i % PER_VIDEO)
                frames = [first, first + 1, first + 2]
                rows.append(
                    MicroTask(job=job, video=videos[k], index=i % PER_VIDEO, frame_start=first,
                              frame_end=first + 2, frames=frames, price=40, replica_target=3,
                              status="complete" if with_work else "open",
                              manifest={"frames": [{"frame": f} for f in frames]})
                )  # fmt: skip
            mts = MicroTask.objects.bulk_create(rows)
            if not with_work:
                continue
            assignments = Assignment.objects.bulk_create(
                Assignment(microtask=mt, worker=w, claimed_at=now, deadline=now,
                           submitted_at=now, status="approved")
                for mt in mts for w in workers
            )  # fmt: skip
            Submission.objects.bulk_create(
                Submission(assignment=a, payload={}, frames={
                    str(f): [{"label": CLASSES[(a.microtask_id + (a.worker_id % 5 == 0)) % 2],
                              "box": [10, 20, 110, 220]}]
                    for f in a.microtask.frames
                })
                for a in assignments
            )  # fmt: skip
            ConsensusResult.objects.bulk_create(
                ConsensusResult(
                    microtask=mt, algorithm="boxes-v1", agreement=1.0,
                    decision=ConsensusDecision.ACCEPT, replicas=3,
                    frames={str(f): [{"label": "car", "box": [10, 20, 110, 220]}]
                            for f in mt.frames},
                    annotator_agreement={str(a.pk): 1.0 for a in assignments[3 * j : 3 * j + 3]},
                )
                for j, mt in enumerate(mts)
            )  # fmt: skip
    job.status = JobStatus.READY
    job.save(update_fields=["status"])
    escrow_fund(job=job, amount=10**11, key=f"bench-fund:{job.pk}")
    return job.pk


def child_step(step: str, job_id: int) -> None:
    """One step on one job in this fresh process; prints seconds and its own peak RSS."""
    _setup_django(BENCH_URL, eager=True)
    from marketplace.models import Job
    from quality import exporting
    from quality.services import job_classes_aggregate
    from tasks import claiming

    job = Job.objects.get(pk=job_id)
    # VmHWM, not ru_maxrss (``_common.peak_rss_mib``).
    base = peak_rss_mib(os.getpid())
    t0 = time.perf_counter()
    if step == "publish":
        out = claiming.job_publish(job=job, by=job.requester).regular_slots
    elif step == "consensus":
        out = job_classes_aggregate(job_id=job.pk)
    elif step == "export":
        export = exporting.job_export(job=job, fmt="coco", by=job.requester)
        with export.file as f:  # read it through, as the response does
            while f.read(1 << 20):
                pass
        out = export.size
    else:
        raise SystemExit(f"unknown step {step}")
    seconds = time.perf_counter() - t0
    peak = peak_rss_mib(os.getpid())
    print(json.dumps({"step": step, "result": out, "seconds": seconds,
                      "peak_rss_mib": peak, "rss_before_mib": base}))  # fmt: skip


def _run_step(step: str, job_id: int, bench_url: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(job_id)],
        env=_env(bench_url, CELERY_TASK_ALWAYS_EAGER="true"),
        capture_output=True, text=True, check=False, timeout=7200,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"{step} failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_jobs(bench_url: str) -> dict:
    figures: dict[str, dict] = {}
    for n in JOB_SIZES:
        t0 = time.perf_counter()
        jobs = {
            step: _build_job(n, "classify" if step == "consensus" else "bbox",
                             with_work=step != "publish")
            for step in STEPS
        }  # fmt: skip
        log(f"built the {n}-microtask jobs in {time.perf_counter() - t0:.0f} s")
        figures[str(n)] = {step: _run_step(step, jobs[step], bench_url) for step in STEPS}
        log(f"{n}: {figures[str(n)]}")
    return figures


# --- Main ---------------------------------------------------------------------------------------


def _goal(value: float, goal: str, met: bool) -> dict:
    return {"value": round(value, 3), "goal": goal, "met": met}


def main() -> None:
    bench_url = BENCH_URL
    recreate_database(DB_NAME)
    shutil.rmtree(MEDIA, ignore_errors=True)
    MEDIA.mkdir(parents=True)
    started = time.perf_counter()
    try:
        _setup_django(bench_url, eager=False)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        ingestion = bench_ingestion(bench_url) if "ingestion" not in SKIP else None
        jobs = bench_jobs(bench_url) if "jobs" not in SKIP else None
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB_NAME)
        shutil.rmtree(MEDIA, ignore_errors=True)

    goals: dict[str, dict] = {}
    report: dict = {"goals": goals}
    if ingestion:
        one, two = ingestion["one_worker"], ingestion["two_workers"]
        short = ingestion["short_clip_two_workers"]
        ratio = two["seconds"] / one["seconds"]
        rss_ratio = max(two["peak_rss_mib_per_worker"]) / max(short["peak_rss_mib_per_worker"])
        goals["ingest_wall_ratio_2_vs_1_workers"] = _goal(ratio, "≤ 0.6", ratio <= 0.6)
        goals["ingest_peak_rss_ratio_long_vs_short"] = _goal(rss_ratio, "≤ 1.25", rss_ratio <= 1.25)
        report["ingestion"] = {
            "clip": f"{WIDTH}x{HEIGHT} H.264 (tasks.synthetic), {FPS} fps, keyframe every 2 s",
            "long_seconds": LONG_SECONDS,
            "short_seconds": SHORT_SECONDS,
            "part_seconds": PART_SECONDS,
            **ingestion,
        }
    if jobs:
        small, large = str(min(JOB_SIZES)), str(max(JOB_SIZES))
        for step in STEPS:
            r = jobs[large][step]["peak_rss_mib"] / jobs[small][step]["peak_rss_mib"]
            goals[f"{step}_peak_rss_ratio_{large}_vs_{small}"] = _goal(r, "≤ 1.5", r <= 1.5)
        report["jobs"] = {
            "shape": f"{PER_VIDEO} microtasks per video, 3 frames each; consensus on a "
            "classification job, publish and COCO export on a box job; 3 approved submissions "
            "of every microtask; each step in a fresh process (its VmHWM)",
            **jobs,
        }
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for part in ("ingestion", "jobs"):
        if part in report:
            report[part]["measured_at"] = measured_at
    _keep_skipped_parts(report)
    report.update(
        {
            "cpu_count": os.cpu_count(),
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    )
    write_report("scale", report)


def _keep_skipped_parts(report: dict) -> None:
    """A part left out (``SCALE_SKIP``) keeps its figures and goals from the results file, each
    part's own peers (1 vs 2 workers, 1k vs 100k microtasks) having been measured side by side in
    one run, stamped with when (``measured_at``). So the two parts can run at different times,
    e.g. the ingestion ratio on a quiet machine."""
    path = ROOT / "bench" / "results" / "scale.json"
    if not SKIP & {"ingestion", "jobs"} or not path.exists():
        return
    previous = json.loads(path.read_text())
    prefixes = {"ingestion": ("ingest_",), "jobs": tuple(f"{step}_" for step in STEPS)}
    for part in ("ingestion", "jobs"):
        if part in SKIP and part in previous:
            report[part] = previous[part]
            for name, goal in previous.get("goals", {}).items():
                if name.startswith(prefixes[part]):
                    report["goals"][name] = goal


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_step(sys.argv[2], int(sys.argv[3]))
    else:
        main()
