"""tasks.video: sniffing, probing, decoding and encoding real files."""

from __future__ import annotations

import struct

import pytest

from tasks import video
from tasks.synthetic import make_scene


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=2, width=160, height=120, frames=40, n_objects=2, motion=2.0)


@pytest.mark.parametrize(
    ("codec", "ext", "container", "codec_name", "header_frames"),
    [
        ("libx264", ".mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264", 40),
        ("libvpx-vp9", ".webm", "matroska,webm", "vp9", None),
        ("mpeg4", ".avi", "avi", "mpeg4", 40),
    ],
)
def test_probe_and_decode_every_codec(
    scene, tmp_path, codec, ext, container, codec_name, header_frames
):
    path = str(tmp_path / f"v{ext}")
    written = video.write_video(scene, path, codec=codec, fps=25)
    info = video.probe(path)
    assert (info.container, info.codec, info.width, info.height) == (
        container, codec_name, 160, 120,
    )  # fmt: skip
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == header_frames  # WebM does not say: the decode counts
    assert info.duration == pytest.approx(40 / 25, abs=0.05)
    stats = video.DecodeStats()
    frames = list(video.decode(path, stats=stats, analysis_width=32))
    assert [f.index for f in frames] == list(range(40))
    assert [f.time for f in frames] == pytest.approx(list(written.times))
    assert frames[0].gray.shape == (24, 32)
    assert (stats.frames, stats.damage, stats.variable_frame_rate) == (40, 0, False)
    head = (tmp_path / f"v{ext}").read_bytes()[:512]
    assert video.sniff_container(head) == {
        ".mp4": "mp4", ".webm": "matroska", ".avi": "avi"
    }[ext]  # fmt: skip


def test_decoded_frame_encodes_a_scaled_jpeg(scene, tmp_path):
    from io import BytesIO

    from PIL import Image

    path = str(tmp_path / "v.mp4")
    video.write_video(scene, path)
    first = next(iter(video.decode(path)))
    data = first.jpeg(width=80, height=60, quality=70)
    assert Image.open(BytesIO(data)).size == (80, 60)


def test_a_header_that_lies_about_length_is_corrected_by_counting(scene, tmp_path):
    """An AVI claiming 999 frames but holding 40 (no damage reported): the count wins."""
    path = tmp_path / "v.avi"
    video.write_video(scene, str(path), codec="mpeg4")
    data = bytearray(path.read_bytes())
    strh = data.index(b"strh") + 8
    data[strh + 32 : strh + 36] = struct.pack("<I", 999)
    avih = data.index(b"avih") + 8
    data[avih + 16 : avih + 20] = struct.pack("<I", 999)
    path.write_bytes(bytes(data))
    assert video.probe(str(path)).frame_count == 999
    stats = video.DecodeStats()
    assert sum(1 for _ in video.decode(str(path), stats=stats)) == 40
    assert stats.header_mismatch is True


