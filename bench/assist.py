"""Benchmark ``assist`` (issue #14): what automation saves, side by side with what it replaces.

Two parts, run one after the other in this process, their goals in one ``goals`` map:

- ``tracking`` (``bench/_assist_tracking.py``): keyframes a track needs to reach mean IoU 0.8
  with tracker-assisted tracks against linear interpolation (goal ≤ 0.5x), and propagation
  speed per object at 1280x720 on one core (goal ≥ 150 frames/s, 5x real time at 30 fps), with
  OpenCV's MIL tracker and a median-flow tracker measured on the same frames.
- ``routing`` (``bench/_assist_routing.py``): the crowd simulator with a simulated model of set
  accuracy, unassisted against model-assisted routing on the same job, crowd and seeds — cost per
  accepted microtask (goal ≤ 0.6x at consensus IoU within 0.01), a bad model (accuracy 0.3) no
  dearer and no less accurate, and the workers' effective hourly pay on measured time never
  under the fair-pay floor.

Needs no database. Run: ``make bench-assist`` (``--quick`` for a short run that writes no file).
Prints a final JSON line and writes ``bench/results/assist.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import _assist_routing, _assist_tracking  # noqa: E402
from bench._common import report  # noqa: E402


def main() -> dict:
    quick = "--quick" in sys.argv[1:]
    started = time.perf_counter()
    tracking = _assist_tracking.run(quick=quick)
    routing = _assist_routing.run(quick=quick)
    goals = {}
    for part in (tracking, routing):
        overlap = set(goals) & set(part["goals"])
        assert not overlap, f"two parts name the same goal: {overlap}"
        goals.update(part["goals"])
    result = {
        "goals": goals,
        "tracking": {k: v for k, v in tracking.items() if k != "goals"},
        "routing": {k: v for k, v in routing.items() if k != "goals"},
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report("assist", result, write=not quick)
    return result


if __name__ == "__main__":
    main()
