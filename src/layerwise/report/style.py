"""The one look of every figure: theme, fixed method colors and labels, spread bands over seeds,
layer axes, legends, and writing a figure as PDF and PNG.

Spread over seeds is shown as a shaded band of plus/minus one sample standard deviation
(``ddof=1``) around the mean, or, with ``band="minmax"``, as the min-max range; the axis label
says which. With a single seed the band has zero width.
"""

from __future__ import annotations

import contextlib
import math
import os
import textwrap
from collections.abc import Iterable, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import ScaledTranslation  # noqa: E402

from layerwise.io import atomic_path  # noqa: E402
from layerwise.train.methods import METHODS, ordered  # noqa: E402

PALETTE = sns.color_palette("colorblind", 10).as_hex()

#: Fixed color of each training method, in the order of `layerwise.train.methods.METHODS`
#: (standard blue, aligned orange, multi_exit green, ...), used in every figure.
# The six colorblind-safe colors the similarity curves leave, then for the lens on the aligned
# model a darker shade of the tuned lens' yellow.
_METHOD_PALETTE = [PALETTE[i] for i in (0, 1, 2, 3, 6, 8)] + [
    sns.color_palette("dark", 10).as_hex()[8]]
METHOD_COLORS: dict[str, str] = {
    name: _METHOD_PALETTE[i % len(_METHOD_PALETTE)] for i, name in enumerate(METHODS)}
#: Display name of each training method.
METHOD_LABELS: dict[str, str] = {name: record.label for name, record in METHODS.items()}
# Colors for methods outside METHOD_COLORS, handed out in order of first use.
_EXTRA_COLORS = [PALETTE[i] for i in (3, 6, 8, 9, 7)]
_extra_assigned: dict[str, str] = {}

# Colors and markers of the similarity curves against the last layer, in the order of the
# measures that have one (`layerwise.similarity.measures`): distinct from the method colors.
CURVE_COLORS = (PALETTE[4], PALETTE[5], PALETTE[7], PALETTE[9])
CURVE_MARKERS = ("s", "^", "D", "v")
REFERENCE_GREY = "#7f7f7f"

BAND_LABELS = {"sd": "mean ± 1 sd over seeds", "minmax": "mean, min–max over seeds"}


def method_color(method: str) -> str:
    """The fixed color of `method`; unknown methods get a stable color on first use."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    if method not in _extra_assigned:
        _extra_assigned[method] = _EXTRA_COLORS[len(_extra_assigned) % len(_EXTRA_COLORS)]
    return _extra_assigned[method]


def method_label(method: str) -> str:
    """The display name of `method`."""
    return METHOD_LABELS.get(method, str(method))


def ordered_methods(methods: Iterable[str]) -> list[str]:
    """Known methods in canonical order, then any others in order of first appearance."""
    return ordered(methods)


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """The shared style, applied only while a figure is being built."""
    params = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("paper", font_scale=1.25),
        "axes.titleweight": "bold",
        "legend.frameon": False,
    }
    with plt.rc_context(params):
        yield


def check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks columns {missing}; has {list(frame.columns)}")


def mean_band(frame: pd.DataFrame, x: str, y: str, band: str = "sd") -> pd.DataFrame:
    """Mean of `y` over seeds at each `x`, with the band's lower and upper edges.

    Returns columns ``x, mean, lo, hi, n``. ``band="sd"`` gives mean -/+ one sample standard
    deviation (zero width for a single seed); ``band="minmax"`` gives the min and max.
    """
    if band not in BAND_LABELS:
        raise ValueError(f"band must be one of {sorted(BAND_LABELS)}, got {band!r}")
    grouped = frame.groupby(x, sort=True)[y]
    stats = grouped.agg(mean="mean", sd="std", lo="min", hi="max", n="count").reset_index()
    if band == "sd":
        sd = stats["sd"].fillna(0.0)
        stats["lo"] = stats["mean"] - sd
        stats["hi"] = stats["mean"] + sd
    return stats[[x, "mean", "lo", "hi", "n"]]


def draw_band(ax, stats: pd.DataFrame, x: str, *, color, label: str | None = None,
              marker: str = "o") -> None:
    """A mean line with markers and a shaded band, as returned by :func:`mean_band`."""
    ax.fill_between(stats[x], stats["lo"], stats["hi"], color=color, alpha=0.2, linewidth=0)
    ax.plot(stats[x], stats["mean"], color=color, marker=marker, markersize=5, linewidth=1.8,
            label=label, clip_on=False, zorder=3)


def layer_axis(ax, layers: Sequence[int]) -> None:
    ax.set_xlabel("layer")
    # Integer ticks, as many as the drawn panel's width has room for: every layer on a wide
    # panel, every other one where twelve would crowd.
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))
    if len(layers):
        ax.set_xlim(min(layers) - 0.3, max(layers) + 0.3)


def legend_below(fig: Figure, ax) -> None:
    """The entries of `ax` as one legend under all panels (see :func:`figure_legend`)."""
    figure_legend(fig, *ax.get_legend_handles_labels())


def figure_legend(fig: Figure, handles: Sequence, labels: Sequence[str],
                  columns: int = 3) -> None:
    """One legend under all panels, no wider than the figure (a wider one widens the saved
    figure and leaves its panels off-centre): in at most `columns` columns, fewer where they
    do not fit, and its labels wrapped where one column does not; then as few columns as give
    the same number of rows (four entries in two rows of two, not of three and one)."""
    if not handles:
        return
    texts, width = list(labels), max(len(label) for label in labels)
    while True:
        ncols = next((n for n in range(min(len(handles), columns), 0, -1)
                      if _legend_width(fig, handles, texts, n) <= fig.bbox.width), None)
        if ncols is not None or width <= 20:
            break
        width = int(width * 0.85)
        texts = [_wrap_lines(label, width) for label in labels]
    rows = math.ceil(len(handles) / (ncols or 1))
    fig.legend(handles, texts, loc="outside lower center", ncols=math.ceil(len(handles) / rows))


def _legend_width(fig: Figure, handles: Sequence, labels: Sequence[str], ncols: int) -> float:
    """The width in pixels of a legend of these entries in `ncols` columns."""
    legend = fig.legend(handles, labels, ncols=ncols)
    width = legend.get_window_extent(fig.canvas.get_renderer()).width
    legend.remove()
    return width


def panel_legend(ax, handles: Sequence, labels: Sequence[str]) -> None:
    """A legend of entries only this panel has, right under its x label and tick labels, so
    it reads as this panel's; constrained layout keeps room for it."""
    if not handles:
        return
    fig = ax.figure
    axis = ax.xaxis.get_tightbbox(fig.canvas.get_renderer())
    drop = (ax.bbox.y0 - axis.y0) / fig.dpi + 0.05  # inches, the same after any layout
    anchor = ax.transAxes + ScaledTranslation(0, -drop, fig.dpi_scale_trans)
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0),
              bbox_transform=anchor, fontsize="small")


