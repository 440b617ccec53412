"""Charts as inline SVG, drawn in Python: no script, render offline, testable as text.

Every chart is an ``<svg class="chart">`` with ``data-series`` and ``data-points`` attributes (the
number of series and of plotted points), each point a ``<circle>`` or ``<rect>`` with a ``<title>``
holding its label and value, so a reader hovering sees the figure and a test can count them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7480", "#6e7781")
Fmt = Callable[[float], str]


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


def line_chart(series: Sequence[tuple[str, Sequence[tuple[str, float | None]]]], *, fmt: Fmt = num,
               target: float | None = None, ratio: bool = False, width: int = 720, height: int = 240,
               title: str = "") -> str:
    """Lines over a shared ordered x axis (labels such as run days or months).

    ``series``: (name, [(x label, value or None)]); ``ratio`` fixes the y axis to 0–100%, else it runs
    from 0 to a round number above the largest value. ``target`` draws a dashed line.
    """
    xs: list[str] = []
    for _, pts in series:
        for x, _v in pts:
            if x not in xs:
                xs.append(x)
    xs.sort()
    values = [v for _, pts in series for _, v in pts if v is not None]
    if not xs or not values:
        return '<p class="muted">无数据 · no data</p>'
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
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
           f'data-series="{len(series)}" data-points="{n_points}">']
    if title:
        out.append(f'<text x="{left}" y="12" class="ct">{escape(title)}</text>')
    for k in range(5):
        v = y0 + span * k / 4
        y = Y(v)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" class="ax" text-anchor="end">{escape(fmt(v))}</text>')
    step = max(1, len(xs) // 8)
    for i in range(0, len(xs), step):
        out.append(f'<text x="{X(i):.1f}" y="{top + ph + 16}" class="ax" text-anchor="middle">{escape(xs[i])}</text>')
    if target is not None and y0 <= target <= y1:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(target):.1f}" y2="{Y(target):.1f}" class="target">'
                   f'<title>目标 target {escape(fmt(target))}</title></line>')
    index = {x: i for i, x in enumerate(xs)}
    dots = n_points <= 400
    for s, (name, pts) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        coords = [(X(index[x]), Y(v), x, v) for x, v in sorted(pts) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in coords)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        for a, b, x, v in coords if dots or len(coords) == 1 else coords[-1:]:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.6" fill="{colour}">'
                       f'<title>{escape(name)} · {escape(x)}: {escape(fmt(v))}</title></circle>')
    if len(series) > 1:
        x = left
        for s, (name, _) in enumerate(series):
            colour = PALETTE[s % len(PALETTE)]
            out.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                       f'<text x="{x + 14}" y="{height - 5}" class="ax">{escape(name)}</text>')
            x += 22 + 7 * len(name) + 5 * sum(1 for ch in name if ord(ch) > 0x2E80)
    out.append("</svg>")
    return "".join(out)


def bar_chart(bars: Sequence[tuple[str, float]], *, fmt: Fmt = num, width: int = 720, bar: int = 18,
              ratio: bool = False, title: str = "", target: float | None = None) -> str:
    """Horizontal bars, one per (label, value), in the given order."""
    if not bars:
        return '<p class="muted">无数据 · no data</p>'
    left, right, top = 200, 80, 8 + (16 if title else 0)
    height = top + len(bars) * (bar + 6) + 8
    top_value = 1.0 if ratio else _nice_max(max(v for _, v in bars))
    pw = width - left - right
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
           f'data-series="1" data-points="{len(bars)}">']
    if title:
        out.append(f'<text x="4" y="14" class="ct">{escape(title)}</text>')
    for i, (label, v) in enumerate(bars):
        y = top + i * (bar + 6)
        w = max(1.0, pw * max(v, 0) / top_value)
        colour = PALETTE[1] if target is not None and v < target else PALETTE[0]
        out.append(f'<text x="{left - 6}" y="{y + bar - 5}" class="ax" text-anchor="end">{escape(label)}</text>'
                   f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}">'
                   f'<title>{escape(label)}: {escape(fmt(v))}</title></rect>'
                   f'<text x="{left + w + 4:.1f}" y="{y + bar - 5}" class="ax">{escape(fmt(v))}</text>')
    if target is not None:
        x = left + pw * target / top_value
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 4}" class="target"/>')
    out.append("</svg>")
    return "".join(out)
