"""Benchmark: tracker-assisted tracks against linear interpolation, and the tracker's speed,
with OpenCV's MIL tracker and a Lucas-Kanade median-flow tracker measured side by side.

1. **Keyframes to reach mean IoU >= 0.8** on generated clips with non-linear motion
   (``tasks.synthetic.make_path_scene``: turns, speed changes, a bar hiding the object, objects
   leaving the picture, coming closer or going away). A simulated worker starts with a keyframe
   on the first frame (and an ``outside`` keyframe where the object has left, in both ways
   alike) and adds a keyframe with the true box at the worst frame until the track's mean IoU
   against the truth (over the frames where the object is in the picture) reaches 0.8. Two
   ways, on the same clips:
   - *linear*: the project's keyframe interpolation (``tasks.interpolation``);
   - *assisted*: between two keyframes the tracker's blended path (``tracking.between``),
     after the last one the forward proposal (``tracking.track``); frames the tracker marks
     lost fall back to what linear interpolation gives there.
   Goal: assisted keyframes <= 0.5 x linear (summed over the clips).
2. **Propagation speed** per object at 1280x720 on one core (``cv2.setNumThreads(1)`` through
   ``tasks.vision.single_thread``): frames per second of ``tracking.track`` on grey frames
   already in memory (the frames are rendered before the clock starts). Goal >= 150 frames/s
   (5x real time at 30 fps). Peers on the same frames: OpenCV's MIL tracker and a median-flow
   tracker (pyramidal Lucas-Kanade on a grid of points, forward-backward filtered), with their
   mean IoU over the frames each tracked (``frames`` of ``frames_tracked_of``: ours stops where
   it marks the object lost, the peers never stop), on a textured object, the same object
   coming closer, and the same object in a flat colour. Also measured, not a goal: the
   service's whole path (``video.decode_span`` of an encoded 720p clip at the tracking width,
   then tracking), frames per second.

The machine is shared with other processes while it runs: speeds are what one core gave under
that load, not a quiet machine's.

The tracking part of ``bench/assist`` (``make bench-assist``, ``bench/results/assist.json``).
Needs no database. Alone: ``.venv/bin/python bench/_assist_tracking.py [--quick]`` prints its
JSON line and writes nothing.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import report  # noqa: E402
from quality.boxes import iou_matrix  # noqa: E402
from tasks import synthetic, tracking, video, vision  # noqa: E402
from tasks.interpolation import interpolate  # noqa: E402

TARGET_IOU = 0.8
GREY = np.array([0.299, 0.587, 0.114], np.float32)


def grey(scene: synthetic.Scene, i: int) -> np.ndarray:
    return (synthetic.render_frame(scene, i).astype(np.float32) @ GREY).astype(np.uint8)


def truth(scene: synthetic.Scene, i: int):
    box = next(b for b in scene.boxes(i) if b.track_id == 0)
    return None if box.outside else np.array([box.x, box.y, box.x + box.w, box.y + box.h], float)


def iou_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each row of ``a`` with the same row of ``b`` (NaN rows score 0)."""
    return np.nan_to_num(np.diagonal(iou_matrix(a, b)).copy())


# --- 1. keyframes to reach the target IoU ------------------------------------------------------


