"""Escaping, number formatting and the SVG charts (pure)."""

from __future__ import annotations

import re

from finetune_dashboard import svg
from finetune_dashboard.markup import Html, duration, esc, number, url


def test_esc_escapes_markup_and_quotes_but_not_twice() -> None:
    assert esc('<script>alert("x")</script>') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert esc("a'b") == "a&#x27;b"
    assert esc(esc("<b>")) == "&lt;b&gt;"
    assert esc(Html("<b>ok</b>")) == "<b>ok</b>"
    assert esc(None) == ""


def test_url_percent_encodes_segments_and_query() -> None:
    assert url("jobs", "ns", "a/b?c") == "/jobs/ns/a%2Fb%3Fc"
    assert url("registry", query={"model": "m&x=1"}, anchor="mv-a b") == "/registry?model=m%26x%3D1#mv-a%20b"


def test_numbers_and_durations_read_well() -> None:
    assert number(6.320886) == "6.321"
    assert number(0.0002) == "2.00e-04"
    assert number(5400.0) == "5,400"
    assert number(12) == "12"
    assert number(None) == "-"
    assert duration(42) == "42s"
    assert duration(600) == "10m00s"
    assert duration(3 * 3600 + 120) == "3h02m"
    assert duration(None) == "-"


def polyline_points(markup: str, series: str) -> list[tuple[float, float]]:
    match = re.search(rf'<polyline points="([^"]*)"[^>]*data-series="{series}"', markup)
    assert match, markup
    return [(float(x), float(y)) for x, y in (p.split(",") for p in match.group(1).split())]


def test_chart_draws_every_point_inside_the_plot_with_the_minimum_lowest() -> None:
    loss = [(1.0, 4.0), (2.0, 3.0), (3.0, 1.0), (4.0, 2.0)]
    markup = svg.chart("Loss", [svg.Series("train loss", loss)], width=460, height=200)
    drawn = polyline_points(markup, "train loss")
    assert len(drawn) == 4 and 'data-points="4"' in markup
    left, top, width, height = 52.0, 8.0, 400.0, 164.0
    assert all(left <= x <= left + width and top <= y <= top + height for x, y in drawn)
    assert [x for x, _ in drawn] == sorted(x for x, _ in drawn)
    # SVG y grows downwards: the highest loss is drawn at the top, the minimum at the bottom.
    assert drawn[0][1] == top and drawn[2][1] == top + height
    assert "step 1" in markup and "step 4" in markup


def test_chart_skips_non_finite_points_and_says_when_there_are_none() -> None:
    markup = svg.chart("Loss", [svg.Series("l", [(1.0, float("nan")), (2.0, 1.0), (3.0, float("inf"))])])
    assert 'data-points="1"' in markup
    assert "no points yet" in svg.chart("Loss", [svg.Series("l", [])])


def test_chart_escapes_titles_and_series_names() -> None:
    markup = svg.chart("<script>t</script>", [svg.Series("<img src=x>", [(0.0, 1.0), (1.0, 2.0)])])
    assert "<script>" not in markup and "<img" not in markup
    assert "&lt;script&gt;" in markup


def test_sparkline_needs_two_points() -> None:
    assert "polyline" not in svg.sparkline([(1.0, 2.0)], "x")
    assert svg.sparkline([(1.0, 2.0), (2.0, 1.0)], "loss").count(",") == 2
