"""Pure computation of ingestion: shot boundaries, complexity features and splitting plans.

Knows nothing of Django or PyAV: it takes low-resolution grey frames (numpy arrays) and frame
numbers, and returns numbers and dataclasses.

Splitting is *streaming*: planners are fed one frame at a time (its number and whether a shot
starts there) and say which frames they may need as images and which microtasks are finished, so
the video is decoded once, in order, with memory that does not grow with its length. The
offline helpers ``plan_track_segments`` and ``plan_frame_groups`` drive the same planners over a
known frame count, for tests, quotes and documentation.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import rle

# --- Per-frame features -------------------------------------------------------------------------

HIST_BINS = 32


def histogram(gray: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """Normalised grey-level histogram (sums to 1)."""
    counts = np.bincount((gray.ravel() >> (8 - int(np.log2(bins)))).astype(np.intp), minlength=bins)
    return counts / max(1, gray.size)


def frame_difference(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of two grey frames, in 0..1."""
    diff = np.abs(current.astype(np.int16) - previous.astype(np.int16))
    return float(diff.mean()) / 255.0


EDGE_THRESHOLD = 48  # grey levels of gradient magnitude counted as an edge


def edge_density(gray: np.ndarray, threshold: int = EDGE_THRESHOLD) -> float:
    """Fraction of pixels on an edge (central-difference gradient magnitude above threshold)."""
    g = gray.astype(np.int16)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    gx = g[1:-1, 2:] - g[1:-1, :-2]
    gy = g[2:, 1:-1] - g[:-2, 1:-1]
    magnitude = np.abs(gx) + np.abs(gy)  # L1 norm: cheap and monotone enough for a density
    return float((magnitude > threshold).mean())


# --- Complexity ---------------------------------------------------------------------------------

# The complexity score computed from these features is pricing's (``payments.pricing.complexity``,
# with the active pricing policy's coefficients): one function, so the value ingestion stores is
# the value a price multiplies by.


@dataclass
class FrameFeatures:
    """Per-frame motion and clutter of a video (or of a part of it starting at frame ``origin``):
    two float32s a frame, appended in order."""

    motion: array = field(default_factory=lambda: array("f"))
    clutter: array = field(default_factory=lambda: array("f"))
    origin: int = 0

    def add(self, motion: float, clutter: float) -> None:
        self.motion.append(motion)
        self.clutter.append(clutter)

    def summary(self, frames: Sequence[int]) -> tuple[float, float]:
        """Mean motion and clutter over ``frames`` (rounded to 6 places)."""
        if not frames:
            return 0.0, 0.0
        o = self.origin
        m = float(np.mean([self.motion[i - o] for i in frames]))
        c = float(np.mean([self.clutter[i - o] for i in frames]))
        return round(m, 6), round(c, 6)


# --- Mask content -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskContent:
    """What a set of masks asks of a painter: pricing's ``boundary`` and ``area`` are
    ``boundary_per_object`` and ``area_per_object``."""

    count: int
    area_per_object: float  # pixels
    boundary_per_object: float  # pixel edges, 4-connected (``tasks.rle.boundary_length``)
    objects_per_frame: float


def mask_content(frames: Mapping[str, Sequence[Mapping]]) -> MaskContent:
    """Mask count, area and boundary length of stored per-frame mask shapes (``{"rle": ...}``)."""
    count = area = boundary = 0
    for shapes in frames.values():
        for shape in shapes:
            r = shape.get("rle")
            if not r:
                continue
            count += 1
            area += rle.area(r)
            boundary += rle.boundary_length(rle.decode(r))
    n = max(1, count)
    return MaskContent(count, area / n, boundary / n, count / max(1, len(frames)))


# --- Shot boundaries ----------------------------------------------------------------------------