class Clip:
    def __init__(self, scene: synthetic.Scene):
        self.scene = scene
        self.n = scene.frames
        self.frames = [(i, grey(scene, i)) for i in range(self.n)]
        self.truth = [truth(scene, i) for i in range(self.n)]
        self.present = np.array([t is not None for t in self.truth])
        self.true = np.array([t if t is not None else np.full(4, np.nan) for t in self.truth])
        gone = np.flatnonzero(~self.present)
        self.outside = int(gone[0]) if gone.size else None  # the worker's outside keyframe
        self._between: dict[tuple[int, int], dict[int, tracking.Step]] = {}
        self._forward: dict[int, dict[int, tracking.Step]] = {}

    def linear(self, keys: list[int]) -> np.ndarray:
        frames = sorted(keys)
        boxes = [self.truth[k] if self.truth[k] is not None else self.truth[k - 1] for k in frames]
        outside = [k == self.outside for k in frames]
        out, _ = interpolate(
            np.array(frames), np.array(boxes), np.array(outside), np.arange(self.n)
        )
        return out

    def assisted(self, keys: list[int]) -> np.ndarray:
        out = self.linear(keys)  # where the tracker has nothing or is lost
        boxed = sorted(k for k in keys if k != self.outside)
        end = self.outside - 1 if self.outside is not None else self.n - 1
        for a, b in itertools.pairwise(boxed):
            if b - a < 2:
                continue
            if (a, b) not in self._between:
                path = tracking.between(self.frames[a : b + 1], self.truth[a], self.truth[b])
                self._between[a, b] = {s.frame: s for s in path.steps}
            for t, step in self._between[a, b].items():
                if not step.lost:
                    out[t] = step.box
        last = boxed[-1]
        if last < end:
            if last not in self._forward:
                path = tracking.track(self.frames[last : end + 1], self.truth[last])
                self._forward[last] = {s.frame: s for s in path.steps}
            for t, step in self._forward[last].items():
                if not step.lost:
                    out[t] = step.box
        return out

    def keyframes_needed(self, way) -> int:
        keys = [0] + ([self.outside] if self.outside is not None else [])
        while True:
            boxes = way(keys)
            scores = iou_rows(np.nan_to_num(boxes), np.nan_to_num(self.true))[self.present]
            if scores.mean() >= TARGET_IOU:
                return len(keys)
            candidates = np.flatnonzero(self.present)
            worst = candidates[np.argsort(scores)]
            worst = next(int(f) for f in worst if int(f) not in keys)
            keys = sorted([*keys, worst])


def clips(quick: bool) -> list[synthetic.Scene]:
    count = 4 if quick else 16
    out = []
    for seed in range(count):
        out.append(
            synthetic.make_path_scene(
                seed=seed,
                width=640,
                height=360,
                frames=90 if quick else 150,
                speed=4.0 + (seed % 3),
                occlusion=seed % 2 == 0,
                leave_at=(100 if not quick else 70) if seed % 4 == 3 else None,
                distractors=2,
                grow={1: 1.5, 2: 0.7}.get(seed % 4, 1.0),
            )
        )
    return out


def keyframe_study(quick: bool) -> dict:
    per_clip = []
    for scene in clips(quick):
        clip = Clip(scene)
        linear = clip.keyframes_needed(clip.linear)
        assisted = clip.keyframes_needed(clip.assisted)
        per_clip.append({"seed": scene.seed, "linear": linear, "assisted": assisted})
    total_linear = sum(c["linear"] for c in per_clip)
    total_assisted = sum(c["assisted"] for c in per_clip)
    return {
        "clips": len(per_clip),
        "frames_per_clip": clips(quick)[0].frames,
        "keyframes_linear": total_linear,
        "keyframes_assisted": total_assisted,
        "ratio": round(total_assisted / total_linear, 3),
        "per_clip": per_clip,
    }


# --- 2. speed at 720p, with peers -------------------------------------------------------------


class MedianFlow:
    """Peer: a grid of points in the box, pyramidal Lucas-Kanade forward and back, the points
    with under-median forward-backward error vote (median shift, median scale change)."""

    def __init__(self, frame: np.ndarray, box):
        self.prev, self.box = frame, np.asarray(box, float)

    def step(self, frame: np.ndarray):
        x1, y1, x2, y2 = self.box
        gx, gy = np.meshgrid(np.linspace(x1, x2, 10)[1:-1], np.linspace(y1, y2, 10)[1:-1])
        pts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
        moved, fb = vision.optical_flow(self.prev, frame, pts)
        self.prev = frame
        ok = np.isfinite(fb)
        if ok.sum() < 4:
            return tuple(self.box), True
        keep = ok & (fb <= np.median(fb[ok]))
        shift = np.median(moved[keep] - pts[keep], axis=0)
        i, j = np.triu_indices(int(keep.sum()), 1)
        before = np.linalg.norm(pts[keep][i] - pts[keep][j], axis=1)
        after = np.linalg.norm(moved[keep][i] - moved[keep][j], axis=1)
        scale = float(np.median(after[before > 0] / before[before > 0])) if i.size else 1.0
        cx, cy = (x1 + x2) / 2 + shift[0], (y1 + y2) / 2 + shift[1]
        w, h = (x2 - x1) * scale, (y2 - y1) * scale
        self.box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        return tuple(self.box), False


def _timed(run) -> tuple[float, list]:
    start = time.process_time()
    boxes = run()
    return time.process_time() - start, boxes


