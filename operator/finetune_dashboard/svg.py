"""Charts as server-side SVG (pure).

Why SVG from the server rather than a vendored JavaScript chart library: a series holds at most 256 points,
so a chart is a few kilobytes of markup; the page works without JavaScript and without any CDN, there is no
third-party file to vendor, licence and update, the drawing is a pure function the unit tests check point
by point, and the live-update stream only has to swap HTML.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from finetune_dashboard.markup import Html, esc, number

Point = tuple[float, float]
COLOURS = ("#1f6feb", "#d9480f", "#2f9e44", "#7048e8")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]


def _finite(points: Sequence[Point]) -> list[Point]:
    return [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]


def _bounds(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:  # a flat line sits in the middle
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def scale(
    points: Sequence[Point], x_range: Point, y_range: Point, box: tuple[float, float, float, float]
) -> list[Point]:
    """Data coordinates -> SVG coordinates inside box (left, top, width, height); y grows downwards."""
    left, top, width, height = box
    (x0, x1), (y0, y1) = x_range, y_range
    sx = width / (x1 - x0) if x1 != x0 else 0.0
    return [
        (
            round(left + (x - x0) * sx + (width / 2 if x1 == x0 else 0), 1),
            round(top + height - (y - y0) * height / (y1 - y0), 1),
        )
        for x, y in points
    ]


def chart(title: str, series: Sequence[Series], width: int = 460, height: int = 200) -> Html:
    """A labelled line chart: one polyline per series, y range and x (step) range written on the axes."""
    drawn = [Series(s.name, _finite(s.points)) for s in series]
    drawn = [s for s in drawn if s.points]
    if not drawn:
        return Html(f'<figure class="chart empty"><figcaption>{esc(title)}</figcaption><p>no points yet</p></figure>')
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    x_range, y_range = (min(xs), max(xs)), _bounds(ys)
    box = (52.0, 8.0, width - 60.0, height - 36.0)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="{esc(title)}" data-chart="{esc(title)}">',
        f'<rect x="{box[0]}" y="{box[1]}" width="{box[2]}" height="{box[3]}" class="plot"/>',
        f'<text x="{box[0] - 4}" y="{box[1] + 10}" text-anchor="end">{number(y_range[1])}</text>',
        f'<text x="{box[0] - 4}" y="{box[1] + box[3]}" text-anchor="end">{number(y_range[0])}</text>',
        f'<text x="{box[0]}" y="{height - 8}">step {number(x_range[0])}</text>',
        f'<text x="{box[0] + box[2]}" y="{height - 8}" text-anchor="end">step {number(x_range[1])}</text>',
    ]
    for index, s in enumerate(drawn):
        colour = COLOURS[index % len(COLOURS)]
        coordinates = " ".join(f"{x},{y}" for x, y in scale(s.points, x_range, y_range, box))
        parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="1.6"'
            f' data-series="{esc(s.name)}" data-points="{len(s.points)}"><title>{esc(s.name)}</title></polyline>'
        )
        if len(s.points) <= 32:  # sparse series (evaluations): a dot per point, so a single one shows
            parts.extend(
                f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>'
                for x, y in scale(s.points, x_range, y_range, box)
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch c{i % len(COLOURS)}"></span>{esc(s.name)}'
        f" (last {number(s.points[-1][1])}, min {number(min(y for _, y in s.points))})</li>"
        for i, s in enumerate(drawn)
    )
    caption = f"<figcaption>{esc(title)}</figcaption>"
    return Html(f'<figure class="chart">{caption}{"".join(parts)}<ul class="legend">{legend}</ul></figure>')


def sparkline(points: Sequence[Point], label: str, width: int = 120, height: int = 24) -> Html:
    finite = _finite(points)
    if len(finite) < 2:
        return Html('<span class="muted">-</span>')
    xs, ys = [x for x, _ in finite], [y for _, y in finite]
    coordinates = " ".join(
        f"{x},{y}" for x, y in scale(finite, (min(xs), max(xs)), _bounds(ys), (1.0, 1.0, width - 2.0, height - 2.0))
    )
    return Html(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="{esc(label)}"><polyline points="{coordinates}" fill="none" stroke="#1f6feb"'
        f' stroke-width="1.2"/></svg>'
    )