@dataclass
class ShotDetector:
    """A cheap cut detector on low-resolution grey frames.

    A frame starts a new shot when its grey histogram differs from the previous frame's by more
    than ``hist_threshold`` (L1 distance, 0..2) *and* the mean absolute pixel difference exceeds
    ``diff_threshold`` (0..1): the first catches a change of scene, the second keeps a global
    brightness flicker with the same layout from counting. ``min_shot_frames`` suppresses a cut
    within that many frames of the previous one (flashes).
    """

    hist_threshold: float = 0.5
    diff_threshold: float = 0.08
    min_shot_frames: int = 2
    _previous: np.ndarray | None = None
    _previous_hist: np.ndarray | None = None
    _index: int = -1
    _last_cut: int = 0

    def push(self, gray: np.ndarray) -> tuple[bool, float]:
        """Feed the next frame; returns (starts a new shot, motion against the previous frame)."""
        self._index += 1
        hist = histogram(gray)
        cut = False
        motion = 0.0
        if self._previous is not None:
            motion = frame_difference(self._previous, gray)
            distance = float(np.abs(hist - self._previous_hist).sum())
            if (
                distance > self.hist_threshold
                and motion > self.diff_threshold
                and self._index - self._last_cut >= self.min_shot_frames
            ):
                cut = True
                self._last_cut = self._index
        self._previous, self._previous_hist = gray, hist
        return cut, motion


def detect_shots(grays: Iterable[np.ndarray], **options: float) -> list[int]:
    """First frames of every shot after the first, for a sequence of grey frames."""
    detector = ShotDetector(**options)
    return [i for i, g in enumerate(grays) if detector.push(g)[0]]


# --- Splitting plans ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One microtask's frames: the range it covers and the frames the worker annotates."""

    index: int
    frame_start: int
    frame_end: int  # inclusive
    frames: tuple[int, ...]
    shot: int


def keyframes(start: int, end: int, step: int) -> tuple[int, ...]:
    """start, start+step, ... and always ``end``."""
    frames = list(range(start, end + 1, step))
    if frames[-1] != end:
        frames.append(end)
    return tuple(frames)


class TrackPlanner:
    """Segments of ``segment_frames`` sharing ``overlap_frames`` with the next, cut at shots.

    Definition (what ``plan_track_segments`` returns): within every shot [a, b], segments are
    [s, min(s + segment_frames - 1, b)], starting at s = a and then at
    ``previous end - overlap_frames + 1``, until one reaches b. A segment never crosses a shot
    boundary, and segments of different shots do not overlap (tracks cannot be stitched across a
    cut). Each segment's annotated frames are its keyframes: every ``keyframe_step`` from its
    start, plus its last frame.

    Streaming use: call ``push(i, shot_start)`` for every frame in order and ``finish()`` at the
    end. ``needs(i)`` / ``maybe(i)`` (after ``push(i)``) say whether frame i surely is, or may turn
    out to be, a keyframe; the last frame
    of a segment cut by a shot or by the end of the video is only known one frame late, so
    callers keep the previous frame at hand (``ends_previous``).

    ``first_frame`` starts the plan at a later frame, as if the video began there: a part of a
    long video decoded on its own (``tasks.ingestion_parts``) plans its frames this way.
    """

    def __init__(
        self, *, segment_frames: int, overlap_frames: int, keyframe_step: int, first_frame: int = 0
    ):
        if segment_frames < 2:
            raise ValueError("segment_frames must be at least 2")
        if not 0 <= overlap_frames < segment_frames:
            raise ValueError("overlap_frames must be in 0..segment_frames-1")
        if keyframe_step < 1:
            raise ValueError("keyframe_step must be at least 1")
        self.segment_frames = segment_frames
        self.overlap_frames = overlap_frames
        self.keyframe_step = keyframe_step
        self._first = first_frame
        self._start = first_frame
        self._last_end = first_frame - 1
        self._shot = 0
        self._last = first_frame - 1
        self._count = 0

    @property
    def horizon(self) -> int:
        """No segment still to finish can use a frame before this one."""
        return self._start

    def _make(self, start: int, end: int) -> Segment:
        frames = keyframes(start, end, self.keyframe_step)
        seg = Segment(self._count, start, end, frames, self._shot)
        self._count += 1
        self._last_end = end
        return seg

    def push(self, i: int, shot_start: bool) -> list[Segment]:
        if i != self._last + 1:
            raise ValueError(f"frames must be pushed in order (expected {self._last + 1}, got {i})")
        self._last = i
        done: list[Segment] = []
        if i > self._first and shot_start:
            if self._last_end < i - 1:
                done.append(self._make(self._start, i - 1))
            self._start = i
            self._shot += 1
        if i == self._start + self.segment_frames - 1:
            done.append(self._make(self._start, i))
            self._start = i - self.overlap_frames + 1
        return done

    def needs(self, i: int) -> bool:
        """Whether frame ``i`` (just pushed) is surely a keyframe of the current segment."""
        return i >= self._start and (i - self._start) % self.keyframe_step == 0

    def maybe(self, i: int) -> bool:
        """Whether frame ``i`` is a keyframe of a later segment, should this one run full length.

        The next segments start inside this one's tail (the overlap), which is only known for
        sure when this one reaches its full length; callers keep such frames aside until then
        (they all lie within ``segment_frames`` of ``horizon``, so the memory is bounded).
        """
        if self.overlap_frames == 0 or self.needs(i):
            return False
        stride = self.segment_frames - self.overlap_frames
        # With a large overlap, several later segments may already have started by frame i.
        spec = self._start + stride
        while spec <= i:
            if (i - spec) % self.keyframe_step == 0:
                return True
            spec += stride
        return False

    def finish(self) -> list[Segment]:
        if self._last >= self._first and self._last_end < self._last:
            return [self._make(self._start, self._last)]
        return []


