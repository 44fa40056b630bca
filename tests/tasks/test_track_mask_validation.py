"""Masks on tracks: a track job with ``track_masks`` takes an RLE mask per visible keyframe."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import annotations, rle
from tasks.annotations import AnnotationContext, AnnotationInvalid, validate_payload

H, W = 36, 64
CTX = AnnotationContext("track", ["car"], W, H, 0, 20, track_masks=True)
PLAIN = AnnotationContext("track", ["car"], W, H, 0, 20)


def _errors(payload, ctx=CTX) -> dict[str, list[str]]:
    with pytest.raises(AnnotationInvalid) as info:
        validate_payload(payload, ctx)
    return info.value.fields


def _square(y0=4, x0=4, side=8):
    m = np.zeros((H, W), bool)
    m[y0 : y0 + side, x0 : x0 + side] = True
    return m


def _track(*keyframes):
    return {"tracks": [{"id": 1, "label": "car", "keyframes": list(keyframes)}]}


def test_keyframe_mask_is_stored_and_put_on_that_frame_only():
    r = rle.encode(_square())
    result = validate_payload(
        _track(
            {"frame": 0, "box": [4, 4, 12, 12], "mask": r},
            {"frame": 10, "box": [14, 4, 22, 12]},
        ),
        CTX,
    )
    assert result.payload["tracks"][0]["keyframes"][0]["mask"] == r
    assert "mask" not in result.payload["tracks"][0]["keyframes"][1]
    assert result.frames["0"] == [{"track": 1, "label": "car", "box": [4, 4, 12, 12], "rle": r}]
    # Between keyframes only the interpolated box: masks are not interpolated.
    assert result.frames["5"] == [{"track": 1, "label": "car", "box": [9.0, 4.0, 17.0, 12.0]}]
    assert "rle" not in result.frames["10"][0]


def test_box_omitted_is_the_masks_extents():
    r = rle.encode(_square(y0=6, x0=10, side=5))
    result = validate_payload(_track({"frame": 3, "mask": r}), CTX)
    assert result.payload["tracks"][0]["keyframes"][0]["box"] == [10.0, 6.0, 15.0, 11.0]
    assert result.frames["3"][0]["rle"] == r


def test_mask_is_stored_canonical():
    r = rle.encode(_square())
    padded = {"size": r["size"], "counts": [*r["counts"][:2], 0, 0, *r["counts"][2:]]}
    result = validate_payload(_track({"frame": 0, "mask": padded}), CTX)
    assert result.payload["tracks"][0]["keyframes"][0]["mask"] == r


def test_mask_mostly_outside_its_box_is_refused():
    r = rle.encode(_square())
    fields = _errors(_track({"frame": 0, "box": [30, 20, 60, 34], "mask": r}))
    assert list(fields) == ["tracks[0].keyframes[0].mask"]
    assert "inside the keyframe's box" in fields["tracks[0].keyframes[0].mask"][0]


def test_a_stroke_a_pixel_over_the_box_edge_is_kept():
    m = _square(side=10)  # 100 pixels; the box leaves out one column of 10 (90% inside)
    validate_payload(_track({"frame": 0, "box": [4, 4, 13, 14], "mask": rle.encode(m)}), CTX)
    assert _share(m, [4, 4, 13, 14]) == pytest.approx(0.9)


def _share(m, box):
    return annotations._share_inside(m, box)


@pytest.mark.parametrize(
    ("keyframes", "ctx", "path", "fragment"),
    [
        (
            [{"frame": 0, "box": [4, 4, 12, 12], "mask": rle.encode(_square())}],
            PLAIN,
            "tracks[0].keyframes[0].mask",
            "does not ask for masks",
        ),
        (
            [
                {"frame": 0, "box": [4, 4, 12, 12]},
                {"frame": 5, "outside": True, "mask": rle.encode(_square())},
            ],
            CTX,
            "tracks[0].keyframes[1].mask",
            "outside keyframe has no mask",
        ),
        (
            [{"frame": 0, "mask": {"size": [W, H], "counts": [H * W]}}],
            CTX,
            "tracks[0].keyframes[0].mask",
            "must be the frame's",
        ),
        (
            [{"frame": 0, "mask": {"size": [H, W], "counts": [H * W]}}],
            CTX,
            "tracks[0].keyframes[0].mask",
            "empty",
        ),
        (
            [{"frame": 0, "mask": {"size": [H, W], "counts": [5, 5]}}],
            CTX,
            "tracks[0].keyframes[0].mask",
            "add up to",
        ),
        (
            [{"frame": 0, "mask": "RLE"}],
            CTX,
            "tracks[0].keyframes[0].mask",
            "must be an object",
        ),
    ],
)
def test_bad_keyframe_masks_are_refused_on_their_path(keyframes, ctx, path, fragment):
    fields = _errors(_track(*keyframes), ctx)
    assert path in fields, fields
    assert any(fragment in m for m in fields[path]), fields[path]


def test_runs_are_bounded_over_the_whole_payload(monkeypatch):
    monkeypatch.setattr(annotations, "MAX_MASK_COUNTS_TOTAL", 5)
    r = rle.encode(_square())  # 17 runs: 8 columns of [gap, run] and the tail
    fields = _errors(_track({"frame": 0, "mask": r}))
    assert "runs in all" in fields["tracks[0].keyframes[0].mask"][0]


def test_keyframe_masks_are_bounded_in_number(monkeypatch):
    monkeypatch.setattr(annotations, "MAX_KEYFRAME_MASKS", 1)
    r = rle.encode(_square())
    fields = _errors(_track({"frame": 0, "mask": r}, {"frame": 5, "mask": r}))
    assert list(fields) == ["tracks[0].keyframes[1].mask"]
    assert "at most 1 keyframe masks" in fields["tracks[0].keyframes[1].mask"][0]
