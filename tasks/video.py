"""Everything that touches PyAV: probing, one sequential decode, JPEG frames, and encoding.

This is the only module of the project that imports ``av``. It knows nothing of Django: it reads
from a path or a binary file object and hands frames to callbacks, so the ingestion services
(``tasks.ingestion_frames``) decide what to keep and where to store it.

Memory stays flat in video length: frames are decoded one at a time, the only frame kept beyond
the current one is the previous one (to decide, one frame late, whether it ends a segment), and
per-frame features are a few floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import av
import av.logging
import numpy as np
import simplejpeg

from .synthetic import Scene, render_frame

# --- Errors -------------------------------------------------------------------------------------


class VideoError(Exception):
    """The file is not a video we can ingest; the message says why, for a person to act on."""


# --- Content sniffing (no decoding) -------------------------------------------------------------

_MP4_BRANDS_HINT = b"ftyp"


def sniff_container(head: bytes) -> str | None:
    """Guess a container from the first bytes of a file, or None if it is not a known video.

    The file name is never trusted: this looks at magic numbers only. It is a cheap first gate at
    upload; the real check is the probe during ingestion.
    """
    if len(head) >= 12 and head[4:8] == _MP4_BRANDS_HINT:
        return "mp4"  # ISO base media: mp4, mov, m4v, 3gp
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # mkv, webm
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"FLV"):
        return "flv"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return "mpegts"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"  # QuickTime files without an ftyp box
    return None


CONTAINER_EXTENSIONS = {
    "mp4": ".mp4",
    "matroska": ".mkv",
    "avi": ".avi",
    "ogg": ".ogv",
    "flv": ".flv",
    "mpegts": ".ts",
    "mpeg": ".mpg",
}


# --- Probe --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What the pipeline accepts; absurd sizes are refused before any frame is decoded."""

    min_side: int = 16
    max_side: int = 7680
    max_pixels: int = 7680 * 4320
    max_duration: float = 6 * 3600.0


@dataclass(frozen=True)
class ProbeResult:
    container: str
    codec: str
    width: int
    height: int
    fps: float | None  # average frame rate from the header (None when unknown)
    frame_count: int | None  # from the header; may be missing or wrong, the decode counts again
    duration: float | None
    rotation: int
    time_base: Fraction | None


def _open(source: str | BinaryIO) -> Any:
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise VideoError(
            "This file is not a video we can read (the container is not recognised or is "
            "damaged). Upload an MP4, WebM, MKV or AVI file."
        ) from exc
    except av.error.FFmpegError as exc:
        raise VideoError(f"The video could not be opened: {exc}.") from exc


def _rotation(stream: Any) -> int:
    meta = getattr(stream, "metadata", {}) or {}
    value = meta.get("rotate")
    if value is not None:
        try:
            return int(value) % 360
        except ValueError:
            return 0
    return 0


def probe(source: str | BinaryIO, *, limits: Limits = Limits()) -> ProbeResult:
    """Read the container header: codec, size, rate, length. Raises VideoError when unusable."""
    with _open(source) as container:
        return _probe_open(container, limits)


def _probe_open(container: Any, limits: Limits) -> ProbeResult:
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        found = f" (it has {', '.join(kinds)} only)" if kinds else ""
        raise VideoError(f"This file has no video stream{found}. Upload a file with video.")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width == 0 or height == 0:
        raise VideoError("The video stream has no picture size; the file is probably damaged.")
    if min(width, height) < limits.min_side:
        raise VideoError(
            f"The picture is {width}x{height} pixels; videos must be at least "
            f"{limits.min_side} pixels on each side."
        )
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise VideoError(
            f"The picture is {width}x{height} pixels; the largest accepted is "
            f"{limits.max_side} pixels on a side ({limits.max_pixels} pixels in all)."
        )
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    if duration is not None and duration > limits.max_duration:
        raise VideoError(
            f"The video lasts {duration / 3600:.1f} hours; the longest accepted is "
            f"{limits.max_duration / 3600:.1f} hours. Split it first."
        )
    frame_count = int(stream.frames) if stream.frames else None
    codec = ctx.name or (stream.codec.name if stream.codec else "")
    if not codec:
        raise VideoError("The video codec is unknown to this server.")
    return ProbeResult(
        container=container.format.name,
        codec=codec,
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration=duration,
        rotation=_rotation(stream),
        time_base=stream.time_base,
    )


# --- One sequential decode ----------------------------------------------------------------------


