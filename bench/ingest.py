"""Benchmark of video ingestion: throughput against the ffmpeg CLI, and memory against length.

1. Throughput: a generated 1080p H.264 clip of 2 minutes is ingested by the real pipeline
   (``tasks.ingestion_pipeline.video_ingest``: probe, one decode, shot detection, features,
   split, JPEG extraction into storage, microtasks in PostgreSQL; upload excluded) for a job
   sampling every 10th frame. In the same run, ``ffmpeg`` extracts the same frames (``select``
   filter), scaled to the same size, as JPEGs. Each side runs three times, alternating, and the
   best time counts (the machine is shared). Goal: our frames per second ≥ 0.8 of ffmpeg's.
2. Memory: 1-minute and 10-minute 360p clips are ingested as a track job (segments, overlap,
   keyframes), each in a fresh subprocess, which
   reports its own peak resident set size (``VmHWM``). Goal: ratio 10 min / 1 min ≤ 1.25.

Clips are generated once (simple shapes, x264 ``ultrafast``) and cached in ``bench/.cache``.
The benchmark creates and drops its own database (``$BENCH_DB_PREFIX`` + ``ingest``, default
``cl_bench_ingest``) and media folder.

    DJANGO_SETTINGS_MODULE=marketplace.settings.test .venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import json
import os
import resource
import shutil
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
    report,
    with_db,
)

CACHE = ROOT / "bench" / ".cache"
DB_NAME = bench_db_name("ingest")
BENCH_URL = with_db(BASE_DATABASE_URL, DB_NAME)
MEDIA = Path(tempfile.gettempdir()) / f"{DB_NAME}-media"

THROUGHPUT_CLIP = ("h264-1080p-120s.mp4", 1920, 1080, 120)
MEMORY_CLIPS = (("h264-360p-60s.mp4", 640, 360, 60), ("h264-360p-600s.mp4", 640, 360, 600))
FPS = 30
RUNS = 3  # each side, alternating; the best wall time counts
FRAME_W, FRAME_H = 1280, 720  # JPEG size for annotators (the settings' default)
JPEG_QUALITY = 85


def _setup_django(bench_url: str) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ["MEDIA_ROOT"] = str(MEDIA)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- Child: one ingestion, measured ------------------------------------------------------------


def child(video_id: int) -> None:
    _setup_django(BENCH_URL)
    from tasks.ingestion_pipeline import video_ingest

    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = before.ru_utime + before.ru_stime
    t0 = time.perf_counter()
    v = video_ingest(video_id=video_id)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "status": v.status,
                "reason": v.failure_reason,
                "frames": v.frame_count,
                "seconds": seconds,
                "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def _run_child(video_id: int, bench_url: str) -> dict:
    env = dict(os.environ, DATABASE_URL=bench_url)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(video_id)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- Parent -------------------------------------------------------------------------------------


def _make_clip(name: str, width: int, height: int, seconds: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / name
    if path.exists():
        return path
    from tasks import video
    from tasks.synthetic import make_scene

    frames = seconds * FPS
    cuts = tuple(range(FPS * 17, frames, FPS * 17))  # a cut every 17 s
    scene = make_scene(seed=11, width=width, height=height, frames=frames, n_objects=5,
                       motion=6.0, classes=("car", "person"), shot_cuts=cuts)  # fmt: skip
    tmp = path.with_suffix(".part.mp4")
    t0 = time.perf_counter()
    print(f"generating {name} ({frames} frames, cached afterwards)...", file=sys.stderr)

    def progress(i: int) -> None:
        if i % 1800 == 1799:
            print(f"  {i + 1}/{frames} frames", file=sys.stderr, flush=True)

    video.write_video(
        scene, str(tmp), codec="libx264", fps=FPS, preset="ultrafast", crf=23, progress=progress
    )
    tmp.rename(path)
    print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return path


def _register(job_fields: dict, clip: Path):
    """A processing job with ``clip`` registered (symlinked into media, not copied)."""
    from marketplace.lifecycle import job_transition
    from marketplace.models import JobStatus, User
    from marketplace.services import job_create, user_create
    from tasks.ingestion_uploads import video_register_stored

    user = User.objects.filter(username="bench").first() or user_create(
        username="bench", password="bench-pass-123", role="requester"
    )
    job = job_create(requester=user, title=f"bench {clip.name}", budget=0, **job_fields)
    target = MEDIA / "bench" / f"job-{job.pk}" / clip.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(clip)
    v = video_register_stored(job=job, name=f"bench/job-{job.pk}/{clip.name}")
    job_transition(job=job, to=JobStatus.PROCESSING)
    return job, v


def _ffmpeg_extract(clip: Path, frames: list[int], out_dir: Path) -> tuple[float, float]:
    from tasks.video import jpeg_qscale

    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    step = frames[1] - frames[0]
    if frames != list(range(0, frames[-1] + 1, step)):
        raise RuntimeError("the benchmark job samples every n-th frame")
    script = out_dir.parent / "select.txt"
    script.write_text(f"select='not(mod(n\\,{step}))',scale={FRAME_W}:{FRAME_H}")
    cmd = [
        shutil.which("ffmpeg") or "/usr/bin/ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-threads",
        "0",
        "-i",
        str(clip),
        "-an",
        "-filter_script:v",
        str(script),
        "-fps_mode",
        "passthrough",
        "-q:v",
        str(jpeg_qscale(JPEG_QUALITY)),
        str(out_dir / "%06d.jpg"),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, timeout=1800)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    written = len(list(out_dir.iterdir()))
    if written != len(frames):
        raise RuntimeError(f"ffmpeg wrote {written} frames, expected {len(frames)}")
    return seconds, cpu


def main() -> None:
    bench_url = BENCH_URL
    recreate_database(DB_NAME)
    shutil.rmtree(MEDIA, ignore_errors=True)
    MEDIA.mkdir(parents=True)
    started = time.perf_counter()
    try:
        _setup_django(bench_url)
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        settings.VIDEO_FRAME_MAX_WIDTH, settings.VIDEO_FRAME_MAX_HEIGHT = FRAME_W, FRAME_H

        clip = _make_clip(*THROUGHPUT_CLIP)
        memory_clips = [_make_clip(*spec) for spec in MEMORY_CLIPS]
        subprocess.run(["cat", str(clip)], stdout=subprocess.DEVNULL, check=True)  # warm cache

        # Every 10th frame, 10 to a microtask: as many JPEGs as a track job with keyframe_step
        # 10, and a frame set ffmpeg's select filter can express (it cannot parse a list of
        # hundreds of frame numbers).
        sampled = {"annotation_type": "bbox", "label_classes": ["car", "person"],
                   "frame_step": 10, "frames_per_task": 10}  # fmt: skip
        track = {"annotation_type": "track", "label_classes": ["car", "person"]}
        ours, theirs, ours_cpu, theirs_cpu, frames_shown, source_frames = [], [], [], [], [], 0
        from tasks.models import MicroTask

        for _ in range(RUNS):
            _, v = _register(sampled, clip)
            result = _run_child(v.pk, bench_url)
            if result["status"] != "ready":
                raise RuntimeError(f"ingestion failed: {result['reason']}")
            ours.append(result["seconds"])
            ours_cpu.append(result["cpu_seconds"])
            source_frames = result["frames"]
            frames_shown = sorted(
                {f for fs in MicroTask.objects.filter(video=v).values_list("frames", flat=True)
                 for f in fs}
            )  # fmt: skip
            seconds, cpu = _ffmpeg_extract(clip, frames_shown, MEDIA / "ffmpeg-out")
            theirs.append(seconds)
            theirs_cpu.append(cpu)
        our_fps = source_frames / min(ours)
        ffmpeg_fps = source_frames / min(theirs)
        ratio = our_fps / ffmpeg_fps

        memory = {}
        for path in memory_clips:
            _, v = _register(track, path)
            result = _run_child(v.pk, bench_url)
            if result["status"] != "ready":
                raise RuntimeError(f"ingestion failed: {result['reason']}")
            memory[path.name] = result
        short, long = (memory[p.name] for p in memory_clips)
        rss_ratio = long["peak_rss_mib"] / short["peak_rss_mib"]
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(DB_NAME)
        shutil.rmtree(MEDIA, ignore_errors=True)

    result = {
        "goals": {
            "throughput_ratio_vs_ffmpeg": {
                "value": round(ratio, 3),
                "goal": "≥ 0.8",
                "met": ratio >= 0.8,
            },
            "peak_rss_ratio_10min_vs_1min": {
                "value": round(rss_ratio, 3),
                "goal": "≤ 1.25",
                "met": rss_ratio <= 1.25,
            },
        },
        "throughput": {
            "clip": f"{THROUGHPUT_CLIP[1]}x{THROUGHPUT_CLIP[2]} H.264, {THROUGHPUT_CLIP[3]} s, "
            f"{FPS} fps",
            "source_frames": source_frames,
            "frames_extracted": len(frames_shown),
            "jpeg_size": f"{FRAME_W}x{FRAME_H}",
            "ours_seconds": [round(s, 2) for s in ours],
            "ffmpeg_seconds": [round(s, 2) for s in theirs],
            "ours_cpu_seconds": [round(s, 2) for s in ours_cpu],
            "ffmpeg_cpu_seconds": [round(s, 2) for s in theirs_cpu],
            "cpu_time_ratio_ffmpeg_over_ours": round(min(theirs_cpu) / min(ours_cpu), 3),
            "ours_fps": round(our_fps, 1),
            "ffmpeg_fps": round(ffmpeg_fps, 1),
        },
        "memory": {
            "clips": [f"{w}x{h} H.264, {s} s" for _, w, h, s in MEMORY_CLIPS],
            "peak_rss_mib": {k: round(v["peak_rss_mib"], 1) for k, v in memory.items()},
            "seconds": {k: round(v["seconds"], 1) for k, v in memory.items()},
            "frames": {k: v["frames"] for k, v in memory.items()},
        },
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    report("ingest", result)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
