"""Charts of the report: what to draw (plain data) and drawing it with matplotlib (SVG and PNG).

Why matplotlib, and why this way: it draws error bars natively, writes SVG that can be inlined in
a self-contained HTML page and PNGs for the PDF through Agg, all from one pip install with no
system library. We never import ``pyplot``: a :class:`matplotlib.figure.Figure` with its own
canvas keeps no global figure registry. The style (``rcParams``) is process-global, so it is set
under a lock for each render; two threads rendering at once take turns. matplotlib is
imported inside the drawing functions, so importing this module (e.g. to build chart specs) stays
cheap.

Every bar or point shows its 95 % interval as a whisker. A suppressed value gets no bar and no
point, only the word "suppressed" where the bar would be: height would be a number we do not have.

Determinism: SVG ids are hashed from a fixed per-chart salt and the date metadata is dropped, so
the same chart gives the same bytes; the PNG backend (Agg) is deterministic already.
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_IN = 7.6
"""Figure width in inches: the PDF text width (180 mm) and a comfortable HTML column."""

PALETTE: tuple[str, ...] = ("#1f5fa8", "#e08a1e", "#2a9d6f", "#b5548f", "#56a6d9", "#c8553d", "#7a7a7a", "#8c6bb1")
"""Colour-blind-safe (Okabe-Ito inspired), dark enough for white backgrounds and print."""

INK = "#2b2b2b"
MUTED = "#6b6b6b"
PNG_DPI = 170


@dataclass(frozen=True)
class Point:
    """One value in display units (percent for rates) with its 95 % interval."""

    value: float | None
    low: float | None = None
    high: float | None = None
    suppressed: bool = False


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[Point, ...]
    color: str = ""
    emphasis: tuple[bool, ...] = ()  # per point: drawn stronger (e.g. the report month)
    colors: tuple[str, ...] = ()  # per point, overriding ``color`` (bars coloured by category)


@dataclass(frozen=True)
class Bars:
    """Grouped vertical bars: one group per category, one bar per series."""

    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str


@dataclass(frozen=True)
class Lines:
    """One line per series over ordered categories (months)."""

    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str


Panel = Bars | Lines


@dataclass(frozen=True)
class Chart:
    """One figure: panels laid out on a grid, one shared legend on top when it helps."""

    panels: tuple[Panel, ...]
    ncols: int = 1
    row_height: float = 3.0
    width_ratios: tuple[float, ...] = ()
    legend: bool = True

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) in inches; the PDF uses it to reserve space."""
        rows = math.ceil(len(self.panels) / self.ncols)
        return WIDTH_IN, self.row_height * rows + (0.35 if self._legend_entries() else 0.0)

    def _legend_entries(self) -> list[tuple[str, str]]:
        if not self.legend:
            return []
        seen: dict[str, str] = {}
        for panel in self.panels:
            for s in panel.series:
                if s.name:  # an unnamed series explains itself (e.g. bars coloured by category)
                    seen.setdefault(s.name, s.color)
        return list(seen.items()) if len(seen) > 1 else []


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


# --- drawing -----------------------------------------------------------------------------------


_RC_LOCK = threading.Lock()


@contextmanager
def _style(salt: str) -> Iterator[None]:
    """The report's look (and the SVG id salt) for one render, under a process-wide lock."""
    import matplotlib

    rc: dict[str, Any] = {
        "font.family": "DejaVu Sans",  # ships with matplotlib: same glyphs on every machine
        "font.size": 8,
        "axes.titlesize": 9,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.labelsize": 8,
        "axes.edgecolor": "#9a9a9a",
        "axes.labelcolor": INK,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.grid.axis": "y",
        "axes.axisbelow": True,
        "grid.color": "#e4e4e4",
        "grid.linewidth": 0.7,
        "xtick.color": INK,
        "ytick.color": INK,
        "xtick.labelsize": 7.5,
        "ytick.labelsize": 7.5,
        "legend.fontsize": 7.5,
        "svg.fonttype": "path",  # text as paths: no font needed by the reader
        "svg.hashsalt": salt,
        "hatch.color": "#b8b8b8",
    }
    with _RC_LOCK, matplotlib.rc_context(rc):
        yield


