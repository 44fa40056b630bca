"""Run-length encoded masks (tasks.rle): round trips, validation, COCO's own reader agrees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco_mask

from tasks import rle

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "masks.json").read_text())

masks_strategy = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda hw: arrays(bool, hw)
)


# pycocotools' C extension predates NumPy 2's copy keyword (as in tests/tasks/test_exports.py).
PYCOCOTOOLS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"


@pytest.mark.filterwarnings(PYCOCOTOOLS_WARNING)
@settings(max_examples=200, deadline=None)
@given(masks_strategy)
def test_encode_decode_round_trip_and_matches_pycocotools(mask):
    r = rle.encode(mask)
    assert r["size"] == list(mask.shape)
    assert sum(r["counts"]) == mask.size
    assert all(c > 0 for c in r["counts"][1:])  # canonical: only the first run may be empty
    assert (rle.decode(r) == mask).all()
    assert rle.area(r) == int(mask.sum())
    coco = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert rle.to_coco_string(r) == coco["counts"].decode("ascii")
    assert rle.from_coco_string(coco["counts"], mask.shape) == r
    assert (coco_mask.decode(coco_mask.frPyObjects(r, *mask.shape)) == mask).all()


@settings(max_examples=200, deadline=None)
@given(masks_strategy, st.lists(st.integers(0, 40), max_size=6))
def test_canonical_merges_empty_runs_without_changing_the_mask(mask, zeros_at):
    r = rle.encode(mask)
    counts = list(r["counts"])
    for at in zeros_at:  # split a run with an empty run of the other value between its parts
        k = at % len(counts)
        if counts[k] >= 2:
            counts[k : k + 1] = [1, 0, counts[k] - 1]
    padded = {"size": r["size"], "counts": counts}
    assert (rle.decode(padded) == mask).all()
    assert rle.canonical(padded) == r


def test_counts_start_with_the_zero_run_in_column_major_order():
    mask = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    # columns top to bottom: (1,1) (0,1) (0,0)
    assert rle.encode(mask) == {"size": [2, 3], "counts": [0, 2, 1, 1, 2]}


@pytest.mark.parametrize("case", VECTORS["encode"], ids=lambda c: c["name"])
def test_shared_vectors(case):
    mask = np.array(case["mask"], dtype=bool)
    assert rle.encode(mask) == case["rle"]
    assert (rle.decode(case["rle"]) == mask).all()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"size": [2, 3], "counts": [1, 5]}, None),
        ([1, 2], "must be an object"),
        ({"size": [3, 2], "counts": [1, 5]}, "must be the frame's [2, 3]"),
        ({"size": [2, 3], "counts": [1, 4]}, "add up to 5"),
        ({"size": [2, 3], "counts": [7, -1]}, "must not be negative"),
        ({"size": [2, 3], "counts": [6]}, "the mask is empty"),
        ({"size": [2, 3], "counts": [1.5, 4.5]}, "whole numbers"),
        ({"size": [2, 3], "counts": [1, 5], "x": 1}, "must be an object"),
        ({"size": [2, 3], "counts": [0, 1] * 4}, "at most 6 are allowed"),
    ],
)
def test_rle_problems(value, message):
    problems = rle.rle_problems(value, height=2, width=3, max_counts=6)
    if message is None:
        assert problems == []
    else:
        assert len(problems) == 1 and message in problems[0]


def test_polygon_rasterises_inside_the_frame_and_boundary_is_the_perimeter():
    m = rle.from_polygon([[2, 2], [6, 2], [6, 5], [2, 5]], height=8, width=10)
    assert m.shape == (8, 10)
    assert m[2:6, 2:7].all() and m.sum() == 5 * 4
    assert rle.boundary_length(m) == 2 * (5 + 4)
    assert rle.bbox(m) == [2, 2, 5, 4]
    assert rle.bbox(np.zeros((3, 3), bool)) == [0, 0, 0, 0]


def test_truncated_compressed_string_is_refused():
    with pytest.raises(ValueError):
        rle.from_coco_string("0`", [2, 2])  # continuation bit set on the last character
