"""Known truth for the quality tests: per-frame boxes of objects moving in straight lines.

Stand-in until ``tasks.synthetic`` (the shared scene generator) is on main.
"""

from __future__ import annotations

import numpy as np

from quality.boxes import FrameBoxes

FRAME_SIZE = (640, 360)


def moving_objects(
    *,
    n_objects: int = 5,
    n_frames: int = 30,
    seed: int = 0,
    n_classes: int = 2,
    frame_size: tuple[int, int] = FRAME_SIZE,
    first_frame: int = 0,
) -> dict[int, FrameBoxes]:
    rng = np.random.default_rng(seed)
    width, height = frame_size
    bw = rng.uniform(0.06, 0.25, n_objects) * width
    bh = rng.uniform(0.08, 0.3, n_objects) * height
    x0 = rng.uniform(0, width - bw)
    y0 = rng.uniform(0, height - bh)
    vx = rng.uniform(-3, 3, n_objects)
    vy = rng.uniform(-2, 2, n_objects)
    labels = rng.integers(0, n_classes, n_objects)
    out = {}
    for k in range(n_frames):
        x = np.clip(x0 + vx * k, 0, width - bw)
        y = np.clip(y0 + vy * k, 0, height - bh)
        boxes = np.stack([x, y, x + bw, y + bh], axis=1)
        out[first_frame + k] = FrameBoxes(boxes, labels.copy(), np.arange(n_objects))
    return out