def _fmt_axis(unit: str) -> Any:
    from matplotlib.ticker import FuncFormatter

    if unit == "percent":
        return FuncFormatter(lambda v, _: f"{v:.0f}%")
    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def _needs_rotation(categories: tuple[str, ...], width_in: float) -> bool:
    """True when the category labels would collide written horizontally (≈ 0.075 in/char)."""
    if not categories:
        return False
    return max(len(c) for c in categories) * 0.07 > width_in / len(categories) * 0.92


def _set_categories(ax: Axes, categories: tuple[str, ...], width_in: float) -> None:
    ax.set_xticks(range(len(categories)))
    if _needs_rotation(categories, width_in):
        ax.set_xticklabels(categories, rotation=35, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticklabels(categories)
    ax.tick_params(axis="x", length=0)
    ax.set_xlim(-0.6, len(categories) - 0.4)


def _top(panel: Panel) -> float:
    """Upper y limit: room for the highest whisker; for shares at most a little over 100 %
    (a ratio's interval can reach past 100 % when its denominator is small; the whisker then
    runs off the top, and the table holds the exact bound)."""
    highs = [p.high if p.high is not None else p.value for s in panel.series for p in s.points if p.value is not None]
    top = max((h for h in highs if h is not None), default=1.0)
    top = top * 1.12 if top > 0 else 1.0
    values = [p.value for s in panel.series for p in s.points if p.value is not None]
    if panel.unit == "percent" and values and max(values) <= 100:
        top = min(top, 105.0)
    return top


def _yerr(p: Point) -> tuple[float, float]:
    """Whisker lengths below and above the value; an open side (None) gets no whisker."""
    assert p.value is not None
    low = p.value - p.low if p.low is not None else 0.0
    high = p.high - p.value if p.high is not None else 0.0
    return max(low, 0.0), max(high, 0.0)


def _suppressed_mark(ax: Axes, x: float, width: float) -> None:
    """A hatched, empty slot with the word 'suppressed': no height, so no number implied."""
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (x - width / 2, 0), width, 1, transform=ax.get_xaxis_transform(), fill=False,
            hatch="////", linewidth=0, zorder=0.5,
        )
    )  # fmt: skip
    ax.text(
        x, 0.03, "suppressed", transform=ax.get_xaxis_transform(), rotation=90, ha="center", va="bottom",
        fontsize=6.5, color=MUTED, style="italic", zorder=3,
        bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
    )  # fmt: skip


def _draw_bars(ax: Axes, panel: Bars, width_in: float) -> None:
    n = max(len(panel.series), 1)
    width = min(0.8 / n, 0.45)
    for si, series in enumerate(panel.series):
        offset = (si - (n - 1) / 2) * width
        for ci, p in enumerate(series.points):
            x = ci + offset
            if p.value is None:
                if p.suppressed:
                    _suppressed_mark(ax, x, width)
                continue
            strong = not series.emphasis or series.emphasis[ci]
            fill = series.colors[ci] if series.colors else series.color or color(si)
            ax.bar(x, p.value, width=width * 0.92, color=fill, alpha=1.0 if strong else 0.45, zorder=2)
            lo, hi = _yerr(p)
            ax.errorbar(x, p.value, yerr=[[lo], [hi]], fmt="none", ecolor=INK, elinewidth=0.9, capsize=2.2, capthick=0.9, zorder=4)
    _set_categories(ax, panel.categories, width_in)
    ax.set_ylim(0, _top(panel))


def _draw_lines(ax: Axes, panel: Lines, width_in: float) -> None:
    n = max(len(panel.series), 1)
    dodge = 0.06 if n > 1 else 0.0  # whiskers of different lines side by side, not on top of each other
    for si, series in enumerate(panel.series):
        c = series.color or color(si)
        offset = (si - (n - 1) / 2) * dodge
        xs = [ci + offset if p.value is not None else math.nan for ci, p in enumerate(series.points)]
        ys = [p.value if p.value is not None else math.nan for p in series.points]
        ax.plot(xs, ys, color=c, linewidth=1.6, marker="o", markersize=3.5, zorder=3)
        for ci, p in enumerate(series.points):
            if p.value is None:
                if p.suppressed:
                    ax.plot([ci + offset], [0], marker="x", color=c, markersize=5, clip_on=False, zorder=4, transform=ax.get_xaxis_transform())
                continue
            lo, hi = _yerr(p)
            ax.errorbar(ci + offset, p.value, yerr=[[lo], [hi]], fmt="none", ecolor=c, elinewidth=1.0, capsize=2.2, zorder=3)
    _set_categories(ax, panel.categories, width_in)
    ax.set_ylim(0, _top(panel))
    if any(p.suppressed for s in panel.series for p in s.points):
        ax.text(1.0, 1.01, "× suppressed", transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5, color=MUTED)