def _peers(scene: synthetic.Scene) -> dict:
    """Ours, median flow and MIL on the same frames of ``scene``'s object 0: speed and IoU."""
    n = scene.frames
    frames = [(i, grey(scene, i)) for i in range(n)]
    true = np.array([truth(scene, i) for i in range(1, n)])
    box0 = tuple(truth(scene, 0))

    def ours():
        return [s.box for s in tracking.track(frames, box0).steps]

    def mil():
        tracker = vision.MilTracker()
        x1, y1, x2, y2 = box0
        tracker.init(frames[0][1], (x1, y1, x2 - x1, y2 - y1))
        out = []
        for _, frame in frames[1:]:
            _, (x, y, w, h) = tracker.update(frame)
            out.append((x, y, x + w, y + h))
        return out

    def median_flow():
        tracker = MedianFlow(frames[0][1], box0)
        return [tracker.step(frame)[0] for _, frame in frames[1:]]

    figures = {}
    for name, run in (("ours", ours), ("median_flow", median_flow), ("mil", mil)):
        seconds, boxes = _timed(run)
        done = len(boxes)
        # Boxes clipped to the picture, as the service clips them (the truth is clipped).
        shown = np.array(boxes, float).reshape(-1, 4)
        shown[:, 0::2] = np.clip(shown[:, 0::2], 0, scene.width)
        shown[:, 1::2] = np.clip(shown[:, 1::2], 0, scene.height)
        ious = iou_rows(shown, true[:done]) if done else np.zeros(1)
        figures[name] = {
            "frames": done,
            "cpu_seconds": round(seconds, 4),
            "frames_per_second": round(done / seconds, 1) if seconds else None,
            "mean_iou": round(float(ious.mean()), 3),
            "frames_tracked_of": n - 1,
        }
    return figures


def speed_study(quick: bool) -> dict:
    """At 1280x720, peers side by side: a textured object (the speed goal), the same object
    coming closer (x1.4 over the clip), and the same object in one flat colour (no texture
    inside it, like the flat parts of many real objects: optical flow has only its edges)."""
    vision.single_thread()
    n = 120 if quick else 300
    shape = {"seed": 11, "width": 1280, "height": 720, "frames": n, "speed": 8.0}
    scene = synthetic.make_path_scene(**shape, occlusion=False, distractors=3)
    grown = synthetic.make_path_scene(**shape, occlusion=False, distractors=3, grow=1.4)
    flat = replace(scene, tracks=(replace(scene.tracks[0], texture=0), *scene.tracks[1:]))
    return {
        "textured": _peers(scene),
        "textured_coming_closer": _peers(grown),
        "flat_object": _peers(flat),
        "service_path": _service_path(scene),
    }


def _service_path(scene: synthetic.Scene) -> dict:
    """Decoding the span at the tracking width (640) from an encoded 720p clip, then tracking."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "clip.mp4")
        video.write_video(scene, path, gop=60)
        first, last = 30, scene.frames - 1
        box0 = truth(scene, first) / 2.0  # 1280 -> 640
        start = time.process_time()
        decoded = video.decode_span(path, first=first, last=last, analysis_width=640)
        steps = tracking.track(((f.index, f.gray) for f in decoded), tuple(box0)).steps
        seconds = time.process_time() - start
    return {
        "frames": len(steps),
        "cpu_seconds": round(seconds, 4),
        "frames_per_second": round(len(steps) / seconds, 1) if seconds else None,
    }


def run(quick: bool = False) -> dict:
    keyframes = keyframe_study(quick)
    speed = speed_study(quick)
    fps = speed["textured"]["ours"]["frames_per_second"]
    return {
        "figures": {"keyframes": keyframes, "speed_720p": speed},
        "goals": {
            "assisted_keyframes_vs_linear": {
                "value": keyframes["ratio"],
                "goal": "≤ 0.5",
                "met": keyframes["ratio"] <= 0.5,
            },
            "propagation_frames_per_second_720p_one_core": {
                "value": fps,
                "goal": "≥ 150",
                "met": fps is not None and fps >= 150,
            },
        },
        "quick": quick,
        "note": "speeds are CPU seconds of one core on a machine shared with other processes",
    }


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    report("assist_tracking", run(quick=quick), write=False)
