"""Computer vision on decoded frames: the only module that imports OpenCV (``cv2``).

Takes and returns numpy arrays and plain tuples; knows nothing of Django. Frames come decoded
from ``tasks.video`` (the only importer of PyAV). The import-linter contract ``external-cv2``
keeps ``cv2`` here, as ``external-av`` keeps ``av`` in ``tasks.video``.

Sections (each owned by one feature; keep them apart so branches merge cleanly):

* **tracking** — what ``tasks.tracking`` needs for template matching and pyramidal
  Lucas-Kanade, plus OpenCV's own MIL tracker as a peer for ``bench/assist_tracking.py``
  (the contrib trackers KCF, CSRT, MedianFlow are not in the headless main build);
* **detection** — proposal sources' detectors: moving regions against a median background, and
  OpenCV's shipped HOG people detector (no model download).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

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


# ==== detection ===================================================================================

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def gray(image: np.ndarray) -> np.ndarray:
    """One byte a pixel, as the trackers (``tasks.tracking``) and detectors look at frames."""
    return _gray(image)


def motion_regions(
    images: Sequence[np.ndarray],
    *,
    threshold: int = 25,
    min_area_fraction: float = 0.002,
) -> list[list[tuple[Box, float]]]:
    """Boxes of what differs from the still background, per image: ``[(box, score), ...]``.

    The background is the per-pixel median of ``images`` (the microtask's frames): what moves
    across them is absent from it. Each image's absolute difference from it is thresholded,
    cleaned by a morphological open and close, and every connected region of at least
    ``min_area_fraction`` of the frame becomes a box. The score averages how much of its box the
    region fills (two objects merged into one region fill less) and how strongly it differs
    (a mean difference of 6 x threshold or more counts fully). With fewer
    than 3 images there is no background to speak of: nothing is proposed.
    """
    if len(images) < 3:
        return [[] for _ in images]
    grays = np.stack([cv2.GaussianBlur(_gray(im), (5, 5), 0) for im in images])
    background = np.median(grays, axis=0).astype(np.uint8)
    height, width = background.shape
    min_area = max(4.0, min_area_fraction * width * height)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    out: list[list[tuple[Box, float]]] = []
    for gray in grays:
        diff = cv2.absdiff(gray, background)
        _, mask = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        found = []
        for k in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area < min_area:
                continue
            mean = float(diff[labels == k].mean())
            fill = area / float(w * h)
            score = 0.5 * fill + 0.5 * min(1.0, mean / (6.0 * threshold))
            found.append(((float(x), float(y), float(x + w), float(y + h)), round(score, 4)))
        out.append(found)
    return out


@cache
def _hog() -> cv2.HOGDescriptor:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def people(
    image: np.ndarray, *, min_score: float = 0.3, max_width: int = 960
) -> list[tuple[Box, float]]:
    """People found by OpenCV's default HOG + linear SVM detector (Dalal-Triggs, 64x128 window).

    Frames smaller than the window are upscaled so a person filling the frame can be found, and
    frames wider than ``max_width`` are downscaled (the cost grows with the pixels: a 720p frame
    takes about twice a 960-wide one); boxes come back in the input's pixels. The SVM margin is
    mapped to a score in (0, 1) by a logistic curve (margin 0 → 0.5); detections under
    ``min_score`` are dropped, overlapping ones merged by non-maximum suppression.
    """
    gray = _gray(image)
    height, width = gray.shape
    scale = max(1.0, 128.0 / height, 64.0 / width)
    if scale == 1.0 and width > max_width:
        scale = max_width / width
    if scale != 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)))
    rects, weights = _hog().detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
    if len(rects) == 0:
        return []
    scores = [float(1.0 / (1.0 + np.exp(-float(w)))) for w in np.ravel(weights)]
    boxes = [[int(x), int(y), int(w), int(h)] for x, y, w, h in rects]
    keep = cv2.dnn.NMSBoxes(boxes, scores, min_score, 0.45) if hasattr(cv2, "dnn") else []
    out = []
    for k in np.ravel(keep):
        x, y, w, h = boxes[int(k)]
        box = (x / scale, y / scale, (x + w) / scale, (y + h) / scale)
        out.append((box, round(scores[int(k)], 4)))
    return out


# ==== end of detection ============================================================================
