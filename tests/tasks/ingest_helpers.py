"""Helpers of the ingestion tests: real synthetic videos on disk, uploads through the API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from tasks import video
from tasks.synthetic import Scene, make_scene


@dataclass
class Clip:
    path: Path
    scene: Scene
    written: video.WrittenVideo

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def make_clip(
    folder: Path,
    *,
    name: str = "clip.mp4",
    codec: str = "libx264",
    frames: int = 60,
    width: int = 160,
    height: int = 120,
    shot_cuts: tuple[int, ...] = (),
    vfr: bool = False,
    seed: int = 1,
    n_objects: int = 3,
    motion: float = 2.0,
    fps: float = 30.0,
) -> Clip:
    scene = make_scene(
        seed=seed,
        width=width,
        height=height,
        frames=frames,
        n_objects=n_objects,
        motion=motion,
        classes=("car", "person"),
        shot_cuts=shot_cuts,
    )
    path = folder / name
    written = video.write_video(scene, str(path), codec=codec, vfr=vfr, fps=fps)
    return Clip(path, scene, written)


def upload(client, job_id: int, *files: tuple[str, bytes]):
    payload = {"file": [SimpleUploadedFile(name, data) for name, data in files]}
    return client.post(f"/api/jobs/{job_id}/videos/", payload, format="multipart")


def stored_files(prefix: str) -> set[str]:
    try:
        _, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return set()
    return {f"{prefix}/{f}" for f in files}


def all_stored(root: str = "") -> set[str]:
    """Every file under ``root`` in default storage (recursive)."""
    out: set[str] = set()
    try:
        dirs, files = default_storage.listdir(root)
    except FileNotFoundError:
        return out
    out |= {f"{root}/{f}".lstrip("/") for f in files}
    for d in dirs:
        out |= all_stored(f"{root}/{d}".lstrip("/"))
    return out
