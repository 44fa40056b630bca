"""Synthetic videos with known truth: moving, occluding, entering and leaving shapes.

Pure numpy; knows nothing of Django and does not import ``av`` (``tasks.video.write_video``
encodes a scene to a file). Used by the ingestion tests, the quality tests, the demo and the
benchmarks, so the API is small and stable:

>>> scene = make_scene(seed=1, width=160, height=120, frames=60, n_objects=3, motion=2.0,
...                    classes=("car", "person"), shot_cuts=(30,))
>>> image = render_frame(scene, 0)          # (120, 160, 3) uint8, RGB
>>> boxes = scene.boxes(10)                 # truth of frame 10, one Box per object of its shot
>>> scene.shots                             # ((0, 29), (30, 59))

Truth conventions (what an ideal annotator would draw):

- Frames are numbered from 0 in presentation order, like the ingestion pipeline numbers them.
- Every shot has its own objects (a cut changes the scene, so track ids never cross a cut).
  ``Scene.boxes(i)`` returns one :class:`Box` per object of frame ``i``'s shot, including objects
  that are currently outside the picture (``outside=True``, zero-size box).
- ``x, y, w, h`` are integer pixels of the tight box around the object's pixels inside the
  frame (clipped to the frame; occlusion by other objects does not shrink it).
- ``visibility`` is the fraction of the object's in-frame pixels not hidden by objects in front
  of it (higher ``z``); ``occluded`` is ``visibility < 1``.
- Even-numbered objects of a shot bounce inside the frame; odd-numbered ones cross it (they enter
  from one side and leave through the other), so entering, leaving and occlusion all happen.

``motion`` is the mean object speed in pixels per frame (0 makes a still scene: every object
stays inside, unmoving).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import numpy as np

SHAPES = ("rect", "ellipse")


@dataclass(frozen=True)
class Track:
    """One object: its class, look and straight-line (or bouncing) motion within one shot."""

    track_id: int
    cls: str
    shape: str
    color: tuple[int, int, int]
    w: int
    h: int
    x0: float
    y0: float
    vx: float
    vy: float
    start: int  # first frame of its shot
    end: int  # last frame of its shot (inclusive)
    bounce: bool
    z: int  # drawing order: higher is in front
    # Non-linear motion: the top-left corner on every frame of the shot (empty: straight or
    # bouncing motion from x0, y0, vx, vy). See ``make_path_scene``.
    path: tuple[tuple[float, float], ...] = ()
    # A seed for a fixed texture painted on the object (0: flat colour), so a tracker sees
    # something inside it as on real objects.
    texture: int = 0
    # Its (w, h) on every frame of the shot when it grows or shrinks (empty: always w, h).
    sizes: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Box:
    """The true box of one object in one frame."""

    track_id: int
    cls: str
    x: int
    y: int
    w: int
    h: int
    visibility: float
    outside: bool
    occluded: bool

    def as_dict(self) -> dict:
        return {
            "track_id": self.track_id,
            "class": self.cls,
            "x": self.x,
            "y": self.y,
            "w": self.w,
            "h": self.h,
            "visibility": self.visibility,
            "outside": self.outside,
            "occluded": self.occluded,
        }


@dataclass(frozen=True)
class Background:
    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    patches: tuple[tuple[int, int, int, int, int, int, int], ...]  # x, y, w, h, r, g, b


@dataclass
class Scene:
    """A generated scene: size, length, shot cuts and every object's motion."""

    seed: int
    width: int
    height: int
    frames: int
    classes: tuple[str, ...]
    shot_cuts: tuple[int, ...]
    tracks: tuple[Track, ...]
    backgrounds: tuple[Background, ...]
    _bg_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def shots(self) -> tuple[tuple[int, int], ...]:
        """(first, last) frame of every shot, inclusive."""
        starts = (0, *self.shot_cuts)
        ends = (*(c - 1 for c in self.shot_cuts), self.frames - 1)
        return tuple(zip(starts, ends, strict=True))

    def shot_of(self, i: int) -> int:
        return int(np.searchsorted(np.asarray(self.shot_cuts, dtype=np.int64), i, side="right"))

    def tracks_in_frame(self, i: int) -> list[Track]:
        return [t for t in self.tracks if t.start <= i <= t.end]

    def position(self, track: Track, i: int) -> tuple[int, int]:
        """Integer top-left corner of ``track`` in frame ``i`` (may lie outside the frame)."""
        t = i - track.start
        if track.path:
            x, y = track.path[min(max(t, 0), len(track.path) - 1)]
            return int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        x = track.x0 + track.vx * t
        y = track.y0 + track.vy * t
        if track.bounce:
            x = _reflect(x, self.width - track.w)
            y = _reflect(y, self.height - track.h)
        return int(np.floor(x + 0.5)), int(np.floor(y + 0.5))

    def size(self, track: Track, i: int) -> tuple[int, int]:
        """(w, h) of ``track`` in frame ``i``."""
        if track.sizes:
            return track.sizes[min(max(i - track.start, 0), len(track.sizes) - 1)]
        return track.w, track.h

    def masks(self, i: int) -> dict[int, np.ndarray]:
        """The visible pixels of each object on frame ``i`` (occlusion applied), by track id."""
        labels = self._label_map(i, list(self.tracks))
        return {
            t.track_id: labels == t.track_id for t in self.tracks if (labels == t.track_id).any()
        }

    def boxes(self, i: int) -> list[Box]:
        """The truth of frame ``i``: one box per object of its shot, in track-id order."""
        self._check_frame(i)
        tracks = self.tracks_in_frame(i)
        labels = self._label_map(i, tracks)
        out = []
        for track in tracks:
            clip = self._clipped(track, i)
            if clip is None:
                out.append(Box(track.track_id, track.cls, 0, 0, 0, 0, 0.0, True, False))
                continue
            x1, y1, x2, y2 = clip
            shape = _shape_mask(track, self.position(track, i), clip, self.size(track, i))
            total = int(shape.sum())
            if total == 0:
                out.append(Box(track.track_id, track.cls, 0, 0, 0, 0, 0.0, True, False))
                continue
            seen = int((labels[y1:y2, x1:x2][shape] == track.track_id).sum())
            visibility = round(seen / total, 4)
            # The tight box of the object's in-frame pixels (an ellipse cut by the frame edge
            # does not fill its clipped rectangle).
            rows = np.flatnonzero(shape.any(axis=1))
            cols = np.flatnonzero(shape.any(axis=0))
            bx, by = x1 + int(cols[0]), y1 + int(rows[0])
            bw, bh = int(cols[-1] - cols[0]) + 1, int(rows[-1] - rows[0]) + 1
            out.append(
                Box(track.track_id, track.cls, bx, by, bw, bh, visibility, False, visibility < 1.0)
            )
        return out

    def _check_frame(self, i: int) -> None:
        if not 0 <= i < self.frames:
            raise IndexError(f"frame {i} is outside 0..{self.frames - 1}")

    def _clipped(self, track: Track, i: int) -> tuple[int, int, int, int] | None:
        x, y = self.position(track, i)
        x1, y1 = max(0, x), max(0, y)
        w, h = self.size(track, i)
        x2, y2 = min(self.width, x + w), min(self.height, y + h)
        if x2 <= x1 or y2 <= y1:
            return None
        return x1, y1, x2, y2

    def _label_map(self, i: int, tracks: list[Track]) -> np.ndarray:
        labels = np.full((self.height, self.width), -1, dtype=np.int32)
        for track in sorted(tracks, key=lambda t: t.z):
            clip = self._clipped(track, i)
            if clip is None:
                continue
            x1, y1, x2, y2 = clip
            shape = _shape_mask(track, self.position(track, i), clip, self.size(track, i))
            labels[y1:y2, x1:x2][shape] = track.track_id
        return labels

    def background(self, shot: int) -> np.ndarray:
        cached = self._bg_cache.get(shot)
        if cached is None:
            cached = _render_background(self.backgrounds[shot], self.width, self.height)
            self._bg_cache.clear()  # one shot at a time: memory stays flat on long scenes
            self._bg_cache[shot] = cached
        return cached


