"""Segmentation masks as run-length encoding (pure: numpy and Pillow, no Django).

The stored form is COCO's *uncompressed* RLE: ``{"size": [h, w], "counts": [n0, n1, ...]}``
where the pixels are read in column-major (Fortran) order — down the first column, then the
next — and the counts alternate, starting with a run of 0-pixels (``n0`` may be 0 when the mask
starts on a 1-pixel). ``sum(counts) == h * w``. ``static/js/annotate/masks.mjs`` is the twin of
:func:`encode` / :func:`decode`; both are tested on ``tests/vectors/masks.json``.

The COCO *compressed* string (``pycocotools.mask.encode``'s ``counts`` bytes) is written by
:func:`to_coco_string` for exports and read by :func:`from_coco_string` for imports: each count
(from the third on, as the difference with the count two before) in 5-bit groups, a continuation
bit, offset by 48 into printable ASCII (``rleToString`` / ``rleFrString`` in COCO's
``maskApi.c``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# A run-length list longer than this is refused: a 1280x720 mask with a ragged edge in every
# column needs a few thousand counts; 100k bounds the decode work and the payload.
MAX_COUNTS = 100_000


def encode(mask: np.ndarray) -> dict[str, Any]:
    """The uncompressed RLE of a 2-D boolean mask (canonical: no zero run but the first)."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError("a mask is a 2-D array")
    h, w = m.shape
    flat = m.ravel(order="F")
    if flat.size == 0:
        return {"size": [int(h), int(w)], "counts": []}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": [int(h), int(w)], "counts": counts}


def decode(rle: Mapping[str, Any]) -> np.ndarray:
    """The boolean ``(h, w)`` mask of a valid RLE (see :func:`rle_problems`)."""
    h, w = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = (np.arange(counts.size) % 2).astype(bool)
    flat = np.repeat(values, counts)
    return flat.reshape((h, w), order="F")


def area(rle: Mapping[str, Any]) -> int:
    """The number of 1-pixels (the odd-indexed runs)."""
    return int(sum(rle["counts"][1::2]))


def canonical(rle: Mapping[str, Any]) -> dict[str, Any]:
    """The same mask with zero-length runs merged away (what is stored), without decoding it."""
    counts = [int(c) for c in rle["counts"]]
    out: list[int] = counts[:1]
    i = 1
    while i < len(counts):
        c = counts[i]
        if c == 0 and i + 1 < len(counts):
            out[-1] += counts[i + 1]  # an empty run joins its two neighbours
            i += 2
            continue
        if c:
            out.append(c)
        i += 1
    return {"size": [int(v) for v in rle["size"]], "counts": out}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def rle_problems(rle: Any, *, height: int, width: int, max_counts: int = MAX_COUNTS) -> list[str]:
    """What is wrong with ``rle`` as a mask of a ``height`` x ``width`` frame (empty: nothing)."""
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        return ['must be an object {"size": [h, w], "counts": [...]}']
    size, counts = rle["size"], rle["counts"]
    if not isinstance(size, list) or len(size) != 2 or not all(map(_is_int, size)):
        return ["size must be two whole numbers [height, width]"]
    if size != [height, width]:
        return [f"size {size} must be the frame's [{height}, {width}]"]
    if not isinstance(counts, list) or not counts:
        return ["counts must be a non-empty list of whole numbers"]
    if len(counts) > max_counts:
        return [f"counts has {len(counts)} runs; at most {max_counts} are allowed"]
    if not all(map(_is_int, counts)):
        return ["counts must be whole numbers"]
    if any(c < 0 for c in counts):
        return ["counts must not be negative"]
    total = sum(counts)
    if total != height * width:
        return [f"counts add up to {total}; a {width}x{height} frame has {height * width} pixels"]
    if not any(counts[1::2]):
        return ["the mask is empty"]
    return []


def from_polygon(points: Sequence[Sequence[float]], *, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon (pixel coordinates, origin top-left) to a boolean mask, edges in."""
    img = Image.new("1", (width, height), 0)
    pts = [(float(x), float(y)) for x, y in points]
    if len(pts) >= 3:
        ImageDraw.Draw(img).polygon(pts, fill=1, outline=1)
    return np.asarray(img, dtype=bool)


def resize(rle: Mapping[str, Any], *, height: int, width: int) -> dict[str, Any]:
    """The same mask on a ``height`` x ``width`` frame (nearest neighbour); itself when the size
    is already that (a mask drawn on the extracted frame to the source video's pixels for export,
    an imported one the other way)."""
    h, w = (int(v) for v in rle["size"])
    if (h, w) == (height, width):
        return dict(rle)
    mask = Image.fromarray(decode(rle)).resize((width, height), Image.Resampling.NEAREST)
    return encode(np.asarray(mask, dtype=bool))


def boundary_length(mask: np.ndarray) -> int:
    """Pixel edges between the mask and the rest (4-connected; the frame's border counts)."""
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    return int(np.count_nonzero(m[1:, :] != m[:-1, :]) + np.count_nonzero(m[:, 1:] != m[:, :-1]))


def bbox(mask: np.ndarray) -> list[int]:
    """``[x, y, width, height]`` of the mask's 1-pixels (COCO's bbox); zeros when empty."""
    m = np.asarray(mask, dtype=bool)
    ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not ys.size:
        return [0, 0, 0, 0]
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


def to_coco_string(rle: Mapping[str, Any]) -> str:
    """COCO's compressed ``counts`` string of an uncompressed RLE (``rleToString``)."""
    counts = [int(c) for c in rle["counts"]]
    out: list[str] = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = x != -1 if ch & 0x10 else x != 0
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def from_coco_string(text: str | bytes, size: Sequence[int]) -> dict[str, Any]:
    """The uncompressed RLE of COCO's compressed ``counts`` string (``rleFrString``)."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x = k = 0
        more = True
        while more:
            if p >= len(data):
                raise ValueError("the compressed counts end in the middle of a number")
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return {"size": [int(size[0]), int(size[1])], "counts": counts}
