"""The one look of every figure: theme, fixed method colors and labels, spread bands over seeds,
layer axes, legends, and writing a figure as PDF and PNG.

Spread over seeds is shown as a shaded band of plus/minus one sample standard deviation
(``ddof=1``) around the mean, or, with ``band="minmax"``, as the min-max range; the axis label
says which. With a single seed the band has zero width.
"""

from __future__ import annotations

import contextlib
import os
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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(len(layers), 16)))
    if len(layers):
        ax.set_xlim(min(layers) - 0.3, max(layers) + 0.3)


def legend_below(fig: Figure, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 3))


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