def output_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """Scale (width, height) down to fit the box, keeping the aspect ratio, even sides."""
    scale = min(1.0, max_width / width, max_height / height)
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def analysis_size(width: int, height: int, target_width: int = 96) -> tuple[int, int]:
    """The low resolution used for shot detection and complexity features."""
    w = min(width, target_width)
    h = max(2, round(height * w / width))
    return w, h


@dataclass
class DecodedFrame:
    """One decoded frame: its number, time, low-res grey pixels, and a way to get a JPEG."""

    index: int
    time: float
    gray: np.ndarray  # (h, w) uint8 at analysis size
    _frame: Any  # the av.VideoFrame; only this module touches it

    def jpeg(self, *, width: int, height: int, quality: int) -> bytes:
        """This frame as a ``width`` x ``height`` JPEG (see :func:`encode_jpeg`)."""
        return encode_jpeg(self._frame, width=width, height=height, quality=quality)


def jpeg_qscale(quality: int) -> int:
    """Map a 1..100 JPEG quality (higher is better) to FFmpeg's 2..31 quantiser (lower is better).

    85 maps to 6 and 95 to 3: what ``ffmpeg -q:v`` is given for files of about the same quality
    (``bench/ingest`` runs the ffmpeg CLI beside the ingestion with it).
    """
    return int(min(31, max(2, round(31 - quality * 29 / 100))))


# Limited ("TV", MPEG) range to the full range JPEG stores, as swscale maps yuv420p to yuvj420p:
# luma 16..235 -> 0..255, chroma 16..240 around 128 -> 0..255. A table lookup a plane.
_LEVELS = np.arange(256, dtype=np.float64)
_LUMA_TO_FULL = np.clip(np.rint((_LEVELS - 16) * 255 / 219), 0, 255).astype(np.uint8)
_CHROMA_TO_FULL = np.clip(np.rint((_LEVELS - 128) * 255 / 224 + 128), 0, 255).astype(np.uint8)
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG: a yuv420p frame tagged full range needs no lookup


def _planes(frame: Any) -> list[np.ndarray]:
    """A planar frame's planes as arrays over its own buffers (no copy; rows may be padded)."""
    return [
        np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
        for p in frame.planes
    ]


def encode_jpeg(frame: Any, *, width: int, height: int, quality: int) -> bytes:
    """A decoded frame as a ``width`` x ``height`` JPEG, through libjpeg-turbo (``simplejpeg``),
    straight from YUV 4:2:0 planes.

    The decoder's usual picture (limited-range YUV 4:2:0 at the output size) is encoded from its
    own planes after a table lookup to the full range: no RGB round trip and no swscale pass.
    Any other format or size is scaled by swscale to full-range YUV 4:2:0 first. Side by side on
    720p frames on the 2-vCPU machine: 3.5 ms a frame, against 6.0 ms for FFmpeg's ``mjpeg``
    encoder behind swscale's range conversion (used before), with a smaller mean error against
    the decoded picture at the same nominal quality. The encoding itself releases the GIL.
    """
    if (frame.width, frame.height) != (width, height) or frame.format.name not in (
        "yuv420p",
        "yuvj420p",
    ):
        frame = frame.reformat(width=width, height=height, format="yuvj420p")
    y, u, v = _planes(frame)
    if frame.format.name == "yuv420p" and frame.color_range != _FULL_RANGE:
        y = np.take(_LUMA_TO_FULL, y)
        u, v = np.take(_CHROMA_TO_FULL, u), np.take(_CHROMA_TO_FULL, v)
    return simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality)


@dataclass
class DecodeStats:
    frames: int = 0
    bad_packets: int = 0  # packets the decoder rejected
    logged_errors: int = 0  # errors the demuxer reported (damaged or truncated container)
    first_error: str = ""
    last_time: float = 0.0
    variable_frame_rate: bool = False
    header_mismatch: bool = False  # the header announced a longer video than the file holds

    @property
    def damage(self) -> int:
        return self.bad_packets + self.logged_errors


