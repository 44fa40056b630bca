"""Plain data for boxes on frames, and IoU. Pure numpy: nothing here knows about Django.

A box is ``[x1, y1, x2, y2]`` in pixels (x2 > x1, y2 > y1). One frame's shapes are a
:class:`FrameBoxes` (boxes, class indices and track ids as parallel arrays); one annotation of a
microtask is an :data:`Annotation`, a mapping of frame number to :class:`FrameBoxes`. Frames
absent from the mapping are frames the annotation says nothing about; a present frame with no
boxes says "no objects here".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

NO_ID = -1
NO_LABEL = -1


@dataclass(frozen=True)
class FrameBoxes:
    """The boxes of one frame: ``boxes`` (n, 4) xyxy, ``labels`` (n,) and ``ids`` (n,) ints."""

    boxes: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def make(
        cls,
        boxes: Iterable[Iterable[float]] | np.ndarray = (),
        labels: Iterable[int] | np.ndarray | None = None,
        ids: Iterable[int] | np.ndarray | None = None,
    ) -> FrameBoxes:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = b.shape[0]
        lab = (
            np.full(n, NO_LABEL, dtype=np.int64)
            if labels is None
            else np.asarray(labels, dtype=np.int64).reshape(n)
        )
        ident = (
            np.full(n, NO_ID, dtype=np.int64)
            if ids is None
            else np.asarray(ids, np.int64).reshape(n)
        )
        return cls(b, lab, ident)

    @classmethod
    def empty(cls) -> FrameBoxes:
        return cls.make()

    def take(self, index: np.ndarray) -> FrameBoxes:
        return FrameBoxes(self.boxes[index], self.labels[index], self.ids[index])


Annotation = Mapping[int, FrameBoxes]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4): an (n, m) array."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def annotation_frames(*annotations: Annotation) -> list[int]:
    """The sorted union of the frames the annotations cover."""
    frames: set[int] = set()
    for ann in annotations:
        frames.update(int(f) for f in ann)
    return sorted(frames)


def tracks_of(annotation: Annotation) -> dict[int, dict[int, np.ndarray]]:
    """Regroup a per-frame annotation by track id: ``{track_id: {frame: box}}``."""
    out: dict[int, dict[int, np.ndarray]] = {}
    for frame, fb in annotation.items():
        for i in range(len(fb)):
            out.setdefault(int(fb.ids[i]), {})[int(frame)] = fb.boxes[i]
    return out
