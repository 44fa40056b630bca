"""Known truth for the quality tests, from the shared synthetic scenes (``tasks.synthetic``)."""

from __future__ import annotations

from quality.boxes import FrameBoxes
from quality.simulator import scene_truth
from tasks.synthetic import make_scene

FRAME_SIZE = (640, 360)
CLASSES = ("car", "person")


def moving_objects(
    *,
    n_objects: int = 5,
    n_frames: int = 30,
    seed: int = 0,
    first_frame: int = 0,
    motion: float = 2.0,
) -> dict[int, FrameBoxes]:
    """Truth boxes of frames ``first_frame .. first_frame + n_frames - 1`` of a generated scene."""
    scene = make_scene(
        seed=seed,
        width=FRAME_SIZE[0],
        height=FRAME_SIZE[1],
        frames=first_frame + n_frames,
        n_objects=n_objects,
        motion=motion,
        classes=CLASSES,
    )
    return scene_truth(scene, range(first_frame, first_frame + n_frames), CLASSES)