def decode(
    source: str | BinaryIO,
    *,
    analysis_width: int = 96,
    stats: DecodeStats | None = None,
    limits: Limits = Limits(),
    max_bad_packet_ratio: float = 0.05,
) -> Iterator[DecodedFrame]:
    """Decode every frame of the first video stream once, in order, one at a time.

    Behaviour on damage (chosen and tested): a packet the decoder rejects is skipped and counted,
    and decoding goes on past it (the decoder conceals what it can, as players do). Frames are
    numbered in the order the decoder outputs them. If more than ``max_bad_packet_ratio`` of the
    packets (and at least 3) are rejected, or not a single frame decodes, a VideoError stops it.
    Decoding that stops well before the duration the header announces, after FFmpeg reported
    errors, is an error too (a truncated or damaged file); without any error the header was
    simply wrong, and the frames counted are the truth (``stats.header_mismatch``).
    Frame numbers are the decoder's output order: if a decoder drops a damaged frame outright,
    later numbers shift by one, but every frame keeps its exact timestamp (manifests carry it).
    Timestamps come from each frame's pts; frames without one get the previous time plus one
    nominal frame duration, so variable frame rate keeps its real times.
    """
    stats = stats if stats is not None else DecodeStats()
    _scan_container(source, stats)
    yield from _decode(source, analysis_width, stats, limits, max_bad_packet_ratio)


def _scan_container(source: str | BinaryIO, stats: DecodeStats) -> None:
    """Demux (not decode) the whole video stream once with FFmpeg's error log captured.

    The container's own complaints ("File ended prematurely", lost sync) are only reported
    through the log. Capturing the log while frame-threaded decoding runs can deadlock PyAV
    (PyAV-Org/PyAV#751, #909), so the log is switched on only for this cheap single-threaded
    pass over the packets and off again before decoding.
    """
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=True) as logs, _open(source) as container:
            if container.streams.video:
                for _ in container.demux(container.streams.video[0]):
                    pass
    except av.error.FFmpegError as exc:
        stats.logged_errors += 1
        stats.first_error = stats.first_error or str(exc)
    finally:
        av.logging.set_level(previous)
        if not isinstance(source, str):
            source.seek(0)
    errors = [entry for entry in logs if entry[0] <= av.logging.ERROR]
    if errors:
        stats.logged_errors += len(errors)
        stats.first_error = stats.first_error or f"{errors[0][1]}: {errors[0][2].strip()}"


# Planar formats whose first plane is the luma (grey) picture at full size.
_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)


