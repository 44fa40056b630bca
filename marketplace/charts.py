"""Charts as server-rendered SVG (pure: no Django, no JavaScript, nothing from a CDN).

The staff dashboards draw their charts with these two functions, so a page shows its figures
offline and under the Content-Security-Policy (no inline script, no ``style`` attribute: SVG
presentation attributes only). Each chart is one ``<svg role="img">`` with a ``<title>`` and a
``<desc>`` that says in words what the picture shows (screen readers, and a test, read it), axes
with tick labels, and the data: bars, or lines with a dot per point.

Every text that reaches the markup is escaped here; the caller may mark the result safe.

- :func:`bar_chart` — one bar per ``(label, value)``: a histogram (trust buckets) or a count per
  category (payouts by status).
- :func:`line_chart` — one or more series over the same x labels (a rate per day); a ``None``
  value is a gap.
- :func:`period_axis` — the days or weeks of a time axis, every one of them, so that a period
  without data shows as a gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

WIDTH = 540
HEIGHT = 260
# Room for the axes' labels around the plot area.
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 44, 44
CHAR_WIDTH = 6.2  # of an 11px label, in SVG units (for the room the y labels need)
# The legend of a line chart: a row under the title, above the plot.
LEGEND_Y = 26
COLOURS = ("#2463eb", "#d97706", "#059669", "#b42318", "#7c3aed")
AXIS = "#5b6570"
GRID = "#e5e7eb"

Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One line of a line chart: its name (the legend) and one value per x label."""

    name: str
    values: Sequence[float | None]


