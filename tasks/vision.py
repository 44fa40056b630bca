"""Computer vision on decoded frames: the only module that imports OpenCV (``cv2``).

Takes and returns numpy arrays and plain tuples; knows nothing of Django. Frames come decoded
from ``tasks.video`` (the only importer of PyAV). The import-linter contract ``external-cv2``
keeps ``cv2`` here, as ``external-av`` keeps ``av`` in ``tasks.video``.

Sections (each owned by one feature; keep them apart so branches merge cleanly):

* **detection** — proposal sources' detectors: moving regions against a median background, and
  OpenCV's shipped HOG people detector (no model download).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np

# ==== detection ===================================================================================

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


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