def _reflect(p: float, span: float) -> float:
    """Bounce ``p`` between 0 and ``span`` (a triangle wave)."""
    if span <= 0:
        return 0.0
    period = 2.0 * span
    q = p % period
    return q if q <= span else period - q


def _shape_mask(
    track: Track, pos: tuple[int, int], clip: tuple[int, int, int, int], size: tuple[int, int]
) -> np.ndarray:
    """Boolean mask of the object's pixels inside ``clip`` (x1, y1, x2, y2), at ``size``."""
    x1, y1, x2, y2 = clip
    if track.shape == "rect":
        return np.ones((y2 - y1, x2 - x1), dtype=bool)
    x, y = pos
    w, h = size
    cx, cy = x + w / 2.0, y + h / 2.0
    ys = (np.arange(y1, y2) + 0.5 - cy) / (h / 2.0)
    xs = (np.arange(x1, x2) + 0.5 - cx) / (w / 2.0)
    mask = ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0
    return mask


def _render_background(bg: Background, width: int, height: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    top = np.asarray(bg.top, dtype=np.float32)
    bottom = np.asarray(bg.bottom, dtype=np.float32)
    column = (top[None, :] * (1 - t) + bottom[None, :] * t).astype(np.uint8)  # (H, 3)
    image = np.repeat(column[:, None, :], width, axis=1)
    for x, y, w, h, r, g, b in bg.patches:
        image[y : y + h, x : x + w] = (r, g, b)
    return image


def render_frame(scene: Scene, i: int) -> np.ndarray:
    """Frame ``i`` of ``scene`` as an (H, W, 3) uint8 RGB array."""
    scene._check_frame(i)
    image = scene.background(scene.shot_of(i)).copy()
    for track in sorted(scene.tracks_in_frame(i), key=lambda t: t.z):
        clip = scene._clipped(track, i)
        if clip is None:
            continue
        x1, y1, x2, y2 = clip
        pos = scene.position(track, i)
        size = scene.size(track, i)
        shape = _shape_mask(track, pos, clip, size)
        if track.texture:
            pattern = _texture(track.texture, track.w, track.h, track.color)
            if size != (track.w, track.h):  # the same pattern, grown or shrunk with the object
                rows = np.arange(size[1]) * track.h // size[1]
                cols = np.arange(size[0]) * track.w // size[0]
                pattern = pattern[rows][:, cols]
            ox, oy = x1 - pos[0], y1 - pos[1]
            image[y1:y2, x1:x2][shape] = pattern[oy : oy + y2 - y1, ox : ox + x2 - x1][shape]
        else:
            image[y1:y2, x1:x2][shape] = track.color
    return image


@functools.lru_cache(maxsize=64)
def _texture(seed: int, w: int, h: int, color: tuple[int, int, int]) -> np.ndarray:
    """A fixed (h, w, 3) pattern around ``color``: coarse blocks of lighter and darker shades."""
    rng = np.random.default_rng(seed)
    cell = max(2, min(w, h) // 6)
    blocks = rng.integers(-70, 71, size=(h // cell + 1, w // cell + 1, 1))
    shade = np.repeat(np.repeat(blocks, cell, axis=0), cell, axis=1)[:h, :w]
    return np.clip(np.asarray(color)[None, None, :] + shade, 0, 255).astype(np.uint8)


def iter_frames(scene: Scene):
    """Every frame of ``scene`` in order (a generator: one frame in memory at a time)."""
    for i in range(scene.frames):
        yield render_frame(scene, i)


# Shot backgrounds alternate between dark and bright palettes so that a cut changes the picture's
# brightness distribution a lot (what a histogram shot detector looks for).
_DARK = ((20, 24, 40), (40, 20, 20), (16, 40, 24), (36, 36, 36))
_BRIGHT = ((220, 210, 170), (170, 210, 230), (230, 190, 200), (200, 230, 190))


def make_scene(
    *,
    seed: int,
    width: int,
    height: int,
    frames: int,
    n_objects: int,
    motion: float,
    classes: tuple[str, ...] | list[str] = ("object",),
    shot_cuts: tuple[int, ...] | list[int] = (),
    clutter: int = 6,
) -> Scene:
    """Generate a scene deterministically from ``seed``.

    ``shot_cuts`` are the first frames of the shots after the first (each in ``1..frames-1``,
    increasing). ``n_objects`` objects appear in every shot; ``clutter`` is the number of static
    patches painted on each shot's background.
    """
    if width < 8 or height < 8:
        raise ValueError("a scene needs at least 8x8 pixels")
    if frames < 1:
        raise ValueError("a scene needs at least one frame")
    if n_objects < 0 or motion < 0:
        raise ValueError("n_objects and motion must not be negative")
    classes = tuple(classes)
    if not classes:
        raise ValueError("name at least one class")
    cuts = tuple(int(c) for c in shot_cuts)
    if any(not 0 < c < frames for c in cuts) or list(cuts) != sorted(set(cuts)):
        raise ValueError("shot_cuts must be increasing frame numbers inside the scene")

    rng = np.random.default_rng(seed)
    starts = (0, *cuts)
    ends = (*(c - 1 for c in cuts), frames - 1)
    backgrounds = []
    tracks: list[Track] = []
    next_id = 0
    for shot, (start, end) in enumerate(zip(starts, ends, strict=True)):
        palette = _DARK if shot % 2 == 0 else _BRIGHT
        top = palette[int(rng.integers(len(palette)))]
        bottom = tuple(int(min(255, max(0, c + rng.integers(-15, 16)))) for c in top)
        patches = []
        for _ in range(clutter):
            pw = int(rng.integers(max(2, width // 20), max(3, width // 6)))
            ph = int(rng.integers(max(2, height // 20), max(3, height // 6)))
            px = int(rng.integers(0, max(1, width - pw)))
            py = int(rng.integers(0, max(1, height - ph)))
            shade = tuple(int(min(255, max(0, c + rng.integers(-40, 41)))) for c in top)
            patches.append((px, py, pw, ph, *shade))
        backgrounds.append(Background(top, bottom, tuple(patches)))

        length = end - start + 1
        for k in range(n_objects):
            w = int(rng.integers(max(4, width // 10), max(5, width // 4)))
            h = int(rng.integers(max(4, height // 10), max(5, height // 4)))
            color = tuple(int(c) for c in rng.integers(60, 256, size=3))
            if shot % 2 == 1:  # bright background: darker objects
                color = tuple(c // 3 for c in color)
            speed = motion * float(rng.uniform(0.5, 1.5))
            angle = float(rng.uniform(0, 2 * np.pi))
            crossing = k % 2 == 1 and motion > 0
            if crossing:
                # Enter from the left or right edge a little after the shot starts, cross, leave.
                direction = 1.0 if rng.random() < 0.5 else -1.0
                travel = width + w
                vx = direction * max(speed, travel / max(1.0, 0.8 * length))
                delay = float(rng.uniform(0, 0.1 * length))
                x0 = (-w - abs(vx) * delay) if direction > 0 else (width + abs(vx) * delay)
                y0 = float(rng.uniform(0, max(1, height - h)))
                vy = float(rng.uniform(-0.2, 0.2)) * abs(vx)
            else:
                vx, vy = speed * np.cos(angle), speed * np.sin(angle)
                x0 = float(rng.uniform(0, max(1, width - w)))
                y0 = float(rng.uniform(0, max(1, height - h)))
            tracks.append(
                Track(
                    track_id=next_id,
                    cls=classes[k % len(classes)],
                    shape=SHAPES[k % len(SHAPES)],
                    color=color,
                    w=w,
                    h=h,
                    x0=x0,
                    y0=y0,
                    vx=float(vx),
                    vy=float(vy),
                    start=start,
                    end=end,
                    bounce=not crossing,
                    z=int(rng.integers(0, 1000)) * 1000 + k,
                )
            )
            next_id += 1
    return Scene(
        seed=seed,
        width=width,
        height=height,
        frames=frames,
        classes=classes,
        shot_cuts=cuts,
        tracks=tuple(tracks),
        backgrounds=tuple(backgrounds),
    )


def _wander(
    rng: np.random.Generator, frames: int, width: int, height: int, w: int, h: int, speed: float
) -> list[tuple[float, float]]:
    """A top-left path that turns and changes speed, kept inside the picture (a wall turns it)."""
    x = float(rng.uniform(0.2, 0.6) * (width - w))
    y = float(rng.uniform(0.2, 0.6) * (height - h))
    heading = float(rng.uniform(0, 2 * math.pi))
    turn_period = float(rng.uniform(25, 50))
    speed_period = float(rng.uniform(30, 70))
    phase = float(rng.uniform(0, 2 * math.pi))
    out = []
    for t in range(frames):
        out.append((x, y))
        # Turns: the heading swings (up to ~70 degrees each way) and drifts.
        heading += 0.06 * math.sin(2 * math.pi * t / turn_period + phase) + 0.01
        # Speed changes: between 0.2x and 1.8x the mean.
        v = speed * (1.0 + 0.8 * math.sin(2 * math.pi * t / speed_period))
        nx, ny = x + v * math.cos(heading), y + v * math.sin(heading)
        if not 0 <= nx <= width - w:
            heading = math.pi - heading
            nx = min(max(nx, 0.0), float(width - w))
        if not 0 <= ny <= height - h:
            heading = -heading
            ny = min(max(ny, 0.0), float(height - h))
        x, y = nx, ny
    return out


def make_path_scene(
    *,
    seed: int,
    width: int = 320,
    height: int = 240,
    frames: int = 90,
    speed: float = 3.0,
    occlusion: bool = True,
    leave_at: int | None = None,
    distractors: int = 1,
    clutter: int = 6,
    grow: float = 1.0,
) -> Scene:
    """One shot whose object 0 (textured) moves non-linearly: it turns and changes speed.

    With ``grow`` != 1 it also grows (or shrinks) steadily to ``grow`` times its size by the
    last frame, about its centre (coming closer, going away).
    With ``occlusion``, a bar (object 1, in front) crosses object 0 around the middle frame,
    hiding it for a few frames. With ``leave_at``, object 0 heads straight out of the picture
    from that frame on (it is ``outside`` once gone). ``distractors`` more objects bounce about
    behind it. Deterministic from ``seed``; truth is ``Scene.boxes`` as for ``make_scene``.
    """
    base = make_scene(
        seed=seed,
        width=width,
        height=height,
        frames=frames,
        n_objects=distractors,
        motion=max(0.5, speed / 2),
        clutter=clutter,
    )
    rng = np.random.default_rng(seed + 7919)
    w = int(rng.integers(max(8, width // 10), max(9, width // 6)))
    h = int(rng.integers(max(8, height // 10), max(9, height // 6)))
    path = _wander(rng, frames, width, height, w, h, speed)
    if leave_at is not None and 0 < leave_at < frames:
        x, y = path[leave_at]
        vx = speed * 1.5 if x + w / 2 > width / 2 else -speed * 1.5
        path = path[:leave_at] + [(x + vx * (t - leave_at), y) for t in range(leave_at, frames)]
    color = tuple(int(c) for c in rng.integers(120, 230, size=3))
    sizes: tuple[tuple[int, int], ...] = ()
    if grow != 1.0:
        factors = [1.0 + (grow - 1.0) * t / max(1, frames - 1) for t in range(frames)]
        sizes = tuple((max(2, round(w * g)), max(2, round(h * g))) for g in factors)
        path = [
            (x - (sw - w) / 2, y - (sh - h) / 2)
            for (x, y), (sw, sh) in zip(path, sizes, strict=True)
        ]
    target = Track(
        track_id=0,
        cls="object",
        shape="rect",
        color=color,
        w=w,
        h=h,
        x0=path[0][0],
        y0=path[0][1],
        vx=0.0,
        vy=0.0,
        start=0,
        end=frames - 1,
        bounce=False,
        z=10_000_000,
        path=tuple(path),
        texture=seed + 1,
        sizes=sizes,
    )
    tracks = [target]
    if occlusion:
        middle = frames // 2
        cx, cy = path[middle][0] + w / 2, path[middle][1] + h / 2
        bw, bh = w + 6, min(height, 3 * h)
        bvx = 2.0 * speed
        x0 = cx - bw / 2 - bvx * middle
        y0 = min(max(0.0, cy - bh / 2), float(height - bh))
        tracks.append(
            Track(
                1,
                "object",
                "rect",
                (30, 30, 30),
                bw,
                bh,
                x0,
                y0,
                bvx,
                0.0,
                0,
                frames - 1,
                False,
                20_000_000,
            )
        )
    next_id = len(tracks)
    for k, other in enumerate(base.tracks):
        tracks.append(replace(other, track_id=next_id + k, z=k))
    return replace(base, tracks=tuple(tracks), _bg_cache={})