def test_sniffing_ignores_names_and_knows_containers():
    assert video.sniff_container(b"hello world, this is text" * 10) is None
    assert video.sniff_container(b"") is None
    assert video.sniff_container(b"\x00\x00\x00\x20ftypisom" + b"\x00" * 20) == "mp4"
    assert video.sniff_container(b"\x1a\x45\xdf\xa3" + b"\x00" * 20) == "matroska"
    assert video.sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert video.sniff_container(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    ts = bytearray(400)
    ts[0] = ts[188] = 0x47
    assert video.sniff_container(bytes(ts)) == "mpegts"


def test_probe_refuses_what_is_not_a_video(tmp_path):
    text = tmp_path / "a.mp4"
    text.write_text("not a video at all " * 100)
    with pytest.raises(video.VideoError, match="not a video we can read"):
        video.probe(str(text))
    audio = video.write_audio_only(str(tmp_path / "a.m4a"))
    with pytest.raises(video.VideoError, match="no video stream"):
        video.probe(audio)


def test_limits_are_configurable(scene, tmp_path):
    path = str(tmp_path / "v.mp4")
    video.write_video(scene, path)
    with pytest.raises(video.VideoError, match="160x120"):
        video.probe(path, limits=video.Limits(max_side=100))
    with pytest.raises(video.VideoError, match="hours"):
        video.probe(path, limits=video.Limits(max_duration=0.5))


def test_output_size_keeps_aspect_and_even_sides():
    assert video.output_size(1920, 1080, 1280, 720) == (1280, 720)
    assert video.output_size(160, 120, 1280, 720) == (160, 120)
    assert video.output_size(1080, 1920, 1280, 720) == (404, 720)  # 405 to an even side
    assert video.output_size(1001, 501, 500, 500) == (500, 250)
    assert video.analysis_size(1920, 1080) == (96, 54)


def test_variable_frame_rate_encoding_has_uneven_timestamps(scene, tmp_path):
    path = str(tmp_path / "vfr.mp4")
    written = video.write_video(scene, path, vfr=True, fps=30)
    gaps = {round(b - a, 3) for a, b in zip(written.times, written.times[1:], strict=False)}
    assert gaps == {0.033, 0.034, 0.067} or gaps >= {0.067}
    stats = video.DecodeStats()
    times = [f.time for f in video.decode(path, stats=stats)]
    assert times == pytest.approx(list(written.times))
    assert stats.variable_frame_rate is True


def _yuv_frame(y: int, u: int, v: int, *, fmt: str = "yuv420p", width=100, height=60):
    """A flat frame of one colour, made by PyAV from planes (rows padded as the decoder pads)."""
    import av
    import numpy as np

    planes = np.concatenate(
        [
            np.full((height, width), y, np.uint8),
            np.full((height // 4, width), u, np.uint8),
            np.full((height // 4, width), v, np.uint8),
        ]
    )
    return av.VideoFrame.from_ndarray(planes, format=fmt)


def _pixels(data: bytes):
    from io import BytesIO

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize(
    ("fmt", "luma", "expected"),
    [
        ("yuv420p", 16, 0),  # limited range: video black is JPEG black
        ("yuv420p", 235, 255),  # and video white is JPEG white
        ("yuv420p", 126, 128),
        ("yuvj420p", 16, 16),  # full range already: stored as it is
        ("yuvj420p", 235, 235),
    ],
)
def test_jpeg_frames_store_the_full_range(fmt, luma, expected):
    frame = _yuv_frame(luma, 128, 128, fmt=fmt)
    assert frame.planes[0].line_size > frame.width  # padded rows are read as the picture's
    pixels = _pixels(video.encode_jpeg(frame, width=100, height=60, quality=90))
    assert pixels.shape == (60, 100, 3)
    assert abs(pixels - expected).max() <= 2


def test_jpeg_frames_keep_colours_and_scale_any_format(scene, tmp_path):
    """A decoded H.264 frame at its size and scaled, and an RGB frame (through swscale): each
    JPEG within a few levels of swscale's own RGB of the picture."""
    import av
    import numpy as np

    path = str(tmp_path / "v.mp4")
    video.write_video(scene, path)
    frame = next(iter(video.decode(path)))._frame
    reference = frame.to_ndarray(format="rgb24").astype(np.int16)
    h, w = reference.shape[:2]
    same = _pixels(video.encode_jpeg(frame, width=w, height=h, quality=95))
    assert np.abs(same - reference).mean() < 3
    half = _pixels(video.encode_jpeg(frame, width=w // 2, height=h // 2, quality=95))
    assert half.shape == (h // 2, w // 2, 3)
    assert np.abs(half - reference[::2, ::2]).mean() < 8
    rgb = av.VideoFrame.from_ndarray(reference.astype(np.uint8), format="rgb24")
    again = _pixels(video.encode_jpeg(rgb, width=w, height=h, quality=95))
    assert np.abs(again - reference).mean() < 3
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 220
    red_jpeg = _pixels(
        video.encode_jpeg(av.VideoFrame.from_ndarray(red, "rgb24"), width=64, height=48, quality=95)
    )
    assert abs(red_jpeg[..., 0].mean() - 220) < 4 and red_jpeg[..., 1:].mean() < 6
