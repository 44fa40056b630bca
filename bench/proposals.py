"""Benchmark: the built-in proposal sources and the model backend round trip, with a peer.

1. Moving regions (``tasks.vision.motion_regions``: each frame against the per-pixel median of
   the microtask's frames) against plain frame differencing (each frame against the previous
   sampled one, thresholded and labelled with ``scipy.ndimage``: the textbook first try), on the
   sampled frames (every 6th of 60) of generated clips with known truth (``tasks.synthetic``,
   moving, occluding, entering and leaving objects). Recall and precision at IoU >= 0.5 against
   the visible true boxes. Goals: recall >= 0.7, and F1 (precision and recall together: a
   source that proposes every blob finds many boxes and as many wrong ones) >= the peer's.
2. Speed at 720p (1280x720): moving regions on one microtask's 10 frames, and OpenCV's HOG people
   detector on one frame. Goals: <= 1 s per microtask, <= 0.5 s per frame.
3. The model backend: ``tasks.ml_backend.predict`` (health, setup, predict with 10 JPEG frames
   inline) against the local backend ``ml_local`` in this process over real HTTP. Goal: <= 1 s.

The machine is shared with other work while this runs: times are wall clock of one process and
vary with the load. Run: ``make bench-proposals``. Needs no database. Prints a final JSON line and
writes ``bench/results/proposals.json``.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.test")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

from bench._common import report  # noqa: E402
from ml_local.server import LocalModel  # noqa: E402
from tasks import ml_backend, vision  # noqa: E402
from tasks.proposal_sources import box_iou  # noqa: E402
from tasks.synthetic import make_scene, render_frame  # noqa: E402

SEEDS = range(1, 9)
SAMPLED = list(range(0, 60, 6))


def _frame_differencing(images, threshold=25, min_area_fraction=0.002):
    """The peer: |frame - previous sampled frame| > threshold, connected regions -> boxes."""
    grays = [im.astype(np.float32).mean(axis=2) for im in images]
    h, w = grays[0].shape
    out = []
    for k, g in enumerate(grays):
        other = grays[k - 1] if k > 0 else grays[1]
        mask = np.abs(g - other) > threshold
        mask = ndimage.binary_opening(mask, iterations=1)
        labels, _ = ndimage.label(mask)
        boxes = []
        for sl in ndimage.find_objects(labels):
            if sl is None:
                continue
            ys, xs = sl
            if (ys.stop - ys.start) * (xs.stop - xs.start) >= min_area_fraction * w * h:
                boxes.append((xs.start, ys.start, xs.stop, ys.stop))
        out.append(boxes)
    return out


def _match(found, truth, min_iou=0.5):
    """(true positives, proposed, true) on one frame, greedy by IoU."""
    pairs = sorted(
        ((box_iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)),
        reverse=True,
    )
    used_f, used_t, tp = set(), set(), 0
    for iou, i, j in pairs:
        if iou < min_iou or i in used_f or j in used_t:
            continue
        used_f.add(i)
        used_t.add(j)
        tp += 1
    return tp, len(found), len(truth)


def accuracy(width=320, height=240):
    totals = {"ours": [0, 0, 0], "peer": [0, 0, 0]}
    for seed in SEEDS:
        scene = make_scene(
            seed=seed, width=width, height=height, frames=60, n_objects=3, motion=3.0
        )
        images = [render_frame(scene, f) for f in SAMPLED]
        ours = [[b for b, _ in found] for found in vision.motion_regions(images)]
        peer = _frame_differencing(images)
        for k, f in enumerate(SAMPLED):
            truth = [
                (b.x, b.y, b.x + b.w, b.y + b.h)
                for b in scene.boxes(f)
                if not b.outside and b.w * b.h >= 0.002 * width * height
            ]
            for name, found in (("ours", ours[k]), ("peer", peer[k])):
                for i, v in enumerate(_match(found, truth)):
                    totals[name][i] += v
    out = {}
    for name, (tp, proposed, true) in totals.items():
        recall, precision = tp / true, tp / proposed if proposed else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {
            "recall": round(recall, 3),
            "precision": round(precision, 3),
            "f1": round(f1, 3),
            "true_boxes": true,
            "proposed_boxes": proposed,
        }
    return out


def _jpeg(pixels) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def speed():
    scene = make_scene(seed=1, width=1280, height=720, frames=60, n_objects=4, motion=8.0)
    images = [render_frame(scene, f) for f in SAMPLED]
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        vision.motion_regions(images)
        runs.append(time.perf_counter() - t)
    hog = []
    for im in images[:5]:
        t = time.perf_counter()
        vision.people(im)
        hog.append(time.perf_counter() - t)
    model = LocalModel().start()
    settings.ML_BACKEND_ALLOWED_HOSTS = ["127.0.0.1"]
    frames = [
        ml_backend.FrameImage(f, _jpeg(im), 1280, 720)
        for f, im in zip(SAMPLED, images, strict=True)
    ]
    trips = []
    try:
        for _ in range(5):
            t = time.perf_counter()
            prediction = ml_backend.predict(
                model.url("ok"), token="", project="bench", classes=["car"], frames=frames
            )
            trips.append(time.perf_counter() - t)
    finally:
        model.stop()
    assert len(prediction.boxes) == len(frames)
    return {
        "motion_seconds_per_microtask_720p": round(min(runs), 3),
        "hog_seconds_per_frame_720p": round(float(np.median(hog)), 3),
        "backend_round_trip_seconds_10_frames": round(float(np.median(trips)), 3),
        "jpeg_bytes_per_frame": int(np.mean([len(f.jpeg) for f in frames])),
    }


def main():
    acc = accuracy()
    fast = speed()
    ours, peer = acc["ours"], acc["peer"]

    def goal(value, text, met):
        return {"value": value, "goal": text, "met": bool(met)}

    result = {
        "bench": "proposals",
        "note": "wall clock on a machine shared with other work; times vary with its load",
        "accuracy": acc,
        "speed": fast,
        "goals": {
            "motion_recall": goal(ours["recall"], ">= 0.7", ours["recall"] >= 0.7),
            "motion_f1_vs_frame_differencing": goal(
                ours["f1"], f">= {peer['f1']} (the peer's)", ours["f1"] >= peer["f1"]
            ),
            "motion_seconds_per_microtask_720p": goal(
                fast["motion_seconds_per_microtask_720p"],
                "<= 1.0",
                fast["motion_seconds_per_microtask_720p"] <= 1.0,
            ),
            "hog_seconds_per_frame_720p": goal(
                fast["hog_seconds_per_frame_720p"],
                "<= 0.5",
                fast["hog_seconds_per_frame_720p"] <= 0.5,
            ),
            "backend_round_trip_seconds": goal(
                fast["backend_round_trip_seconds_10_frames"],
                "<= 1.0",
                fast["backend_round_trip_seconds_10_frames"] <= 1.0,
            ),
        },
    }
    report("proposals", result)


if __name__ == "__main__":
    main()
