"""Inline SVG charts for the health page: horizontal bars and lines over time.

Drawn here rather than with a plotting library: two chart kinds of a few dozen lines
each, with no dependency, no script and no network, and text a browser can search.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html import escape

PALETTE = ("#2f6db5", "#d9822b", "#3a9a5b", "#b33a3a", "#7d55a8", "#8c6d4f", "#c25c9b", "#5f6b73")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = "#222") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">{escape(text)}</text>'


def bars(items: list[tuple[str, float]], label: Callable[[float], str], *, title: str, width: int = 760) -> str:
    """One bar a row, longest first as given; ``label`` shows each value beside its bar."""
    if not items:
        return ""
    row, name_w, value_w = 22, 260, 90
    plot = width - name_w - value_w
    top = max(v for _, v in items) or 1.0
    height = row * len(items) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {FONT}><title>{escape(title)}</title>']
    for i, (name, value) in enumerate(items):
        y = 4 + i * row
        length = max(plot * value / top, 1.0 if value else 0.0)
        shown = name if len(name) <= 38 else name[:37] + "…"
        parts.append(_text(name_w - 8, y + 15, shown, "end"))
        parts.append(f'<rect x="{name_w}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" fill="{PALETTE[0]}">'
                     f'<title>{escape(name)}: {escape(label(value))}</title></rect>')
        parts.append(_text(name_w + length + 6, y + 15, label(value)))
    parts.append("</svg>")
    return "".join(parts)


def lines(series: dict[str, list[tuple[dt.datetime, float]]], *, title: str, unit: str = "s",
          width: int = 760, height: int = 260) -> str:
    """One line a series over a shared time axis, with a legend; values from zero up."""
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    left, right, top, bottom = 56, 16, 12, 40 + 18 * ((len(series) + 2) // 3)
    plot_w, plot_h = width - left - right, height - top - bottom
    t0, t1 = min(t for t, _ in points).timestamp(), max(t for t, _ in points).timestamp()
    span = (t1 - t0) or 1.0
    ymax = max(v for _, v in points) * 1.1 or 1.0

    def x(t: dt.datetime) -> float:
        return left + plot_w * ((t.timestamp() - t0) / span if t1 > t0 else 0.5)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {FONT}><title>{escape(title)}</title>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>']
    for k in range(5):  # value grid
        v = ymax * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
        parts.append(_text(left - 6, y(v) + 4, f"{v:.3g} {unit}", "end", "#555"))
    for k in range(3):  # time axis: first, middle, last
        t = dt.datetime.fromtimestamp(t0 + span * k / 2, tz=points[0][0].tzinfo)
        parts.append(_text(left + plot_w * k / 2, top + plot_h + 16, t.strftime("%m-%d %H:%M"),
                           ("start", "middle", "end")[k], "#555"))
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"><title>{escape(name)} '
                  f'{t:%Y-%m-%d %H:%M:%S}: {v:g} {unit}</title></circle>' for t, v in values]
        lx, ly = left + (i % 3) * (plot_w / 3), top + plot_h + 36 + 18 * (i // 3)
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 9:.1f}" width="12" height="4" fill="{color}"/>')
        parts.append(_text(lx + 18, ly, name))
    parts.append("</svg>")
    return "".join(parts)
