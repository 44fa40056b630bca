"""The page's JavaScript under pytest: the Node test suite (tests/js/*.test.mjs, on the shared
vectors), the JS and Python interpolations on many random tracks, and no URL written into the
scripts. Needs ``node`` (Node.js 20+, no packages); without it these tests fail and say so."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tasks import rle
from tasks.interpolation import interpolate

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPTS = ROOT / "static" / "js" / "annotate"
CORE = SCRIPTS / "core.mjs"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is missing: the page's JavaScript is tested with Node.js 20+ "
            "(Debian: apt-get install nodejs)",
            pytrace=False,
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.fail(f"node {version.stdout.strip()} is too old: Node.js 20+ needed", pytrace=False)
    return node


def test_node_suite_passes():
    r = subprocess.run(
        [_node(), "--test", "--test-reporter=tap", "tests/js/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        pytest.fail(f"node --test tests/js/ failed:\n{r.stdout}\n{r.stderr}", pytrace=False)
    # The suite ran the vectors rather than nothing at all.
    passed = int(re.search(r"^# pass (\d+)$", r.stdout, re.M).group(1))
    assert passed >= 40, r.stdout


# Runs the page's interpolateTrack on tracks read from stdin: [[keyframes, frames], ...].
PARITY_SCRIPT = """
import { interpolateTrack, round2 } from %s;
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([keyframes, frames]) => frames.map((f) => {
    const box = interpolateTrack(keyframes, f);
    return box && [box, box.map(round2)];
  }));
  process.stdout.write(JSON.stringify(out));
});
"""


def _random_tracks(rng: np.random.Generator, n: int) -> list:
    cases = []
    for _ in range(n):
        k = int(rng.integers(1, 7))
        frames = np.sort(rng.choice(np.arange(0, 60), size=k, replace=False))
        corner = rng.uniform(0, 500, size=(k, 2))
        size = rng.uniform(1, 140, size=(k, 2))
        # Some boxes as the page makes them (2 decimals), some arbitrary doubles.
        boxes = np.hstack([corner, corner + size])
        if rng.random() < 0.5:
            boxes = np.round(boxes, 2)
        outside = rng.random(k) < 0.25
        outside[0] = False  # a track starts visible
        keyframes = [
            {"frame": int(f), "box": b.tolist(), "outside": bool(o)}
            for f, b, o in zip(frames, boxes, outside, strict=True)
        ]
        cases.append((keyframes, frames, boxes, outside))
    return cases


def test_js_and_python_interpolate_random_tracks_identically():
    """Property-style: 400 random tracks, every frame 0-69; same presence, same doubles (the
    two implementations do the same IEEE operations in the same order), same stored rounding."""
    cases = _random_tracks(np.random.default_rng(20240611), 400)
    query = np.arange(0, 70)
    script = PARITY_SCRIPT % json.dumps(CORE.as_uri())
    r = subprocess.run(
        [_node(), "--input-type=module", "-e", script],
        input=json.dumps([[kf, query.tolist()] for kf, *_ in cases]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    js = json.loads(r.stdout)
    for (keyframes, frames, boxes, outside), js_track in zip(cases, js, strict=True):
        py_boxes, present = interpolate(frames, boxes, outside, query)
        stored = np.round(py_boxes, 2)
        for f in query:
            if not present[f]:
                assert js_track[f] is None, (keyframes, int(f))
                continue
            exact, rounded = js_track[f]
            assert exact == py_boxes[f].tolist(), (keyframes, int(f))
            assert rounded == stored[f].tolist(), (keyframes, int(f))


def test_scripts_write_no_url():
    """Every URL comes from the page (data-*-url attributes built with {% url %})."""
    for script in SCRIPTS.glob("*.mjs"):
        text = script.read_text()
        for literal in re.findall(r"([\"'`])(.*?)\1", text):
            assert not re.search(r"/(api|work|media|static|accounts)/", literal[1]), (
                script.name,
                literal[1],
            )


# Encodes masks read from stdin ([[rows, h, w], ...]) with the page's masks.mjs.
MASKS_SCRIPT = """
import { encode, decode } from %s;
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([bits, h, w]) => {
    const rle = encode(Uint8Array.from(bits), h, w);
    return [rle, Array.from(decode(rle))];
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def test_js_and_python_encode_random_masks_identically():
    """200 random masks (blobs and noise, 1x1 to 40x60): the page's RLE is tasks.rle's."""
    rng = np.random.default_rng(20261201)
    masks = []
    for _ in range(200):
        h, w = int(rng.integers(1, 41)), int(rng.integers(1, 61))
        m = rng.random((h, w)) < rng.uniform(0, 1)
        if rng.random() < 0.5:  # a blob instead of noise
            yy, xx = np.mgrid[:h, :w]
            m = (yy - rng.uniform(0, h)) ** 2 + (xx - rng.uniform(0, w)) ** 2 < rng.uniform(1, 400)
        masks.append(m)
    script = MASKS_SCRIPT % json.dumps((SCRIPTS / "masks.mjs").as_uri())
    r = subprocess.run(
        [_node(), "--input-type=module", "-e", script],
        input=json.dumps([[m.astype(int).ravel().tolist(), *m.shape] for m in masks]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    for m, (js_rle, js_bits) in zip(masks, json.loads(r.stdout), strict=True):
        assert js_rle == rle.encode(m)
        assert js_bits == m.astype(int).ravel().tolist()