def _plain(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above ``value`` (1 for nothing to show)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _within(value: float, top: float) -> float:
    """A value placed on an axis from 0 to ``top``: what lies beyond sits on its edge (the
    point's tooltip and the description keep the true value)."""
    return min(max(value, 0.0), top)


def tick_count(top: float) -> int:
    """How many steps divide an axis from 0 to a round ``top`` into round steps (1, 2 or 5
    times a power of ten: 5 → 1s, 2 → 0.5s, 2.5 → 0.5s, 1 → 0.2s)."""
    if top <= 0 or not math.isfinite(top):
        return 4
    mantissa = round(top / 10 ** math.floor(math.log10(top)), 6)
    return {1.0: 5, 2.0: 4, 2.5: 5, 5.0: 5}.get(mantissa, 4)


def _num(x: float) -> str:
    return f"{x:.1f}"


class _Frame:
    """The plot area of one chart and the markup around it."""

    def __init__(self, *, chart_id: str, title: str, description: str, width: int, height: int):
        self.id = chart_id
        self.width, self.height = width, height
        self.x0, self.x1 = LEFT, width - RIGHT
        self.y0, self.y1 = height - BOTTOM, TOP  # y0 is the bottom (value 0)
        self.parts: list[str] = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
            f'role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
            f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
            f'<text x="{LEFT}" y="18" font-size="13" font-weight="600" fill="#1b1f24">'
            f"{escape(title)}</text>",
        ]

    def y_of(self, value: float, top: float) -> float:
        return self.y0 - (self.y0 - self.y1) * (value / top if top else 0)

    def y_axis(self, top: float, fmt: Format) -> None:
        """Grid lines and labels at round steps from 0 to ``top``; the plot starts right of the
        widest label (so long amounts are not cut off)."""
        ticks = tick_count(top)
        labels = [fmt(top * i / ticks) for i in range(ticks + 1)]
        widest = max(len(label) for label in labels)
        self.x0 = max(LEFT, round(CHAR_WIDTH * widest) + 30)
        for i, label in enumerate(labels):
            y = self.y_of(top * i / ticks, top)
            self.parts.append(
                f'<line x1="{self.x0}" y1="{_num(y)}" x2="{self.x1}" y2="{_num(y)}" '
                f'stroke="{GRID}" stroke-width="1"/>'
            )
            self.parts.append(
                f'<text x="{self.x0 - 6}" y="{_num(y + 4)}" font-size="11" text-anchor="end" '
                f'fill="{AXIS}">{escape(label)}</text>'
            )
        self.parts.append(
            f'<line class="axis" x1="{self.x0}" y1="{self.y0}" x2="{self.x0}" y2="{self.y1}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )
        self.parts.append(
            f'<line class="axis" x1="{self.x0}" y1="{self.y0}" x2="{self.x1}" y2="{self.y0}" '
            f'stroke="{AXIS}" stroke-width="1"/>'
        )

    def x_label(self, x: float, text: str) -> None:
        self.parts.append(
            f'<text x="{_num(x)}" y="{self.y0 + 16}" font-size="11" text-anchor="middle" '
            f'fill="{AXIS}">{escape(text)}</text>'
        )

    def axis_titles(self, x_title: str, y_title: str) -> None:
        if x_title:
            self.parts.append(
                f'<text x="{_num((self.x0 + self.x1) / 2)}" y="{self.height - 6}" '
                f'font-size="11" text-anchor="middle" fill="{AXIS}">{escape(x_title)}</text>'
            )
        if y_title:
            cy = (self.y0 + self.y1) / 2
            self.parts.append(
                f'<text x="12" y="{_num(cy)}" font-size="11" text-anchor="middle" '
                f'fill="{AXIS}" transform="rotate(-90 12 {_num(cy)})">{escape(y_title)}</text>'
            )

    def empty(self, message: str) -> None:
        self.parts.append(
            f'<text class="empty" x="{_num((self.x0 + self.x1) / 2)}" '
            f'y="{_num((self.y0 + self.y1) / 2)}" font-size="13" text-anchor="middle" '
            f'fill="{AXIS}">{escape(message)}</text>'
        )

    def svg(self) -> str:
        return "".join([*self.parts, "</svg>"])


def _label_every(n: int, room: float, chars: int) -> int:
    """Show every k-th x label so that labels of ``chars`` characters do not overlap."""
    per = max(room / max(n, 1), 1.0)
    need = chars * 6.5 + 6
    return max(1, math.ceil(need / per))


def bar_chart(
    *,
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float]],
    x_title: str = "",
    y_title: str = "",
    fmt: Format = _plain,
    width: int = WIDTH,
    height: int = HEIGHT,
    empty: str = "No data yet",
) -> str:
    """One bar per ``(label, value)`` (values ≥ 0), on a y axis from 0 to a round maximum."""
    values = [max(0.0, float(v)) for _, v in bars]
    shown = ", ".join(f"{label}: {fmt(v)}" for (label, _), v in zip(bars, values, strict=True))
    frame = _Frame(
        chart_id=chart_id,
        title=title,
        description=f"{title}. {shown}." if any(values) else f"{title}. {empty}.",
        width=width,
        height=height,
    )
    biggest = max(values, default=0.0)
    if all(float(v).is_integer() for v in values):
        biggest = max(biggest, 4.0)  # counts: an axis of whole steps (0-5), never 0.25s
    top = nice_ceiling(biggest)
    frame.y_axis(top, fmt)
    frame.axis_titles(x_title, y_title)
    if not bars or not any(values):
        frame.empty(empty)
        return frame.svg()
    slot = (frame.x1 - frame.x0) / len(bars)
    every = _label_every(len(bars), frame.x1 - frame.x0, max(len(b[0]) for b in bars))
    for i, ((label, _), value) in enumerate(zip(bars, values, strict=True)):
        x = frame.x0 + slot * i + slot * 0.12
        y = frame.y_of(value, top)
        frame.parts.append(
            f'<rect class="bar" x="{_num(x)}" y="{_num(y)}" width="{_num(slot * 0.76)}" '
            f'height="{_num(frame.y0 - y)}" fill="{COLOURS[0]}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
        if i % every == 0:
            frame.x_label(frame.x0 + slot * (i + 0.5), label)
    return frame.svg()


def line_chart(
    *,
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    x_title: str = "",
    y_title: str = "",
    fmt: Format = _plain,
    y_max: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    empty: str = "No data yet",
) -> str:
    """Each series as a line with a dot per point over ``x_labels``; ``None`` leaves a gap.

    ``y_max`` fixes the top of the y axis (1.0 for a rate), else it is a round maximum; the axis
    starts at 0, and a value outside it is drawn on its edge."""
    for s in series:
        if len(s.values) != len(x_labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(x_labels)}")
    points = [float(v) for s in series for v in s.values if v is not None]
    described = "; ".join(
        f"{s.name}: "
        + ", ".join(
            f"{x} {fmt(v)}" for x, v in zip(x_labels, s.values, strict=True) if v is not None
        )
        for s in series
        if any(v is not None for v in s.values)
    )
    frame = _Frame(
        chart_id=chart_id,
        title=title,
        description=f"{title}. {described}." if described else f"{title}. {empty}.",
        width=width,
        height=height,
    )
    top = y_max if y_max is not None else nice_ceiling(max(points, default=0.0))
    frame.y_axis(top, fmt)
    frame.axis_titles(x_title, y_title)
    if not points:
        frame.empty(empty)
        return frame.svg()
    n = len(x_labels)
    span = frame.x1 - frame.x0

    def x_of(i: int) -> float:
        return frame.x0 + (span * (i + 0.5) / n)

    every = _label_every(n, span, max(len(x) for x in x_labels))
    for i, label in enumerate(x_labels):
        if (n - 1 - i) % every == 0:  # counted from the newest, so the last period is named
            frame.x_label(x_of(i), label)
    for k, s in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        run: list[str] = []
        runs: list[list[str]] = [run]
        for i, v in enumerate(s.values):
            if v is None:
                run = []
                runs.append(run)
                continue
            run.append(f"{_num(x_of(i))},{_num(frame.y_of(_within(float(v), top), top))}")
        for r in runs:
            if len(r) > 1:
                frame.parts.append(
                    f'<polyline class="line" points="{" ".join(r)}" fill="none" '
                    f'stroke="{colour}" stroke-width="2.5"/>'
                )
        for i, v in enumerate(s.values):
            if v is not None:
                frame.parts.append(
                    f'<circle class="point" cx="{_num(x_of(i))}" '
                    f'cy="{_num(frame.y_of(_within(float(v), top), top))}" r="3.5" fill="{colour}">'
                    f"<title>{escape(s.name)}, {escape(x_labels[i])}: {escape(fmt(float(v)))}"
                    "</title></circle>"
                )
        # Legend: a row under the title.
        lx = LEFT + sum(28 + 6.5 * len(other.name) for other in series[:k])
        frame.parts.append(
            f'<rect class="legend" x="{_num(lx)}" y="{LEGEND_Y}" width="10" height="10" '
            f'fill="{colour}"/><text x="{_num(lx + 14)}" y="{LEGEND_Y + 9}" font-size="11" '
            f'fill="{AXIS}">{escape(s.name)}</text>'
        )
    return frame.svg()


# --- time axes -----------------------------------------------------------------------------------

PERIODS = ("day", "week")


def period_start(day: date, period: str) -> date:
    """The first day of the period holding ``day``: itself, or the Monday of its ISO week (as
    PostgreSQL's ``date_trunc('week', …)``)."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "day":
        return day
    raise ValueError(f"period is one of {PERIODS}, not {period!r}")


def period_axis(*, end: date, period: str, count: int) -> list[date]:
    """The last ``count`` periods up to the one holding ``end``, oldest first (every period,
    so a period without data is a gap on the chart, not a missing x)."""
    last = period_start(end, period)
    step = timedelta(days=7 if period == "week" else 1)
    return [last - step * i for i in range(count - 1, -1, -1)]


def period_label(start: date, period: str) -> str:
    return f"wk {start:%m-%d}" if period == "week" else f"{start:%m-%d}"
