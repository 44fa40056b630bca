"""``video.decode_span``: a span of frames decoded from the nearest keyframe is the same frames,
numbered the same, as a decode of the whole video (the tracker's frames, tasks/propagating.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import synthetic, video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    scene = synthetic.make_path_scene(seed=3, width=160, height=120, frames=90)
    folder = tmp_path_factory.mktemp("span")
    with_keys = video.write_video(scene, str(folder / "gop.mp4"), gop=12).path
    one_key = video.write_video(scene, str(folder / "one.mp4"), gop=300).path
    return with_keys, one_key


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("first, last", [(0, 5), (30, 41), (37, 89), (89, 89)])
def test_a_span_is_the_same_frames_as_the_whole_decode(clip, which, first, last):
    path = clip[which]
    whole = {f.index: f.gray.copy() for f in video.decode(path, analysis_width=80)}
    span = [
        (f.index, f.gray.copy())
        for f in video.decode_span(path, first=first, last=last, analysis_width=80)
    ]
    assert [i for i, _ in span] == list(range(first, last + 1))
    for i, grey in span:
        assert np.array_equal(grey, whole[i]), i


def test_the_scan_for_a_span_stops_early_and_finds_the_same_seams(clip):
    full = video.scan_seams(clip[0])
    early = video.scan_seams(clip[0], stop_after=40)
    assert early.usable and early.frames == 40 and full.frames == 90
    # Keyframes every 12 frames: the early scan found the same ones up to where it stopped.
    assert [s for s in full.seams if s.index < 40] == list(early.seams)
    assert early.seams[-1].index <= 36


def test_garbage_is_a_video_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(video.VideoError):
        list(video.decode_span(str(bad), first=0, last=3, analysis_width=80))
