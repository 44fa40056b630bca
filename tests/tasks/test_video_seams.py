"""Decoding a part of a video from its keyframe (``tasks.video.scan_seams``, ``decode_range``):
the same frames, numbers and times as one decode of the whole file."""

from __future__ import annotations

import pytest

from tasks import video
from tasks.synthetic import make_scene


@pytest.fixture(scope="module", params=["ultrafast", "medium"])  # medium: B-frames, reordered
def clip(request, tmp_path_factory) -> str:
    scene = make_scene(seed=3, width=160, height=120, frames=150, n_objects=2, motion=2.0,
                       classes=("car",), shot_cuts=(70,))  # fmt: skip
    path = str(tmp_path_factory.mktemp("seams") / f"{request.param}.mp4")
    video.write_video(scene, path, gop=25, preset=request.param)
    return path


def test_seams_are_the_keyframes_with_their_frame_numbers(clip):
    scan = video.scan_seams(clip)
    assert scan.usable and scan.frames == 150
    # A keyframe every 25 frames; "medium" also starts one at the shot cut (x264's scenecut).
    expected = [0, 25, 50, 75, 100, 125] if "ultrafast" in clip else [0, 25, 50, 70, 95, 120, 145]
    assert [s.index for s in scan.seams] == expected
    assert [s.pts for s in scan.seams] == sorted({s.pts for s in scan.seams})


def test_a_range_decoded_from_its_keyframe_is_the_whole_decode_sliced(clip):
    whole = [(f.index, f.time, f.gray.tobytes()) for f in video.decode(clip)]
    scan = video.scan_seams(clip)
    for seam in scan.seams[1:]:
        stop = min(seam.index + 30, scan.frames - 1)
        stats = video.DecodeStats()
        part = [
            (f.index, f.time, f.gray.tobytes())
            for f in video.decode_range(clip, start=seam, stop_index=stop, stats=stats)
        ]
        assert part == whole[seam.index : stop + 1]
        assert stats.frames == stop - seam.index + 1 and stats.damage == 0


def test_a_range_past_the_end_of_the_file_is_a_clear_error(clip):
    seam = video.scan_seams(clip).seams[-1]
    with pytest.raises(video.VideoError, match="truncated or damaged"):
        list(video.decode_range(clip, start=seam, stop_index=500))


def test_a_file_that_is_not_a_video_has_no_usable_seams(tmp_path):
    path = tmp_path / "a.m4a"
    video.write_audio_only(str(path))
    assert video.scan_seams(str(path)).usable is False