def figure(chart: Chart) -> Figure:
    """Draw ``chart`` on a new Figure (no pyplot); call inside :func:`_style`."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    width, height = chart.size
    rows = math.ceil(len(chart.panels) / chart.ncols)
    fig = Figure(figsize=(width, height), layout="constrained", facecolor="white")
    ratios = list(chart.width_ratios) if chart.width_ratios else [1.0] * chart.ncols
    axes = fig.subplots(rows, chart.ncols, squeeze=False, gridspec_kw={"width_ratios": ratios})
    for i, ax in enumerate(axes.flat):
        if i >= len(chart.panels):
            ax.set_visible(False)
            continue
        panel = chart.panels[i]
        panel_width = width * ratios[i % chart.ncols] / sum(ratios)
        if isinstance(panel, Bars):
            _draw_bars(ax, panel, panel_width)
        else:
            _draw_lines(ax, panel, panel_width)
        ax.yaxis.set_major_formatter(_fmt_axis(panel.unit))
        ax.set_title(panel.title)
        if not any(p.value is not None for s in panel.series for p in s.points):
            # Nothing to draw: ticks would be meaningless (0 %, 0 %, 1 %...); say why instead.
            ax.set_yticks([])
            ax.text(0.5, 0.55, "all suppressed\n(too few people)", transform=ax.transAxes, ha="center", va="center",
                    fontsize=9, color="#5b6570", bbox={"facecolor": "white", "edgecolor": "none", "pad": 2})
    entries = chart._legend_entries()
    if entries:
        lines = all(isinstance(p, Lines) for p in chart.panels)
        handles = [
            Line2D([], [], color=c or color(i), marker="o", markersize=4, linewidth=1.6, label=name)
            if lines
            else Patch(facecolor=c or color(i), label=name)
            for i, (name, c) in enumerate(entries)
        ]
        # one panel: legend under the plot, clear of its title; several: one legend over all of them
        where = "outside lower center" if len(chart.panels) == 1 else "outside upper center"
        fig.legend(handles=handles, loc=where, ncols=min(len(handles), 6), frameon=False)
    return fig


_ID = re.compile(r'\bid="([^"]+)"')


def _inline(svg: str, ident: str) -> str:
    """Matplotlib's SVG made fit for inlining: no prolog, metadata, comments or namespace URLs,
    and every id prefixed with ``ident`` so several charts can share one page."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = _ID.sub(lambda m: f'id="{ident}-{m.group(1)}"', svg)
    svg = svg.replace('href="#', f'href="#{ident}-').replace("url(#", f"url(#{ident}-")
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1', svg, count=1)
    return svg.replace("<svg ", f'<svg role="img" aria-labelledby="{ident}-cap" ', 1).strip()


def to_svg(chart: Chart, ident: str) -> str:
    """The chart as an ``<svg>`` element to inline in HTML (same chart, same bytes)."""
    buffer = io.StringIO()
    with _style(f"cleanroom-{ident}"):
        figure(chart).savefig(buffer, format="svg", metadata={"Date": None})
    return _inline(buffer.getvalue(), ident)


def to_png(chart: Chart) -> bytes:
    """The chart as PNG bytes for the PDF (Agg, deterministic)."""
    buffer = io.BytesIO()
    with _style("cleanroom-png"):
        figure(chart).savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return buffer.getvalue()


__all__ = ["Bars", "Chart", "Lines", "PALETTE", "Panel", "Point", "Series", "WIDTH_IN", "color", "figure", "to_png", "to_svg"]
