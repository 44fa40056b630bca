"""The SVG charts of the staff dashboards (``marketplace.charts``, pure): well-formed SVG with a
title, a description in words, axes and labels; bars and points where the data says; text
escaped; an empty chart that says so; the days and weeks of a time axis."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from marketplace import charts

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # fails on markup that is not well-formed XML


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_bar_chart_has_title_description_axes_and_one_bar_per_value():
    svg = charts.bar_chart(
        chart_id="c1",
        title="Worker trust",
        bars=[("0.0-0.5", 3), ("0.5-1.0", 6)],
        x_title="trust",
        y_title="workers",
    )
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find("svg:title", NS).text == "Worker trust"
    assert root.find("svg:desc", NS).text == "Worker trust. 0.0-0.5: 3, 0.5-1.0: 6."
    assert len(root.findall(".//svg:line[@class='axis']", NS)) == 2
    bars = root.findall(".//svg:rect[@class='bar']", NS)
    assert len(bars) == 2
    # Heights in proportion to the values, on an axis topped at a round number (10 here).
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] == pytest.approx(2 * heights[0], rel=0.02)
    plot = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert heights[1] == pytest.approx(plot * 6 / 10, abs=0.1)
    labels = texts(root)
    assert {"0.0-0.5", "0.5-1.0", "trust", "workers", "0", "10"} <= set(labels)
    assert [b.find("svg:title", NS).text for b in bars] == ["0.0-0.5: 3", "0.5-1.0: 6"]


def test_bar_chart_formats_the_axis_and_the_values_with_the_given_function():
    svg = charts.bar_chart(
        chart_id="m", title="Money", bars=[("escrow", 1234)], fmt=lambda v: f"${v / 100:.2f}"
    )
    root = parse(svg)
    assert "$12.34" in root.find("svg:desc", NS).text
    assert "$20.00" in texts(root)  # the top of the axis: the next round number above 1234


def test_an_empty_chart_is_a_frame_that_says_so_and_draws_nothing():
    for svg in (
        charts.bar_chart(chart_id="e", title="Nothing", bars=[("a", 0), ("b", 0)]),
        charts.bar_chart(chart_id="e", title="Nothing", bars=[]),
        charts.line_chart(
            chart_id="e",
            title="Nothing",
            x_labels=["a", "b"],
            series=[charts.Series("s", [None, None])],
        ),
    ):
        root = parse(svg)
        assert root.findall(".//svg:rect[@class='bar']", NS) == []
        assert root.findall(".//svg:circle", NS) == []
        assert root.find(".//svg:text[@class='empty']", NS).text == "No data yet"
        assert root.find("svg:desc", NS).text == "Nothing. No data yet."


def test_line_chart_draws_a_point_per_value_and_leaves_gaps_for_none():
    svg = charts.line_chart(
        chart_id="q",
        title="Gold pass rate",
        x_labels=["d1", "d2", "d3", "d4", "d5"],
        series=[
            charts.Series("gold", [0.5, 1.0, None, 0.25, 0.75]),
            charts.Series("agreement", [0.9, None, None, None, None]),
        ],
        y_max=1.0,
        fmt=lambda v: f"{v * 100:.0f}%",
    )
    root = parse(svg)
    points = root.findall(".//svg:circle[@class='point']", NS)
    assert len(points) == 5
    lines = root.findall(".//svg:polyline[@class='line']", NS)
    # gold: d1-d2 and d4-d5 (the None breaks it); agreement has one point, no line.
    assert [len(pl.get("points").split()) for pl in lines] == [2, 2]
    ys = [float(p.get("cy")) for p in points[:4]]
    bottom, top = charts.HEIGHT - charts.BOTTOM, charts.TOP
    assert ys[1] == pytest.approx(top, abs=0.1)  # 100% at the top of the axis
    assert ys[0] == pytest.approx((top + bottom) / 2, abs=0.1)
    desc = root.find("svg:desc", NS).text
    assert "gold: d1 50%, d2 100%, d4 25%, d5 75%" in desc
    assert "agreement: d1 90%" in desc
    assert {"0%", "20%", "100%", "gold", "agreement"} <= set(texts(root))


def test_line_chart_refuses_a_series_of_the_wrong_length():
    with pytest.raises(ValueError):
        charts.line_chart(
            chart_id="x", title="t", x_labels=["a", "b"], series=[charts.Series("s", [1.0])]
        )


def test_text_is_escaped_so_data_cannot_inject_markup():
    svg = charts.bar_chart(chart_id='x"><script>', title="<b>t</b> & co", bars=[("<img src=x>", 1)])
    assert "<script>" not in svg and "<img" not in svg and "<b>" not in svg
    root = parse(svg)
    assert root.find("svg:title", NS).text == "<b>t</b> & co"


def test_values_outside_the_axis_are_drawn_on_its_edge_inside_the_plot():
    svg = charts.line_chart(
        chart_id="x",
        title="t",
        x_labels=["a", "b"],
        series=[charts.Series("s", [3.0, -2.0])],
        y_max=1.0,
    )
    high, low = parse(svg).findall(".//svg:circle", NS)
    assert float(high.get("cy")) == pytest.approx(charts.TOP)
    assert float(low.get("cy")) == pytest.approx(charts.HEIGHT - charts.BOTTOM)
    assert high.find("svg:title", NS).text == "s, a: 3"  # the true value, in words


def test_many_x_labels_are_thinned_so_they_do_not_overlap():
    labels = [f"11-{d:02d}" for d in range(1, 31)]
    svg = charts.bar_chart(chart_id="x", title="t", bars=[(x, 1) for x in labels])
    shown = [t for t in texts(parse(svg)) if re.fullmatch(r"11-\d\d", t)]
    assert 5 <= len(shown) < 30 and shown[0] == "11-01"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1.0), (1, 1.0), (7, 10.0), (12, 20.0), (0.3, 0.5), (2400, 2500.0), (-5, 1.0)],
)
def test_nice_ceiling(value, expected):
    assert charts.nice_ceiling(value) == expected


def test_period_axis_lists_every_day_or_monday_up_to_the_end():
    end = date(2026, 12, 1)  # a Tuesday
    assert charts.period_axis(end=end, period="day", count=3) == [
        date(2026, 11, 29),
        date(2026, 11, 30),
        date(2026, 12, 1),
    ]
    assert charts.period_axis(end=end, period="week", count=2) == [
        date(2026, 11, 23),
        date(2026, 11, 30),
    ]
    assert charts.period_label(date(2026, 11, 30), "week") == "wk 11-30"
    with pytest.raises(ValueError):
        charts.period_start(end, "month")


def test_the_legend_is_a_row_between_the_title_and_the_plot():
    svg = charts.line_chart(
        chart_id="x",
        title="A long title that spans much of the chart's width, per day",
        x_labels=["a", "b"],
        series=[charts.Series("gold pass rate", [0.5, 1.0]), charts.Series("agreement", [1, 1])],
        y_max=1.0,
    )
    swatches = parse(svg).findall(".//svg:rect[@class='legend']", NS)
    assert len(swatches) == 2
    title_baseline = 18
    for swatch in swatches:
        y = float(swatch.get("y"))
        assert title_baseline < y and y + float(swatch.get("height")) <= charts.TOP
    first, second = (float(s.get("x")) for s in swatches)
    assert second - first >= 14 + 6 * len("gold pass rate")  # the first name fits before it


@pytest.mark.parametrize(
    ("top", "steps"), [(1.0, 5), (5.0, 5), (10.0, 5), (20.0, 4), (2.5, 5), (250.0, 5), (0, 4)]
)
def test_tick_count_makes_round_steps(top, steps):
    assert charts.tick_count(top) == steps


def test_counts_get_whole_steps_and_long_labels_get_room():
    root = parse(charts.bar_chart(chart_id="c", title="t", bars=[("a", 1), ("b", 0)]))
    assert [t for t in texts(root) if t.replace(".", "").isdigit()][:6] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    money = lambda v: f"${v / 100:,.2f}"  # noqa: E731
    root = parse(
        charts.bar_chart(chart_id="m", title="t", bars=[("escrow", 4_000_000_000)], fmt=money)
    )
    for label in root.iter("{http://www.w3.org/2000/svg}text"):
        if label.get("text-anchor") == "end":  # a y label, right-aligned at x
            assert float(label.get("x")) - charts.CHAR_WIDTH * len(label.text) >= 0


def test_a_time_axis_always_names_its_last_period():
    labels = [f"11-{d:02d}" for d in range(1, 31)]
    svg = charts.line_chart(
        chart_id="x", title="t", x_labels=labels, series=[charts.Series("s", [1.0] * 30)]
    )
    shown = [t for t in texts(parse(svg)) if re.fullmatch(r"11-\d\d", t)]
    assert shown[-1] == "11-30" and len(shown) < 30
