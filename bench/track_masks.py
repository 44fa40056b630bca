"""Benchmark: consensus of a track job's keyframe masks (``quality.masks.track_mask_consensus``)
against SimpleITK's STAPLE on the same masks, and against the best single worker.

Generated 1280x720 clips (``bench/masks.make_clip``'s irregular blobs; each of the three classes
is one tracked object here), keyframes every ``STEP`` frames; a simulated crowd of 5 workers of
``bench/masks.RATERS`` (sloppy edges, over- and under-painting, missed parts, a spammer) paints
each object's mask on each keyframe, which is stored as the payload stores it (RLE on the
keyframe's track shape). The association of the workers' tracks with the consensus tracks is
given (the track consensus's own job, measured by ``bench/consensus``): this measures the
masks. Per (keyframe, object) stack of 5 masks:

- ours: ``track_mask_consensus`` with ``vote`` and ``staple`` — the production path, RLE
  decoding and encoding of every mask included;
- SimpleITK's ``STAPLE`` filter on the decoded masks (images built before its clock starts),
  its probability thresholded at 0.5;
- each single worker, as is.

Goals: Dice against the truth (pooled) of ours (STAPLE) ≥ SimpleITK STAPLE's and > the best
single worker's; CPU time ≤ 0.2x SimpleITK STAPLE's, the issue's goal for masks (ours decodes
and encodes RLE, SimpleITK is handed arrays). The machine is shared with other sessions: CPU time
is compared, wall time reported.

Run: ``make bench-track_masks`` (or ``.venv/bin/python bench/track_masks.py [--quick]``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from bench._common import report  # noqa: E402
from bench.masks import CLASSES, RATERS, make_clip, rater_mask  # noqa: E402
from quality import masks as qm  # noqa: E402
from tasks import rle  # noqa: E402

STEP = 10


def _timed(fn, *args, **kw):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kw)
    return out, time.process_time() - c0, time.perf_counter() - w0


def run(quick: bool = False, seed: int = 20261203) -> dict:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    rng = np.random.default_rng(seed)
    clips, keyframes = (1, 2) if quick else (3, 4)
    methods = ("ours_staple", "ours_vote", "simpleitk_staple")
    inter = dict.fromkeys(methods + RATERS, 0)
    total = dict.fromkeys(methods + RATERS, 0)
    cpu = dict.fromkeys(methods, 0.0)
    wall = dict.fromkeys(methods, 0.0)
    stacks = 0
    for _ in range(clips):
        truths = make_clip(rng, keyframes)  # one frame per keyframe
        # Rater r's track of object k has id 10 * r + k; consensus identity k.
        raters = [{} for _ in RATERS]
        consensus: dict[str, list[dict]] = {}
        painted: dict[tuple[str, int], list[np.ndarray]] = {}
        for i, truth_by_class in enumerate(truths):
            key = str(i * STEP)
            consensus[key] = [
                {"track": k, "label": c, "box": [0, 0, 1, 1]} for k, c in enumerate(CLASSES)
            ]
            for r, kind in enumerate(RATERS):
                shapes = []
                for k, c in enumerate(CLASSES):
                    m = rater_mask(kind, truth_by_class[c], rng)
                    painted.setdefault((key, k), []).append(m)
                    if m.any():
                        shapes.append(
                            {"track": 10 * r + k, "label": c, "box": [0, 0, 1, 1]}
                            | {"rle": rle.encode(m)}
                        )
                raters[r][key] = shapes
        association = {(r, 10 * r + k): k for r in range(len(RATERS)) for k in range(len(CLASSES))}
        out = {}
        for name, method in (("ours_staple", "staple"), ("ours_vote", "vote")):
            fused, cpu_s, wall_s = _timed(
                qm.track_mask_consensus,
                raters,
                [1.0] * len(RATERS),
                association,
                consensus,
                method=method,
            )
            cpu[name] += cpu_s
            wall[name] += wall_s
            out[name] = {
                (key, s["track"]): rle.decode(s["rle"]) if s.get("rle") else None
                for key, shapes in fused.frames.items()
                for s in shapes
            }
        for i, truth_by_class in enumerate(truths):
            key = str(i * STEP)
            for k, c in enumerate(CLASSES):
                truth = truth_by_class[c]
                stack = painted[(key, k)]
                images = [sitk.GetImageFromArray(m.astype(np.uint8)) for m in stack]
                prob, cpu_s, wall_s = _timed(sitk.STAPLE, images, 1.0)
                cpu["simpleitk_staple"] += cpu_s
                wall["simpleitk_staple"] += wall_s
                stacks += 1
                got = {
                    "simpleitk_staple": sitk.GetArrayFromImage(prob) > 0.5,
                    **{
                        name: out[name][(key, k)]
                        if out[name][(key, k)] is not None
                        else np.zeros_like(truth)
                        for name in ("ours_staple", "ours_vote")
                    },
                    **dict(zip(RATERS, stack, strict=True)),
                }
                for name, m in got.items():
                    inter[name] += int(np.count_nonzero(m & truth))
                    total[name] += int(np.count_nonzero(m) + np.count_nonzero(truth))
    dice = {k: round(2 * inter[k] / total[k], 4) if total[k] else 1.0 for k in inter}
    best = max(RATERS, key=lambda k: dice[k])
    ratio = cpu["ours_staple"] / cpu["simpleitk_staple"] if cpu["simpleitk_staple"] else 0.0
    figures = {
        "frame_size": [720, 1280],
        "clips": clips,
        "keyframes_per_clip": keyframes,
        "objects": len(CLASSES),
        "raters": list(RATERS),
        "stacks": stacks,
        "dice_pooled": dice,
        "best_single_worker": best,
        "cpu_seconds": {k: round(v, 4) for k, v in cpu.items()},
        "wall_seconds": {k: round(v, 4) for k, v in wall.items()},
        "ms_per_stack_cpu": {k: round(1000 * v / max(stacks, 1), 2) for k, v in cpu.items()},
        "cpu_count": os.cpu_count(),
        "note": "machine shared with other sessions; CPU time compared, wall time reported; "
        "ours includes RLE decoding and encoding, SimpleITK is handed arrays",
    }
    goals = {
        "track_masks_dice_vs_simpleitk_staple": {
            "value": dice["ours_staple"],
            "goal": f"≥ {dice['simpleitk_staple']} (SimpleITK STAPLE)",
            "met": dice["ours_staple"] >= dice["simpleitk_staple"],
        },
        "track_masks_dice_vs_best_single_worker": {
            "value": dice["ours_staple"],
            "goal": f"> {dice[best]} ({best})",
            "met": dice["ours_staple"] > dice[best],
        },
        "track_masks_time_vs_simpleitk_staple": {
            "value": round(ratio, 4),
            "goal": "≤ 0.2",
            "met": ratio <= 0.2,
        },
    }
    return {"figures": figures, "goals": goals}


def main() -> dict:
    quick = "--quick" in sys.argv
    started = time.perf_counter()
    part = run(quick)
    result = {
        "goals": part["goals"],
        "track_masks": part["figures"],
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report("track_masks", result, write=not quick)
    return result


if __name__ == "__main__":
    main()