def shared_and_own(axes: Sequence) -> tuple[tuple[list, list], list[tuple[list, list]]]:
    """The legend entries every panel draws (by label), and each panel's others: a figure
    legend for the first, a legend under its panel for each of the others."""
    entries = [dict(zip(labels, handles))
               for handles, labels in (ax.get_legend_handles_labels() for ax in axes)]
    shared = [label for label in entries[0] if all(label in e for e in entries)]
    own = [([h for label, h in e.items() if label not in shared],
            [label for label in e if label not in shared]) for e in entries]
    return ([entries[0][label] for label in shared], shared), own


def _wrap_lines(text: str, width: int) -> str:
    """Each line of `text` broken at spaces into lines of at most `width` characters."""
    return "\n".join(textwrap.fill(line, width, break_long_words=False)
                     for line in text.split("\n"))


def _fit(text, limit: float, renderer, along: str) -> bool:
    """Wrap `text` onto more lines until its extent `along` ("width" or "height", in pixels)
    is at most `limit`; whether it was wrapped."""
    original = text.get_text()
    width = max(len(line) for line in original.split("\n"))
    while getattr(text.get_window_extent(renderer), along) > limit and width > 12:
        width = int(width * 0.85)
        text.set_text(_wrap_lines(original, width))
    return text.get_text() != original


def fit_layout(fig: Figure) -> None:
    """Call last, when every text and legend is set. The figure grows by the height of the
    legends under its panels (every legend of the report sits there), so a long legend takes
    room of its own rather than the panels'.
    Then each y label taller than its panel, each title wider than its panel and the figure's
    titles wider than the figure are wrapped onto more lines: constrained layout makes room
    around a text, but cannot fit one longer than the side it sits on (it would run into the
    titles, tick labels or legends beside it)."""
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    below = sum(legend.get_window_extent(renderer).height for legend in fig.legends)
    below += max((legend.get_window_extent(renderer).height for legend in legends), default=0)
    fig.set_figheight(fig.get_figheight() + below / fig.dpi)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    fig.get_layout_engine().execute(fig)
    if any([_fit(ax.yaxis.label, ax.bbox.height, renderer, "height") for ax in panels]):
        fig.get_layout_engine().execute(fig)  # wrapped y labels narrow the panels
    for ax in panels:
        _fit(ax.title, ax.bbox.width, renderer, "width")
    for text in fig.texts:
        _fit(text, fig.bbox.width, renderer, "width")


def reference_color(label: str) -> str:
    """Grey tinted towards the method named in `label` (if any), so references stay paired."""
    lowered = label.lower().replace("-", "_")
    for method in sorted(METHOD_COLORS, key=len, reverse=True):
        if method in lowered:
            base = np.array(mcolors.to_rgb(METHOD_COLORS[method]))
            grey = np.array(mcolors.to_rgb(REFERENCE_GREY))
            return mcolors.to_hex(0.45 * base + 0.55 * grey)
    return REFERENCE_GREY


def save_figure(fig: Figure, pdf_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Write `fig` as PDF and as PNG (150 dpi), each atomically, then close the figure.

    The PDF carries no creation date, so rerunning a rule gives byte-identical output.
    """
    try:
        with plt.rc_context({"pdf.fonttype": 42}):
            with atomic_path(pdf_path) as tmp:
                fig.savefig(tmp, format="pdf", bbox_inches="tight",
                            metadata={"CreationDate": None})
            with atomic_path(png_path) as tmp:
                fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)
