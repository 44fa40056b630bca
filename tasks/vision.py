"""Everything that touches OpenCV (``cv2``): the one module of the project that imports it.

Knows nothing of Django. Each section is one use of OpenCV by one pure caller; the callers
(``tasks.tracking`` for tracking) hold the logic and call the few primitives below on numpy
arrays, so the choice of library stays in one place (contract ``external-cv2``).

OpenCV is ``opencv-python-headless``: the main modules without GUI. Its contrib trackers (KCF,
CSRT, MedianFlow) are not in that build; the tracking section gives ``tasks.tracking`` what it
needs to do template matching and pyramidal Lucas-Kanade itself, plus OpenCV's own MIL tracker
as a peer for the benchmark (``bench/assist_tracking.py``).
"""

from __future__ import annotations

import cv2
import numpy as np


def single_thread() -> None:
    """Run OpenCV on the calling core only (the benchmark's "one core"; a web process shares
    its cores with other requests, so the service calls it too)."""
    cv2.setNumThreads(1)


# --- Tracking (tasks.tracking) --------------------------------------------------------------------


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width`` x ``height`` (area averaging when shrinking)."""
    width, height = max(1, int(width)), max(1, int(height))
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width < image.shape[1]
    return cv2.resize(
        image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def pad_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` grown (edge pixels repeated, right and bottom) to at least ``width`` x
    ``height``."""
    bottom = max(0, int(height) - image.shape[0])
    right = max(0, int(width) - image.shape[1])
    if not bottom and not right:
        return image
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REPLICATE)


def match_template(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation (zero mean) of ``template`` at every place in ``image``:
    an array of ``(H - h + 1, W - w + 1)`` scores in -1..1 (flat places score 0, never NaN)."""
    scores = cv2.matchTemplate(
        np.ascontiguousarray(image, dtype=np.uint8),
        np.ascontiguousarray(template, dtype=np.uint8),
        cv2.TM_CCOEFF_NORMED,
    )
    return np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)


def optical_flow(
    previous: np.ndarray, current: np.ndarray, points: np.ndarray, *, window: int = 11
) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade from ``previous`` to ``current`` and back (forward-backward).

    ``points``: (n, 2) float32. Returns the moved points (n, 2) and each point's
    forward-backward error in pixels (inf where either pass lost it).
    """
    pts = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 1, 2)
    n = pts.shape[0]
    if n == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.float64)
    params = {
        "winSize": (window, window),
        "maxLevel": 2,
        "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03),
    }
    moved, ok1, _ = cv2.calcOpticalFlowPyrLK(previous, current, pts, None, **params)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(current, previous, moved, None, **params)
    fb = np.linalg.norm(back.reshape(-1, 2) - pts.reshape(-1, 2), axis=1).astype(np.float64)
    good = (ok1.reshape(-1) == 1) & (ok2.reshape(-1) == 1)
    fb[~good] = np.inf
    return moved.reshape(-1, 2), fb


class MilTracker:
    """OpenCV's MIL tracker (in the main build), a peer measured side by side in the benchmark.

    ``init(frame, (x, y, w, h))`` then ``update(frame) -> (found, (x, y, w, h))``.
    """

    def __init__(self) -> None:
        self._tracker = cv2.TrackerMIL_create()

    def init(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> None:
        x, y, w, h = (round(v) for v in box)
        self._tracker.init(frame, (x, y, max(1, w), max(1, h)))

    def update(self, frame: np.ndarray) -> tuple[bool, tuple[float, float, float, float]]:
        found, (x, y, w, h) = self._tracker.update(frame)
        return bool(found), (float(x), float(y), float(w), float(h))


# --- End of tracking ------------------------------------------------------------------------------
