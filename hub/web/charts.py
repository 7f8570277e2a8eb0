"""Bar charts as inline SVG strings: values in, markup out, nothing else.

Server-rendered so the dashboard needs no chart library and works without
scripts; pure so any counts can be tested directly.  Each chart is an
``<svg role="img">`` whose ``aria-label`` sums it up for a screen reader, each
bar carries a ``<title>`` (the hover text) and its value in ``data-value``.
Colours come from the page's stylesheet through classes (``bar``, ``s0``..).
With nothing to draw, the chart says so in words instead of an empty frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 400
COLUMN_HEIGHT = 200
FONT = 11
TOP, BOTTOM, LEFT, RIGHT = 12, 22, 34, 6
ROW = 22  # horizontal bars: the height of one label's row
NAME_WIDTH = 130
NAME_CHARS = 18  # what fits in NAME_WIDTH at the names' size


@dataclass(frozen=True, slots=True)
class Bar:
    """One column: ``label`` under the axis ('' leaves it unlabelled), ``title`` on hover."""

    label: str
    value: float
    title: str


@dataclass(frozen=True, slots=True)
class Series:
    """One set of values in a horizontal chart, drawn with CSS class ``s{index}``."""

    name: str
    values: Sequence[float]


def _num(value: float) -> str:
    """A coordinate with at most two decimals (small markup, stable for tests)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def nice_max(value: float) -> float:
    """The axis top: the first of 1, 2, 4, 6, 8 x 10^n at or above ``value`` (1 for nothing)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 4, 6, 8, 10):  # even: the half-way tick stays a whole number
        if factor * step >= value:
            return float(factor * step)
    return float(10 * step)


def axis_top(values: Sequence[float]) -> float:
    """A column chart's top: ``nice_max``, at least 2 so counts get whole-number ticks."""
    return max(nice_max(max(values, default=0.0)), 2.0)


def _fmt(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _open(label: str, width: float, height: float) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'width="{_num(width)}" height="{_num(height)}">'
    )


def _empty(label: str, message: str, height: float) -> str:
    return (
        _open(f"{label}: {message}", WIDTH, height)
        + f'<rect class="frame" x="0.5" y="0.5" width="{WIDTH - 1}" height="{_num(height - 1)}"'
        ' rx="8"/>'
        + f'<text class="empty" x="{WIDTH / 2:g}" y="{_num(height / 2)}" text-anchor="middle"'
        f' dominant-baseline="middle" font-size="{FONT + 3}">{escape(message)}</text></svg>'
    )


def _clean(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


def column_chart(bars: Sequence[Bar], *, label: str, empty: str = "No plays yet") -> str:
    """Vertical bars over a value axis (0, half, top), labels under the bars."""
    values = [_clean(b.value) for b in bars]
    if not bars or not any(values):
        return _empty(label, empty, COLUMN_HEIGHT * 0.6)
    top = axis_top(values)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = COLUMN_HEIGHT - TOP - BOTTOM
    slot = plot_w / len(bars)
    gap = min(slot * 0.2, 4)
    total = sum(values)
    parts = [
        _open(f"{label}: {_fmt(total)} in all, at most {_fmt(max(values))}", WIDTH, COLUMN_HEIGHT)
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y)}" y2="{_num(y)}"/>'
            f'<text class="axis" x="{LEFT - 4}" y="{_num(y)}" text-anchor="end"'
            f' dominant-baseline="middle" font-size="{FONT}">{_fmt(top * fraction)}</text>'
        )
    for i, (bar, value) in enumerate(zip(bars, values, strict=True)):
        h = plot_h * value / top
        x = LEFT + i * slot + gap / 2
        parts.append(
            f'<rect class="bar" x="{_num(x)}" y="{_num(TOP + plot_h - h)}"'
            f' width="{_num(slot - gap)}" height="{_num(h)}" data-value="{_fmt(value)}">'
            f"<title>{escape(bar.title)}</title></rect>"
        )
        if bar.label:
            centre = x + (slot - gap) / 2
            # a label near the right edge ends at its bar rather than running off the chart
            anchor, at = ("end", x + slot - gap) if centre > WIDTH - 40 else ("middle", centre)
            parts.append(
                f'<text class="axis" x="{_num(at)}" y="{COLUMN_HEIGHT - 6}"'
                f' text-anchor="{anchor}" font-size="{FONT}">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    empty: str = "Nothing yet",
    unit: str = "",
) -> str:
    """One row per label, one thin bar per series in it, the value written after each bar."""
    if any(len(s.values) != len(labels) for s in series):
        raise ValueError("every series needs one value per label")
    cleaned = [[_clean(v) for v in s.values] for s in series]
    peak = max((v for vals in cleaned for v in vals), default=0.0)
    if not labels or not series or peak == 0:
        return _empty(label, empty, COLUMN_HEIGHT * 0.6)
    legend = len(series) > 1
    top_pad = ROW if legend else 4
    row_h = max(ROW, 14 * len(series) + 8)
    height = top_pad + row_h * len(labels) + 4
    bar_x = NAME_WIDTH + 6
    room = WIDTH - bar_x - 40  # space left for the value's text
    thick = (row_h - 8) / len(series)
    summary = ", ".join(
        f"{s.name} {_fmt(sum(vals))}" for s, vals in zip(series, cleaned, strict=True)
    )
    parts = [_open(f"{label}: {summary}", WIDTH, height)]
    if legend:
        x = float(bar_x)
        for index, s in enumerate(series):
            parts.append(
                f'<rect class="bar s{index}" x="{_num(x)}" y="5" width="10" height="10"/>'
                f'<text class="axis" x="{_num(x + 14)}" y="14" font-size="{FONT}">'
                f"{escape(s.name)}</text>"
            )
            x += 14 + 7 * len(s.name) + 14
    for row, name in enumerate(labels):
        y0 = top_pad + row * row_h
        short = name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"
        parts.append(
            f'<text class="name" x="0" y="{_num(y0 + row_h / 2)}"'
            f' dominant-baseline="middle" font-size="{FONT + 1}"><title>{escape(name)}</title>'
            f"{escape(short)}</text>"
        )
        for index, (s, vals) in enumerate(zip(series, cleaned, strict=True)):
            value = vals[row]
            w = room * value / peak
            y = y0 + 4 + index * thick
            what = f"{name}: {_fmt(value)}{unit} {s.name}".strip()
            parts.append(
                f'<rect class="bar s{index}" x="{bar_x}" y="{_num(y)}" width="{_num(w)}"'
                f' height="{_num(max(thick - 2, 2))}" data-value="{_fmt(value)}">'
                f"<title>{escape(what)}</title></rect>"
            )
            if value:  # a zero has no bar to label; its row's other bars speak
                parts.append(
                    f'<text class="value" x="{_num(bar_x + w + 4)}" y="{_num(y + thick / 2)}"'
                    f' dominant-baseline="middle" font-size="{FONT}">{_fmt(value)}{escape(unit)}'
                    "</text>"
                )
    parts.append("</svg>")
    return "".join(parts)
