"""Scoring an annotation against a known answer (pure numpy/scipy; knows nothing of Django).

Used by qualification tests until the quality module's gold scoring replaces it: per frame, boxes
are matched one-to-one (Hungarian, on IoU) and a match counts when IoU ≥ the threshold; the score
is the F1 over all frames, ``2·TP / (predicted + true)``, 1.0 when both are empty. Polygons are
compared by their bounding boxes; classifications by accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), as ``[x1, y1, x2, y2]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def matched_count(pred: np.ndarray, truth: np.ndarray, threshold: float) -> int:
    """Boxes of ``pred`` matched one-to-one to ``truth`` with IoU ≥ ``threshold``."""
    if len(pred) == 0 or len(truth) == 0:
        return 0
    iou = iou_matrix(pred, truth)
    rows, cols = linear_sum_assignment(-iou)
    return int(np.count_nonzero(iou[rows, cols] >= threshold))


def _box_of(shape: Mapping[str, Any]) -> list[float] | None:
    if "box" in shape:
        return list(shape["box"])
    if "points" in shape:
        pts = np.asarray(shape["points"], dtype=np.float64)
        return [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]
    return None


def frames_score(
    pred: Mapping[str, Sequence[Mapping[str, Any]]],
    truth: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    threshold: float,
) -> float:
    """F1 of per-frame shapes (``{"<frame>": [shape]}``), a match needing the same label too."""
    tp = n_pred = n_truth = 0
    for frame in set(pred) | set(truth):
        p, t = list(pred.get(frame, [])), list(truth.get(frame, []))
        n_pred += len(p)
        n_truth += len(t)
        labels = {s.get("label") for s in p} | {s.get("label") for s in t}
        for label in labels:
            pl = [_box_of(s) for s in p if s.get("label") == label]
            tl = [_box_of(s) for s in t if s.get("label") == label]
            if pl and pl[0] is None:  # classification: one label per frame
                tp += min(len(pl), len(tl))
                continue
            tp += matched_count(np.array(pl), np.array(tl), threshold)
    if n_pred + n_truth == 0:
        return 1.0
    return 2.0 * tp / (n_pred + n_truth)
