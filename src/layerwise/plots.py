"""Figures for layer-wise accuracy and representation similarity.

Every function takes tidy pandas frames (or a matrix) and returns a matplotlib Figure; only
:func:`save_figure` touches the disk. All figures share one look: a seaborn "whitegrid" style at
paper scale and a fixed color per training method (:data:`METHOD_COLORS`), so "standard",
"aligned" and "multi_exit" have the same color in every figure of the study.

Expected frames
---------------
accuracy
    columns ``method, seed, split, layer, accuracy``; layer 0 is the embedding output and is
    not plotted, layers 1..L are the outputs of the transformer blocks.
similarity
    columns ``method, seed, measure, layer_a, layer_b, value``; pairs may be stored in one or
    both orders.

Spread over seeds is shown as a shaded band of plus/minus one sample standard deviation
(``ddof=1``) around the mean, or, with ``band="minmax"``, as the min-max range; the axis label
says which. With a single seed the band has zero width.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

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

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "method_color",
    "method_label",
    "heatmap_color_limits",
    "save_figure",
    "layerwise_accuracy_figure",
    "layerwise_panels_figure",
    "similarity_heatmap_figure",
    "heatmap_grid_figure",
    "curves_vs_last_figure",
    "curves_vs_last_panels_figure",
    "cos_boxplot_figure",
    "adjacent_cos_figure",
]

_PALETTE = sns.color_palette("colorblind", 10).as_hex()

#: Fixed color of each training method, used in every figure.
METHOD_COLORS: dict[str, str] = {
    "standard": _PALETTE[0],  # blue
    "aligned": _PALETTE[1],  # orange
    "multi_exit": _PALETTE[2],  # green
}
#: Display name of each training method.
METHOD_LABELS: dict[str, str] = {
    "standard": "standard",
    "aligned": "aligned",
    "multi_exit": "multi-exit",
}
# Colors for methods outside METHOD_COLORS, handed out in order of first use.
_EXTRA_COLORS = [_PALETTE[i] for i in (3, 6, 8, 9, 7)]
_extra_assigned: dict[str, str] = {}

# Colors of the two similarity curves in curves_vs_last_figure (distinct from method colors).
_COS_COLOR = _PALETTE[4]
_CKA_COLOR = _PALETTE[5]
_REFERENCE_GREY = "#7f7f7f"

# Heatmaps: values below this are treated as genuinely negative (not float noise).
_NEGATIVE_TOLERANCE = 1e-6
# Largest number of layers for which heatmap cells get their value written in.
_MAX_ANNOTATED_LAYERS = 16

_BAND_LABELS = {"sd": "mean ± 1 sd over seeds", "minmax": "mean, min–max over seeds"}


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


def _ordered_methods(methods: Iterable[str]) -> list[str]:
    """Known methods in canonical order, then any others in order of first appearance."""
    seen = list(dict.fromkeys(methods))
    known = [m for m in METHOD_COLORS if m in seen]
    return known + [m for m in seen if m not in METHOD_COLORS]


@contextlib.contextmanager
def _theme() -> Iterator[None]:
    """The shared style, applied only while a figure is being built."""
    params = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("paper", font_scale=1.25),
        "axes.titleweight": "bold",
        "legend.frameon": False,
    }
    with plt.rc_context(params):
        yield


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks columns {missing}; has {list(frame.columns)}")


def _mean_band(frame: pd.DataFrame, x: str, y: str, band: str = "sd") -> pd.DataFrame:
    """Mean of `y` over seeds at each `x`, with the band's lower and upper edges.

    Returns columns ``x, mean, lo, hi, n``. ``band="sd"`` gives mean -/+ one sample standard
    deviation (zero width for a single seed); ``band="minmax"`` gives the min and max.
    """
    if band not in _BAND_LABELS:
        raise ValueError(f"band must be one of {sorted(_BAND_LABELS)}, got {band!r}")
    grouped = frame.groupby(x, sort=True)[y]
    stats = grouped.agg(mean="mean", sd="std", lo="min", hi="max", n="count").reset_index()
    if band == "sd":
        sd = stats["sd"].fillna(0.0)
        stats["lo"] = stats["mean"] - sd
        stats["hi"] = stats["mean"] + sd
    return stats[[x, "mean", "lo", "hi", "n"]]


def _draw_band(ax, stats: pd.DataFrame, x: str, *, color, label: str, marker: str = "o") -> None:
    """A mean line with markers and a shaded band, as returned by :func:`_mean_band`."""
    ax.fill_between(stats[x], stats["lo"], stats["hi"], color=color, alpha=0.2, linewidth=0)
    ax.plot(stats[x], stats["mean"], color=color, marker=marker, markersize=5, linewidth=1.8,
            label=label, clip_on=False, zorder=3)


def _layer_axis(ax, layers: Sequence[int]) -> None:
    ax.set_xlabel("layer")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(len(layers), 16)))
    if len(layers):
        ax.set_xlim(min(layers) - 0.3, max(layers) + 0.3)


def _legend_below(fig: Figure, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 3))


def _reference_color(label: str) -> str:
    """Grey tinted towards the method named in `label` (if any), so references stay paired."""
    lowered = label.lower().replace("-", "_")
    for method in sorted(METHOD_COLORS, key=len, reverse=True):
        if method in lowered:
            base = np.array(mcolors.to_rgb(METHOD_COLORS[method]))
            grey = np.array(mcolors.to_rgb(_REFERENCE_GREY))
            return mcolors.to_hex(0.45 * base + 0.55 * grey)
    return _REFERENCE_GREY


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


#: How each layer-wise metric column is named on an axis.
METRIC_LABELS = {"accuracy": "accuracy", "f1": "F1"}


def _draw_layerwise(ax, acc: pd.DataFrame, split: str, metric: str,
                    reference: Mapping[str, Sequence[float]] | None, chance: float | None,
                    band: str) -> None:
    """One panel of :func:`layerwise_accuracy_figure`."""
    _check_columns(acc, ["method", "seed", "split", "layer", metric], "accuracy")
    data = acc[(acc["split"] == split) & (acc["layer"] >= 1)]
    if data.empty:
        raise ValueError(f"no {metric} rows for split {split!r} at layers >= 1")
    layers = sorted(int(v) for v in data["layer"].unique())
    for method in _ordered_methods(data["method"]):
        rows = data[data["method"] == method]
        stats = _mean_band(rows, "layer", metric, band)
        n_seeds = rows["seed"].nunique()
        _draw_band(ax, stats, "layer", color=method_color(method),
                   label=f"{method_label(method)} (n={n_seeds})")
    for label, values in (reference or {}).items():
        values = np.asarray(values, dtype=float)
        # A reference of another depth is drawn at the same relative depth l / L.
        positions = np.arange(1, len(values) + 1) * (max(layers) / len(values))
        ax.plot(positions, values, linestyle="--", linewidth=1.4, marker=".",
                color=_reference_color(label), label=label, zorder=2)
    if chance is not None:
        ax.axhline(chance, color="black", linestyle=":", linewidth=1.2,
                   label=f"chance ({chance:.3g})", zorder=1)
    _layer_axis(ax, layers)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel(f"{split} {METRIC_LABELS.get(metric, metric)}\n({_BAND_LABELS[band]})")


def layerwise_accuracy_figure(
    acc: pd.DataFrame,
    split: str,
    title: str | None = None,
    chance: float | None = None,
    reference: Mapping[str, Sequence[float]] | None = None,
    band: str = "sd",
    metric: str = "accuracy",
) -> Figure:
    """Accuracy (or the `metric` column, e.g. "f1") against layer (1..L) for each method: mean
    over seeds, shaded spread band.

    `chance` draws a dotted horizontal line. `reference` maps a label (e.g. "paper: standard")
    to values for layers 1..L, drawn as dashed grey lines tinted towards the method they name.
    """
    with _theme():
        fig, ax = plt.subplots(figsize=(5.8, 4.0), layout="constrained")
        _draw_layerwise(ax, acc, split, metric, reference, chance, band)
        ax.set_title(title if title is not None else f"Layer-wise {metric} ({split})")
        _legend_below(fig, ax)
    return fig


def layerwise_panels_figure(
    panels: Mapping[str, tuple[pd.DataFrame, str, Mapping[str, Sequence[float]] | None]],
    split: str,
    title: str,
    band: str = "sd",
) -> Figure:
    """:func:`layerwise_accuracy_figure` for several tasks side by side (paper Fig 8 shape).

    `panels` maps a panel title to (accuracy frame, metric column, reference curves or None);
    each panel's title names its metric, and so does the shared y axis when all panels agree.
    """
    if not panels:
        raise ValueError("no panels to plot")
    metrics = {metric for _, metric, _ in panels.values()}
    with _theme():
        fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4),
                                 layout="constrained", squeeze=False, sharey=True)
        for ax, (label, (acc, metric, reference)) in zip(axes[0], panels.items()):
            _draw_layerwise(ax, acc, split, metric, reference, None, band)
            ax.set_title(f"{label} ({METRIC_LABELS.get(metric, metric)})")
            # Below the panel: the paper's curves differ from task to task.
            ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2))
        for ax in axes[0][1:]:
            ax.set_ylabel("")
        if len(metrics) > 1:
            axes[0][0].set_ylabel(f"{split} metric\n({_BAND_LABELS[band]})")
        fig.suptitle(title, fontweight="bold")
    return fig


def heatmap_color_limits(matrix: np.ndarray) -> tuple[float, float]:
    """Color range for a similarity heatmap: [0, 1], or [-1, 1] if any value is negative.

    Values above -1e-6 count as non-negative, so float noise around zero does not switch a CKA
    heatmap to the diverging scale.
    """
    values = np.asarray(matrix, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() < -_NEGATIVE_TOLERANCE:
        return -1.0, 1.0
    return 0.0, 1.0


def _heatmap_cmap(vmin: float) -> str:
    return "vlag" if vmin < 0 else "viridis"


def _cell_labels(matrix: np.ndarray) -> np.ndarray:
    """Cell text with 2 decimals; tiny negatives print as "0.00" rather than "-0.00"."""
    text = [["" if not np.isfinite(v) else f"{v:.2f}".replace("-0.00", "0.00") for v in row]
            for row in matrix]
    return np.array(text, dtype=object)


def _draw_heatmap(ax, matrix: np.ndarray, layers: Sequence, vmin: float, vmax: float,
                  annotate: bool, cbar: bool, measure_label: str) -> None:
    size = matrix.shape[0]
    annotate = annotate and size <= _MAX_ANNOTATED_LAYERS
    labels = _cell_labels(matrix) if annotate else False
    sns.heatmap(
        # The diverging scale is symmetric ([-1, 1]), so its midpoint color already sits at 0.
        matrix, ax=ax, vmin=vmin, vmax=vmax, cmap=_heatmap_cmap(vmin), square=True,
        annot=labels, fmt="", annot_kws={"size": 8.5 if size <= 8 else 7},
        xticklabels=list(layers), yticklabels=list(layers),
        cbar=cbar, cbar_kws={"label": measure_label} if cbar else None,
        linewidths=0.4, linecolor="white",
    )
    ax.set_xlabel("layer")
    ax.set_ylabel("layer")
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=0)


def _square_matrix(matrix, name: str = "matrix") -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square 2-D array, got shape {matrix.shape}")
    return matrix


def _heatmap_side(size: int) -> float:
    """Side length in inches of one heatmap panel, so annotations stay legible."""
    return max(3.2, 0.38 * size + 0.8)


def similarity_heatmap_figure(
    matrix: np.ndarray,
    title: str,
    measure_label: str,
    layers: Sequence | None = None,
    annotate: bool = True,
) -> Figure:
    """Square heatmap of an L x L layer similarity matrix (layers 1..L, embedding excluded).

    Cells show their value to 2 decimals when `annotate` and L <= 16. The color scale is fixed
    to [0, 1], or [-1, 1] (diverging, centred at 0) when the matrix has negative values; see
    :func:`heatmap_color_limits`.
    """
    matrix = _square_matrix(matrix)
    size = matrix.shape[0]
    layers = list(range(1, size + 1)) if layers is None else list(layers)
    if len(layers) != size:
        raise ValueError(f"{len(layers)} layer labels for a {size} x {size} matrix")
    vmin, vmax = heatmap_color_limits(matrix)
    side = _heatmap_side(size)
    with _theme(), sns.axes_style("white"):
        fig, ax = plt.subplots(figsize=(side + 1.0, side), layout="constrained")
        _draw_heatmap(ax, matrix, layers, vmin, vmax, annotate, True, measure_label)
        ax.set_title(title)
    return fig


def heatmap_grid_figure(
    matrices: Mapping[str, np.ndarray],
    title: str,
    measure_label: str,
    annotate: bool = True,
) -> Figure:
    """One similarity heatmap per method, side by side, sharing one color scale and bar.

    Panels follow the canonical method order (standard, aligned, multi_exit, then others);
    panel titles are drawn in the method's color. The shared scale is [-1, 1] if any panel has
    negative values, else [0, 1].
    """
    if not matrices:
        raise ValueError("no matrices to plot")
    order = _ordered_methods(matrices)
    mats = {m: _square_matrix(matrices[m], f"matrix for {m!r}") for m in order}
    vmin = min(heatmap_color_limits(m)[0] for m in mats.values())
    vmax = 1.0
    side = _heatmap_side(max(m.shape[0] for m in mats.values()))
    with _theme(), sns.axes_style("white"):
        fig, axes = plt.subplots(1, len(mats), figsize=(side * len(mats) + 1.2, side + 0.4),
                                 layout="constrained", squeeze=False)
        axes = list(axes[0])
        for ax, (method, matrix) in zip(axes, mats.items()):
            layers = range(1, matrix.shape[0] + 1)
            _draw_heatmap(ax, matrix, layers, vmin, vmax, annotate, False, measure_label)
            ax.set_title(method_label(method), color=method_color(method))
        for ax in axes[1:]:
            ax.set_ylabel("")
        fig.colorbar(axes[0].collections[0], ax=axes, label=measure_label, shrink=0.9)
        fig.suptitle(title, fontweight="bold")
    return fig


def _similarity_to_last(sim: pd.DataFrame, measure: str, last: int) -> pd.DataFrame:
    """Rows ``seed, layer, value`` of similarity between each layer 1..L and layer `last`."""
    rows = sim[sim["measure"] == measure]
    if rows.empty:
        available = sorted(sim["measure"].unique())
        raise ValueError(f"no {measure!r} similarity rows; measures present: {available}")
    as_b = rows[rows["layer_b"] == last][["seed", "layer_a", "value"]].rename(
        columns={"layer_a": "layer"})
    as_a = rows[rows["layer_a"] == last][["seed", "layer_b", "value"]].rename(
        columns={"layer_b": "layer"})
    pairs = pd.concat([as_b, as_a], ignore_index=True)
    pairs = pairs[pairs["layer"] >= 1]
    # A pair stored in both orders counts once per seed.
    return pairs.groupby(["seed", "layer"], as_index=False)["value"].mean()


def _draw_curves_vs_last(ax, acc: pd.DataFrame, sim: pd.DataFrame, method: str, split: str,
                         band: str) -> int:
    """Draw COS(l, L), CKA(l, L) and accuracy of one method on `ax`; returns L."""
    _check_columns(acc, ["method", "seed", "split", "layer", "accuracy"], "accuracy")
    _check_columns(sim, ["method", "seed", "measure", "layer_a", "layer_b", "value"],
                   "similarity")
    acc_rows = acc[(acc["method"] == method) & (acc["split"] == split) & (acc["layer"] >= 1)]
    sim_rows = sim[sim["method"] == method]
    if acc_rows.empty:
        raise ValueError(f"no accuracy rows for method {method!r}, split {split!r}")
    if sim_rows.empty:
        raise ValueError(f"no similarity rows for method {method!r}")
    last = int(max(sim_rows["layer_a"].max(), sim_rows["layer_b"].max()))
    if int(acc_rows["layer"].max()) != last:
        raise ValueError(f"accuracy goes to layer {int(acc_rows['layer'].max())} but "
                         f"similarity to layer {last} for method {method!r}")
    cos = _similarity_to_last(sim_rows, "cos", last)
    cka = _similarity_to_last(sim_rows, "cka_linear_biased", last)
    # Centered cosine can be negative; extend the axis below 0 only then.
    lowest = min(0.0, float(cos["value"].min()), float(cka["value"].min()))
    _draw_band(ax, _mean_band(cos, "layer", "value", band), "layer", color=_COS_COLOR,
               label=f"COS(l, {last}) (centered)", marker="s")
    _draw_band(ax, _mean_band(cka, "layer", "value", band), "layer", color=_CKA_COLOR,
               label=f"CKA(l, {last}) (linear)", marker="^")
    _draw_band(ax, _mean_band(acc_rows, "layer", "accuracy", band), "layer",
               color=method_color(method), label=f"{split} accuracy")
    _layer_axis(ax, sorted(int(v) for v in acc_rows["layer"].unique()))
    ax.set_xlabel("layer l")
    ax.set_ylim(0.0 if lowest >= 0 else max(-1.0, lowest - 0.05), 1.0)
    ax.set_ylabel(f"similarity / accuracy\n({_BAND_LABELS[band]})")
    return last


def curves_vs_last_figure(
    acc: pd.DataFrame,
    sim: pd.DataFrame,
    method: str,
    split: str,
    band: str = "sd",
) -> Figure:
    """For one method, against layer l = 1..L: COS(l, L), linear CKA(l, L) and accuracy.

    COS is the centered cosine similarity (measure "cos"), CKA the biased linear CKA (measure
    "cka_linear_biased"); L is the largest layer in the data. Each curve is the mean over seeds
    with a shaded spread band. The accuracy curve uses the method's color.
    """
    with _theme():
        fig, ax = plt.subplots(figsize=(5.8, 4.0), layout="constrained")
        last = _draw_curves_vs_last(ax, acc, sim, method, split, band)
        n_seeds = acc[acc["method"] == method]["seed"].nunique()
        ax.set_title(f"{method_label(method)}: similarity to layer {last} and accuracy "
                     f"(n={n_seeds})")
        _legend_below(fig, ax)
    return fig


def curves_vs_last_panels_figure(
    panels: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    method: str,
    split: str,
    title: str,
    band: str = "sd",
    reference: Mapping[str, tuple[str, Mapping[str, Sequence[float]]]] | None = None,
) -> Figure:
    """:func:`curves_vs_last_figure` for several experiments side by side, one panel each.

    `panels` maps a panel title to that experiment's (accuracy, similarity) frames; used for
    the residual ablation (paper Fig 12), where CKA and COS part ways without residuals.
    `reference` maps a panel title to (label, {"acc"|"cka"|"cos": values for layers 1..L'}):
    the paper's curves, drawn dashed in the colors of ours at the same relative depth and named
    in the panel title.
    """
    if not panels:
        raise ValueError("no panels to plot")
    colors = {"cos": (_COS_COLOR, "paper: COS(l, L)"), "cka": (_CKA_COLOR, "paper: CKA(l, L)"),
              "acc": (method_color(method), "paper: accuracy")}
    with _theme():
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0),
                                 layout="constrained", squeeze=False, sharey=True)
        for ax, (label, (acc, sim)) in zip(axes[0], panels.items()):
            last = _draw_curves_vs_last(ax, acc, sim, method, split, band)
            ref_label, ref_curves = (reference or {}).get(label, (None, {}))
            for name, values in ref_curves.items():
                values = np.asarray(values, dtype=float)
                color, legend = colors[name]
                ax.plot(np.arange(1, len(values) + 1) * (last / len(values)), values,
                        linestyle="--", linewidth=1.3, color=color, alpha=0.7, label=legend,
                        zorder=2)
            ax.set_title(label if ref_label is None else f"{label}\n(dashed: {ref_label})")
        for ax in axes[0][1:]:
            ax.set_ylabel("")
        fig.suptitle(title, fontweight="bold")
        _legend_below(fig, axes[0][0])
    return fig


def cos_boxplot_figure(per_sample: pd.DataFrame, title: str) -> Figure:
    """Per-sample COS of every layer with the last layer as box plots (paper Fig 10 shape).

    `per_sample` has columns ``method, seed, layer, sample, cos``; samples of all seeds are
    pooled in each box. One box per layer and method, methods side by side in their colors.
    """
    _check_columns(per_sample, ["method", "layer", "cos"], "per-sample COS")
    order = _ordered_methods(per_sample["method"])
    with _theme():
        fig, ax = plt.subplots(figsize=(7.5, 4.0), layout="constrained")
        sns.boxplot(data=per_sample, x="layer", y="cos", hue="method", hue_order=order,
                    palette={m: method_color(m) for m in order}, fliersize=1.0, linewidth=0.8,
                    ax=ax)
        ax.set_ylabel("per-sample COS with the last layer\n(centered; seeds pooled)")
        ax.set_ylim(max(-1.0, min(0.0, float(per_sample["cos"].min()) - 0.05)), 1.0)
        ax.set_title(title)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        handles = [plt.Line2D([], [], color=method_color(m), linewidth=6) for m in order]
        fig.legend(handles, [method_label(m) for m in order], loc="outside lower center",
                   ncols=len(order))
    return fig


def adjacent_cos_figure(sim: pd.DataFrame, title: str, band: str = "sd") -> Figure:
    """COS between consecutive layers, COS(l, l+1) against l, per method (paper Fig 11a)."""
    _check_columns(sim, ["method", "seed", "measure", "layer_a", "layer_b", "value"],
                   "similarity")
    rows = sim[(sim["measure"] == "cos") & (sim["layer_b"] == sim["layer_a"] + 1)]
    if rows.empty:
        raise ValueError("no centered COS rows between consecutive layers")
    with _theme():
        fig, ax = plt.subplots(figsize=(5.8, 4.0), layout="constrained")
        for method in _ordered_methods(rows["method"]):
            stats = _mean_band(rows[rows["method"] == method], "layer_a", "value", band)
            _draw_band(ax, stats, "layer_a", color=method_color(method),
                       label=method_label(method))
        _layer_axis(ax, sorted(int(v) for v in rows["layer_a"].unique()))
        ax.set_xlabel("layer l")
        ax.set_ylabel(f"COS(l, l+1), centered\n({_BAND_LABELS[band]})")
        ax.set_ylim(min(0.0, float(rows["value"].min()) - 0.05), 1.0)
        ax.set_title(title)
        _legend_below(fig, ax)
    return fig
