"""Charts as inline SVG: the geometry is computed here, the markup is ``templates/charts.html.j2``.

No script, render offline, testable as text. Every chart is an ``<svg class="chart">`` with
``data-series`` and ``data-points`` attributes (the number of series and of plotted points), each
point a ``<circle>`` or ``<rect>`` with a ``<title>`` holding its label and value, so a reader
hovering sees the figure and a test can count them. Labels (series names, x labels, titles) stay
text here and are escaped by the template, like any other value of the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7480", "#6e7781")
Fmt = Callable[[float], str]
MAX_DOTS = 400
"""Above this many points a line chart draws only each series' last point as a dot."""


def pct(v: float) -> str:
    return f"{v:.2%}"


def num(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 2.5, 5, 10):
        for exp in range(-3, 12):
            top = step * 10 ** exp
            if top >= v:
                return top
    return v


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    tip: str
    """The point's <title>: series, x label and value."""


@dataclass
class Line:
    colour: str
    path: list[tuple[float, float]]
    """The polyline's points (empty for a single point)."""
    dots: list[Dot]


@dataclass
class LineChart:
    width: int
    height: int
    title: str
    left: int
    right: int
    """x of the plot's right edge."""
    series: int
    points: int
    grid: list[tuple[float, str]]
    """(y, label) of the horizontal grid lines."""
    x_labels: list[tuple[float, str]]
    x_label_y: int
    target: tuple[float, str] | None
    """(y, label) of the dashed target line."""
    lines: list[Line]
    legend: list[tuple[int, str, str]] = field(default_factory=list)
    """(x, colour, series name) when there is more than one series."""
    kind: str = "line"


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    width: float
    colour: str
    value: str


@dataclass
class BarChart:
    width: int
    height: int
    title: str
    left: int
    bar: int
    """Height of one bar."""
    bars: list[Bar]
    target_x: float | None
    top: int
    kind: str = "bar"


def line_chart(series: Sequence[tuple[str, Sequence[tuple[str, float | None]]]], *, fmt: Fmt = num,
               target: float | None = None, ratio: bool = False, width: int = 720, height: int = 240,
               title: str = "") -> LineChart | None:
    """Lines over a shared ordered x axis (labels such as run days or months); None when there is nothing to draw.

    ``series``: (name, [(x label, value or None)]); ``ratio`` fixes the y axis to 0–100%, else it runs
    from 0 to a round number above the largest value. ``target`` draws a dashed line.
    """
    xs = sorted({x for _, pts in series for x, _v in pts})
    values = [v for _, pts in series for _, v in pts if v is not None]
    if not xs or not values:
        return None
    left, right, top, bottom = 64, 34, 16 + (14 if title else 0), 40
    pw, ph = width - left - right, height - top - bottom
    if ratio:
        lo = min(min(values), target if target is not None else 1.0)
        y0 = 0.0 if lo < 0.5 else (0.5 if lo < 0.8 else (0.8 if lo < 0.9 else 0.9))
        y1 = 1.0
    else:
        y0, y1 = 0.0, _nice_max(max(values + ([target] if target is not None else [])))
    span = (y1 - y0) or 1.0

    def X(i: int) -> float:
        return left + (pw * i / (len(xs) - 1) if len(xs) > 1 else pw / 2)

    def Y(v: float) -> float:
        return top + ph - ph * (max(min(v, y1), y0) - y0) / span

    n_points = sum(1 for _, pts in series for _, v in pts if v is not None)
    index = {x: i for i, x in enumerate(xs)}
    lines = []
    for s, (name, pts) in enumerate(series):
        coords = [(X(index[x]), Y(v), x, v) for x, v in sorted(pts) if v is not None]
        shown = coords if n_points <= MAX_DOTS or len(coords) == 1 else coords[-1:]
        lines.append(Line(PALETTE[s % len(PALETTE)], [(a, b) for a, b, _, _ in coords] if len(coords) > 1 else [],
                          [Dot(a, b, f"{name} · {x}: {fmt(v)}") for a, b, x, v in shown]))
    legend, x = [], left
    if len(series) > 1:
        for s, (name, _) in enumerate(series):
            legend.append((x, PALETTE[s % len(PALETTE)], name))
            x += 22 + 7 * len(name) + 5 * sum(1 for ch in name if ord(ch) > 0x2E80)
    step = max(1, len(xs) // 8)
    return LineChart(
        width=width, height=height, title=title, left=left, right=left + pw, series=len(series), points=n_points,
        grid=[(Y(y0 + span * k / 4), fmt(y0 + span * k / 4)) for k in range(5)],
        x_labels=[(X(i), xs[i]) for i in range(0, len(xs), step)], x_label_y=top + ph + 16,
        target=(Y(target), fmt(target)) if target is not None and y0 <= target <= y1 else None,
        lines=lines, legend=legend)


def bar_chart(bars: Sequence[tuple[str, float]], *, fmt: Fmt = num, width: int = 720, bar: int = 18,
              ratio: bool = False, title: str = "", target: float | None = None) -> BarChart | None:
    """Horizontal bars, one per (label, value), in the given order; None when there are none."""
    if not bars:
        return None
    left, right, top = 200, 80, 8 + (16 if title else 0)
    height = top + len(bars) * (bar + 6) + 8
    top_value = 1.0 if ratio else _nice_max(max(v for _, v in bars))
    pw = width - left - right
    drawn = [Bar(label, top + i * (bar + 6), max(1.0, pw * max(v, 0) / top_value),
                 PALETTE[1] if target is not None and v < target else PALETTE[0], fmt(v))
             for i, (label, v) in enumerate(bars)]
    return BarChart(width=width, height=height, title=title, left=left, bar=bar, bars=drawn, top=top,
                    target_x=left + pw * target / top_value if target is not None else None)
