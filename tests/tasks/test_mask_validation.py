"""Mask payloads (annotation type ``mask``) are checked field by field (pure module)."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import rle
from tasks.annotations import (
    MAX_MASKS_PER_FRAME,
    AnnotationContext,
    AnnotationInvalid,
    validate_payload,
)

H, W = 36, 64
MASK = AnnotationContext("mask", ["road", "car"], W, H, 0, 20, frames=[0, 10, 20])


def _errors(payload, ctx=MASK) -> dict[str, list[str]]:
    with pytest.raises(AnnotationInvalid) as info:
        validate_payload(payload, ctx)
    return info.value.fields


def _square(y0=4, x0=4, side=8):
    m = np.zeros((H, W), bool)
    m[y0 : y0 + side, x0 : x0 + side] = True
    return m


def test_valid_mask_is_stored_canonical_per_frame():
    r = rle.encode(_square())
    padded = {"size": r["size"], "counts": [*r["counts"][:2], 0, 0, *r["counts"][2:]]}
    result = validate_payload({"masks": [{"frame": 10, "label": "road", "rle": padded}]}, MASK)
    assert result.payload == {"masks": [{"frame": 10, "label": "road", "rle": r}]}
    assert result.frames["10"] == [{"label": "road", "rle": r}]
    assert result.frames["0"] == [] and result.shape_count == 1


def test_polygon_to_mask_is_rasterised_into_rle():
    item = {"frame": 0, "label": "car", "points": [[4, 4], [11, 4], [11, 11], [4, 11]]}
    result = validate_payload({"masks": [item]}, MASK)
    stored = result.payload["masks"][0]
    assert set(stored) == {"frame", "label", "rle"}
    assert (rle.decode(stored["rle"]) == _square()).all()


@pytest.mark.parametrize(
    ("item", "path", "fragment"),
    [
        ({"frame": 10, "label": "sky"}, "masks[0].label", "unknown class"),
        ({"frame": 11, "label": "road"}, "masks[0].frame", "not one of"),
        (
            {"frame": 10, "label": "road", "rle": {"size": [W, H], "counts": [H * W]}},
            "masks[0].rle",
            "must be the frame's",
        ),
        (
            {"frame": 10, "label": "road", "rle": {"size": [H, W], "counts": [5, 5]}},
            "masks[0].rle",
            "add up to",
        ),
        (
            {"frame": 10, "label": "road", "rle": {"size": [H, W], "counts": [H * W + 1, -1]}},
            "masks[0].rle",
            "negative",
        ),
        (
            {"frame": 10, "label": "road", "rle": {"size": [H, W], "counts": [H * W]}},
            "masks[0].rle",
            "empty",
        ),
        ({"frame": 10, "label": "road", "rle": "abc"}, "masks[0].rle", "must be an object"),
        ({"frame": 10, "label": "road"}, "masks[0].rle", 'either "rle" or "points"'),
        (
            {"frame": 10, "label": "road", "points": [[1, 1], [9, 9], [9, 1], [1, 9]]},
            "masks[0].points",
            "cross",
        ),
        (
            {"frame": 10, "label": "road", "points": [[1, 1], [99, 9], [9, 1]]},
            "masks[0].points",
            "inside",
        ),
        ({"frame": 10, "label": "road", "rle": None, "colour": "red"}, "masks[0]", "unexpected"),
    ],
)
def test_bad_mask_fields_are_reported_at_their_path(item, path, fragment):
    if "rle" in item and item["rle"] is None:
        item = {**item, "rle": rle.encode(_square())}
    fields = _errors({"masks": [item]})
    assert path in fields and fragment in " ".join(fields[path]), fields


def test_a_self_intersecting_stroke_is_refused_and_nothing_is_stored():
    good = {"frame": 0, "label": "road", "rle": rle.encode(_square())}
    bow = {"frame": 0, "label": "road", "points": [[0, 0], [20, 20], [20, 0], [0, 20]]}
    fields = _errors({"masks": [good, bow]})
    assert list(fields) == ["masks[1].points"]


def test_masks_per_frame_are_bounded():
    item = {"frame": 20, "label": "car", "rle": rle.encode(_square())}
    fields = _errors({"masks": [item] * (MAX_MASKS_PER_FRAME + 1)})
    assert f"masks[{MAX_MASKS_PER_FRAME}].frame" in fields


def test_a_ragged_mask_over_the_run_budget_is_refused():
    ctx = AnnotationContext("mask", ["road"], 1280, 720, 0, 0, frames=[0])
    stripes = np.zeros((720, 1280), bool)
    stripes[::2, :] = True  # 720 runs per column
    item = {"frame": 0, "label": "road", "rle": rle.encode(stripes)}
    fields = _errors({"masks": [item]}, ctx)
    assert "masks[0].rle" in fields and "at most" in fields["masks[0].rle"][0]