class FramePlanner:
    """Frames sampled every ``frame_step`` (0, step, 2·step, ...), grouped ``frames_per_task``.

    Groups ignore shot boundaries: each frame is annotated on its own, so a cut inside a group
    costs the worker nothing. With ``first_frame`` (a part of a long video) the sampled frames
    stay the video's multiples of ``frame_step``; groups start at the part's first one.
    """

    def __init__(self, *, frame_step: int, frames_per_task: int, first_frame: int = 0):
        if frame_step < 1 or frames_per_task < 1:
            raise ValueError("frame_step and frames_per_task must be at least 1")
        self.frame_step = frame_step
        self.frames_per_task = frames_per_task
        self._group: list[int] = []
        self._group_shot = 0
        self._count = 0
        self._shot = 0
        self._first = first_frame
        self._last = first_frame - 1

    @property
    def horizon(self) -> int:
        return self._group[0] if self._group else self._last + 1

    def _make(self) -> Segment:
        frames = tuple(self._group)
        seg = Segment(self._count, frames[0], frames[-1], frames, self._group_shot)
        self._count += 1
        self._group = []
        return seg

    def push(self, i: int, shot_start: bool) -> list[Segment]:
        if i != self._last + 1:
            raise ValueError(f"frames must be pushed in order (expected {self._last + 1}, got {i})")
        self._last = i
        if i > self._first and shot_start:
            self._shot += 1
        if i % self.frame_step == 0:
            if not self._group:
                self._group_shot = self._shot
            self._group.append(i)
            if len(self._group) == self.frames_per_task:
                return [self._make()]
        return []

    def needs(self, i: int) -> bool:
        return i % self.frame_step == 0

    def maybe(self, i: int) -> bool:
        return False

    def finish(self) -> list[Segment]:
        return [self._make()] if self._group else []


def _drive(planner: TrackPlanner | FramePlanner, frame_count: int, shot_starts: Iterable[int]):
    cuts = set(shot_starts)
    out: list[Segment] = []
    for i in range(frame_count):
        out.extend(planner.push(i, i in cuts))
    out.extend(planner.finish())
    return out


def plan_track_segments(
    frame_count: int,
    shot_starts: Iterable[int],
    *,
    segment_frames: int,
    overlap_frames: int,
    keyframe_step: int,
) -> list[Segment]:
    """All track segments of a video of ``frame_count`` frames (see ``TrackPlanner``)."""
    planner = TrackPlanner(
        segment_frames=segment_frames, overlap_frames=overlap_frames, keyframe_step=keyframe_step
    )
    return _drive(planner, frame_count, shot_starts)


def plan_frame_groups(
    frame_count: int, *, frame_step: int, frames_per_task: int, shot_starts: Iterable[int] = ()
) -> list[Segment]:
    """All per-frame microtasks of a video of ``frame_count`` frames (see ``FramePlanner``)."""
    planner = FramePlanner(frame_step=frame_step, frames_per_task=frames_per_task)
    return _drive(planner, frame_count, shot_starts)


def shared_frames(previous: Segment, following: Segment) -> int:
    """Frames two consecutive track segments share (0 across a shot cut)."""
    if previous.shot != following.shot:
        return 0
    return max(0, previous.frame_end - following.frame_start + 1)