def _analysis_gray(frame: Any, width: int, height: int) -> np.ndarray:
    """The low-resolution grey picture of a frame.

    For the usual planar YUV formats this subsamples the luma plane in place (a strided view of
    the decoder's buffer, copied at the small size), which costs next to nothing next to the
    decoding; other formats go through swscale.
    """
    if frame.format.name in _LUMA_FIRST and frame.width >= 2 * width:
        plane = frame.planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        sy = max(1, plane.height // height)
        sx = max(1, plane.width // width)
        return np.ascontiguousarray(luma[: sy * height : sy, : sx * width : sx])
    return frame.reformat(width=width, height=height, format="gray").to_ndarray()


class _Timeline:
    """Each decoded frame's time in seconds, from its pts; frames without one get the previous
    time plus one nominal frame duration. Notes variable frame rate and the last time in
    ``stats``."""

    def __init__(self, time_base, nominal: float, stats: DecodeStats):
        self.tb, self.nominal, self.stats = time_base, nominal, stats
        self.last: float | None = None
        self.last_delta: float | None = None

    def time_of(self, frame: Any) -> float:
        t = float(frame.pts * self.tb) if frame.pts is not None and self.tb else None
        if t is None:
            t = (self.last + self.nominal) if self.last is not None else 0.0
        if self.last is not None:
            delta = t - self.last
            if self.last_delta is not None and abs(delta - self.last_delta) > 0.25 * self.nominal:
                self.stats.variable_frame_rate = True
            self.last_delta = delta
        self.last = t
        self.stats.last_time = t
        return t


class _Packets:
    """The decoder's output packet by packet, then the flush: rejected packets are counted and
    skipped (too many stop it, see :func:`decode`), other decoder errors are a VideoError."""

    def __init__(self, stats: DecodeStats, max_bad_packet_ratio: float):
        self.stats, self.ratio, self.count = stats, max_bad_packet_ratio, 0

    def decoded(
        self, container: Any, stream: Any, until: Callable[[], bool] = lambda: False
    ) -> Iterator[list]:
        try:
            for packet in container.demux(stream):
                if until():
                    return
                if packet.size == 0 and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker; flushed below
                self.count += 1
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    self.stats.bad_packets += 1
                    _check_damage(self.stats, self.count, self.ratio)
                    continue
                yield frames
            if until():
                return
            try:
                yield stream.codec_context.decode(None)
            except av.error.InvalidDataError:
                self.stats.bad_packets += 1
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as exc:
            raise VideoError(f"The video is damaged and cannot be decoded further: {exc}.") from exc


def _decode(source, analysis_width, stats, limits, max_bad_packet_ratio):
    with _open(source) as container:
        info = _probe_open(container, limits)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        aw, ah = analysis_size(info.width, info.height, analysis_width)
        nominal = 1.0 / info.fps if info.fps else 1.0 / 30.0
        # Frames flushed at the end carry no time base of their own: the stream's is used.
        clock = _Timeline(stream.time_base, nominal, stats)
        index = 0

        def emit(frames: list) -> Iterator[DecodedFrame]:
            nonlocal index
            for frame in frames:
                t = clock.time_of(frame)
                gray = _analysis_gray(frame, aw, ah)
                stats.frames = index + 1
                yield DecodedFrame(index=index, time=t, gray=gray, _frame=frame)
                index += 1

        counter = _Packets(stats, max_bad_packet_ratio)
        for frames in counter.decoded(container, stream):
            yield from emit(frames)
        _check_damage(stats, counter.count, max_bad_packet_ratio)
        if index == 0:
            raise VideoError(
                "Not a single frame of this video could be decoded; the file is truncated or "
                "damaged. Upload the complete file again."
            )
        if info.duration and stats.last_time + nominal < 0.9 * info.duration - 0.5:
            if stats.damage:
                raise VideoError(
                    f"Decoding stopped at {stats.last_time:.1f} s of the {info.duration:.1f} s "
                    f"the file announces, after errors ({stats.first_error or 'damaged packets'})"
                    ": the file is truncated or damaged. Upload the complete file again."
                )
            # No error at all: the header was wrong; the counted frames are the truth.
            stats.header_mismatch = True


def _check_damage(stats: DecodeStats, packets: int, ratio: float) -> None:
    if stats.bad_packets >= 3 and stats.bad_packets > ratio * max(packets, 1):
        raise VideoError(
            f"{stats.bad_packets} of the first {packets} video packets are damaged; the file is "
            "too corrupt to annotate. Re-export or re-upload it."
        )


# --- Parts: decoding a time range from its keyframe ----------------------------------------------


@dataclass(frozen=True)
class Seam:
    """A keyframe a part may start decoding from: its pts and its frame number."""

    pts: int
    index: int


@dataclass(frozen=True)
class SeamScan:
    """What one demux pass (no decoding) says about splitting a video into parts.

    ``usable`` is False when parts cannot be numbered exactly from packets alone (a packet
    without a pts, errors from the demuxer): such videos are decoded in one sequential part.
    """

    frames: int
    seams: tuple[Seam, ...]  # every keyframe that starts a closed group of pictures, in order
    usable: bool


def scan_seams(source: str | BinaryIO, *, stop_after: int | None = None) -> SeamScan:
    """Demux the video stream once and list the keyframes a part can start from.

    ``stop_after``: stop after that many packets (the seams up to a little before it are then
    as good as a whole scan's: only a packet shown before a seam, which comes within the
    decoder's reordering depth after it, can break one; ``frames`` is then a lower bound).

    A keyframe is a clean start when every packet before it (in decode order) shows before it
    and every packet after it shows at or after it (a closed group of pictures): decoding from
    it then yields exactly the frames from it on, and its frame number (presentation order) is
    the count of packets before it. Keeps one small tuple per keyframe, nothing per frame.
    """
    seams: list[Seam] = []
    packets = 0
    max_pts: int | None = None
    usable = True
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=True) as logs, _open(source) as container:
            if not container.streams.video:
                return SeamScan(0, (), False)
            for packet in container.demux(container.streams.video[0]):
                if stop_after is not None and packets >= stop_after:
                    break
                if packet.size == 0 and packet.pts is None:
                    continue
                if packet.pts is None:
                    usable = False
                    packets += 1
                    continue
                pts = int(packet.pts)
                # A packet showing before the last seam breaks that seam (open GOP, leading B).
                while seams and pts < seams[-1].pts:
                    seams.pop()
                if packet.is_keyframe and (max_pts is None or pts > max_pts):
                    seams.append(Seam(pts, packets))
                max_pts = pts if max_pts is None else max(max_pts, pts)
                packets += 1
    except av.error.FFmpegError:
        usable = False
    finally:
        av.logging.set_level(previous)
        if not isinstance(source, str):
            source.seek(0)
    if any(entry[0] <= av.logging.ERROR for entry in logs):
        usable = False
    return SeamScan(packets, tuple(seams), usable and packets > 0)


def decode_range(
    source: str | BinaryIO,
    *,
    start: Seam,
    stop_index: int,
    analysis_width: int = 96,
    stats: DecodeStats | None = None,
    limits: Limits = Limits(),
    max_bad_packet_ratio: float = 0.05,
    threads: int = 1,
) -> Iterator[DecodedFrame]:
    """Frames ``start.index`` .. ``stop_index`` (inclusive), decoded from the keyframe ``start``.

    ``threads`` decoder threads (0: FFmpeg's choice). One by default: the parallelism of a part
    is across workers, and a worker's core is not shared with its own decoding threads.

    Seeks to the keyframe (PyAV ``seek``, backward to the keyframe at or before its pts), so a
    part costs its own length, not the length before it. Frame numbers continue from
    ``start.index``; damage is judged as in :func:`decode`, on this range's packets.
    """
    stats = stats if stats is not None else DecodeStats()
    with _open(source) as container:
        info = _probe_open(container, limits)
        stream = container.streams.video[0]
        if threads != 1:
            stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        aw, ah = analysis_size(info.width, info.height, analysis_width)
        nominal = 1.0 / info.fps if info.fps else 1.0 / 30.0
        clock = _Timeline(stream.time_base, nominal, stats)
        if start.index > 0:
            container.seek(start.pts, stream=stream, backward=True, any_frame=False)
        index = start.index

        def emit(frames: list) -> Iterator[DecodedFrame]:
            nonlocal index
            for frame in frames:
                if frame.pts is not None and frame.pts < start.pts:
                    continue  # before our keyframe (a demuxer that seeks earlier than asked)
                if index > stop_index:
                    return
                t = clock.time_of(frame)
                stats.frames += 1
                yield DecodedFrame(
                    index=index, time=t, gray=_analysis_gray(frame, aw, ah), _frame=frame
                )
                index += 1

        counter = _Packets(stats, max_bad_packet_ratio)
        for frames in counter.decoded(container, stream, until=lambda: index > stop_index):
            yield from emit(frames)
        _check_damage(stats, counter.count, max_bad_packet_ratio)
        if index <= stop_index:
            raise VideoError(
                f"Decoding stopped at frame {index} of the {stop_index + 1} the file holds: the "
                "file is truncated or damaged. Upload the complete file again."
            )


# Packets demuxed past the first frame of a span before trusting the seams found (far more than
# any decoder's reordering depth: H.264 allows 16 frames).
SPAN_SCAN_MARGIN = 64


def decode_span(
    source: str | BinaryIO,
    *,
    first: int,
    last: int,
    analysis_width: int,
    limits: Limits = Limits(),
) -> Iterator[DecodedFrame]:
    """Frames ``first`` .. ``last`` (inclusive) with grey pictures ``analysis_width`` wide,
    decoded from the nearest clean keyframe at or before ``first`` (a demux pass up to a little
    after ``first`` finds it, :func:`scan_seams`), so a span costs about its own length plus one
    group of pictures, plus demuxing (not decoding) what comes before it.

    A video whose keyframes cannot be trusted (see :class:`SeamScan`) is decoded from its start
    and the frames before ``first`` skipped. Raises VideoError as :func:`decode_range` does.
    """
    scan = scan_seams(source, stop_after=first + SPAN_SCAN_MARGIN)
    if scan.usable and scan.seams and scan.seams[0].index == 0:
        starts = [seam for seam in scan.seams if seam.index <= first]
        frames = decode_range(
            source,
            start=starts[-1],
            stop_index=last,
            analysis_width=analysis_width,
            limits=limits,
        )
    else:
        frames = decode(source, analysis_width=analysis_width, limits=limits)
    with closing(frames):
        for frame in frames:
            if frame.index > last:
                return
            if frame.index >= first:
                yield frame


def decode_image(data: bytes, *, max_pixels: int = 40_000_000) -> np.ndarray:
    """A stored JPEG frame (what ingestion extracted) as ``(h, w, 3)`` uint8 RGB pixels.

    Proposal sources read the frames a worker annotates, at the worker's size, through this: the
    pixels and the worker's coordinates are the same. Raises ``VideoError`` for anything that
    does not decode to one picture of at most ``max_pixels``.
    """
    try:
        ctx = av.CodecContext.create("mjpeg", "r")
        frames = ctx.decode(av.Packet(bytes(data)))
    except (av.error.FFmpegError, ValueError) as exc:
        raise VideoError(f"The frame image does not decode: {exc}") from None
    if not frames or frames[0].width * frames[0].height > max_pixels:
        raise VideoError("The frame image does not decode to one picture of a sensible size.")
    return frames[0].to_ndarray(format="rgb24")


# --- Encoding (synthetic videos for tests, demo and benchmarks) ---------------------------------

CODECS = {
    # codec: (default container format, file extension, pixel format)
    "libx264": ("mp4", ".mp4", "yuv420p"),
    "h264": ("mp4", ".mp4", "yuv420p"),
    "libvpx-vp9": ("webm", ".webm", "yuv420p"),
    "mpeg4": ("avi", ".avi", "yuv420p"),
}


@dataclass(frozen=True)
class WrittenVideo:
    path: str
    codec: str
    container: str
    frames: int
    times: tuple[float, ...]  # presentation time of every frame, seconds


def vfr_times(frames: int, fps: float, *, seed: int = 0) -> tuple[float, ...]:
    """A variable-frame-rate timeline: each frame lasts one or two nominal durations."""
    rng = np.random.default_rng(seed)
    durations = rng.choice([1, 2], size=max(0, frames - 1), p=[0.6, 0.4])
    ticks = np.concatenate([[0], np.cumsum(durations)])
    return tuple(float(t) / fps for t in ticks[:frames])


def write_video(
    scene: Scene,
    path: str,
    *,
    codec: str = "libx264",
    fps: float = 30.0,
    container_format: str | None = None,
    vfr: bool = False,
    preset: str = "ultrafast",
    crf: int = 23,
    gop: int | None = None,
    bitrate: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> WrittenVideo:
    """Encode ``scene`` to ``path`` with ``codec`` (libx264, libvpx-vp9 or mpeg4).

    With ``vfr=True`` frames get uneven durations (see :func:`vfr_times`) with millisecond
    timestamps; the returned ``times`` are what a decoder should report for each frame.
    """
    default_format, _, pix_fmt = CODECS.get(codec, ("mp4", ".mp4", "yuv420p"))
    fmt = container_format or default_format
    rate = Fraction(fps).limit_denominator(1001)
    if vfr:
        times = vfr_times(scene.frames, fps, seed=scene.seed)
        time_base = Fraction(1, 1000)
        pts = [round(t * 1000) for t in times]
        times = tuple(p / 1000 for p in pts)
    else:
        time_base = 1 / rate
        pts = list(range(scene.frames))
        times = tuple(float(i / rate) for i in range(scene.frames))
    with av.open(path, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = scene.width, scene.height, pix_fmt
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        options: dict[str, str] = {}
        if codec in ("libx264", "h264"):
            options = {"preset": preset, "crf": str(crf)}
        elif codec == "libvpx-vp9":
            options = {"deadline": "realtime", "cpu-used": "8", "crf": str(crf + 10), "b": "0"}
        elif codec == "mpeg4":
            options = {"qscale": "5"}
        if bitrate:
            stream.bit_rate = bitrate
            options.pop("crf", None)
        stream.options = options
        if gop:
            stream.codec_context.gop_size = gop
        for i in range(scene.frames):
            frame = av.VideoFrame.from_ndarray(render_frame(scene, i), format="rgb24")
            frame.pts = pts[i]
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            if progress is not None:
                progress(i)
        for packet in stream.encode(None):
            container.mux(packet)
    return WrittenVideo(path, codec, fmt, scene.frames, times)


def write_audio_only(path: str, *, seconds: float = 1.0, rate: int = 16000) -> str:
    """An MP4 (M4A) with one AAC audio stream and no video: a bad input for the pipeline."""
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = int(seconds * rate)
        t = np.arange(samples, dtype=np.float32) / rate
        tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
        step = 1024
        for offset in range(0, samples, step):
            chunk = tone[offset : offset + step].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = offset
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


__all__ = [
    "CODECS",
    "CONTAINER_EXTENSIONS",
    "DecodeStats",
    "DecodedFrame",
    "Limits",
    "ProbeResult",
    "Seam",
    "SeamScan",
    "VideoError",
    "WrittenVideo",
    "analysis_size",
    "decode",
    "decode_range",
    "decode_span",
    "encode_jpeg",
    "jpeg_qscale",
    "output_size",
    "probe",
    "scan_seams",
    "sniff_container",
    "vfr_times",
    "write_audio_only",
    "write_video",
]
