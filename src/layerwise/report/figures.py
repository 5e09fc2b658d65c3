"""Figures for layer-wise accuracy and representation similarity.

Every function takes tidy pandas frames (or a matrix) and returns a matplotlib Figure; only
:func:`layerwise.report.style.save_figure` touches the disk. All figures share one look: a seaborn "whitegrid" style at
paper scale and a fixed color per training method (`layerwise.report.style`), so "standard",
"aligned" and "multi_exit" have the same color in every figure of the study.

Expected frames
---------------
accuracy
    columns ``method, seed, split, layer, accuracy``; layer 0 is the embedding output and is
    not plotted, layers 1..L are the outputs of the transformer blocks.
similarity
    columns ``method, seed, measure, layer_a, layer_b, value``; pairs may be stored in one or
    both orders.

The look they share (theme, colors, spread bands) is `layerwise.report.style`.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from layerwise.baselines import model_order
from layerwise.io import read_json
from layerwise.reference import curves as reference_curves
from layerwise.reference import paper_values, similarity_curves
from layerwise.report.figure_kinds import METRIC_LABELS, NO_REFERENCE
from layerwise.report.style import (BAND_LABELS, CURVE_COLORS, CURVE_MARKERS, check_columns,
                                    draw_band, figure_legend, fit_layout, layer_axis,
                                    legend_below, mean_band, method_color, method_label,
                                    ordered_methods, panel_legend, reference_color,
                                    shared_and_own, theme)
from layerwise.similarity.measures import HEATMAPS, MEASURES, frame_matrix, similarity_to_last

# The similarity measures drawn against the last layer, in their registry order.
CURVES = [m for m in MEASURES.values() if m.curve]

__all__ = [
    "heatmap_color_limits",
    "layerwise_accuracy_figure",
    "layerwise_panels_figure",
    "similarity_heatmap_figure",
    "heatmap_grid_figure",
    "curves_vs_last_figure",
    "curves_vs_last_panels_figure",
    "cos_boxplot_figure",
    "adjacent_cos_figure",
    "draw_layerwise_accuracy",
    "draw_text_layerwise",
    "draw_heatmaps",
    "draw_curves_vs_last",
    "draw_residual_ablation",
    "draw_cos_boxplot",
    "draw_adjacent_cos",
    "draw_cross_model",
]

# Heatmaps: values below this are treated as genuinely negative (not float noise).
_NEGATIVE_TOLERANCE = 1e-6
# Largest number of layers for which heatmap cells get their value written in.
_MAX_ANNOTATED_LAYERS = 16


def _draw_layerwise(ax, acc: pd.DataFrame, split: str, metric: str,
                    reference: Mapping[str, Sequence[float]] | None, chance: float | None,
                    band: str, baselines: Mapping[str, float] | None = None) -> None:
    """One panel of :func:`layerwise_accuracy_figure`."""
    check_columns(acc, ["method", "seed", "split", "layer", metric], "accuracy")
    data = acc[(acc["split"] == split) & (acc["layer"] >= 1)]
    if data.empty:
        raise ValueError(f"no {metric} rows for split {split!r} at layers >= 1")
    layers = sorted(int(v) for v in data["layer"].unique())
    for method in ordered_methods(data["method"]):
        rows = data[data["method"] == method]
        stats = mean_band(rows, "layer", metric, band)
        n_seeds = rows["seed"].nunique()
        draw_band(ax, stats, "layer", color=method_color(method),
                   label=f"{method_label(method)} (n={n_seeds})")
    for label, values in (reference or {}).items():
        values = np.asarray(values, dtype=float)
        # A reference of another depth is drawn at the same relative depth l / L.
        positions = np.arange(1, len(values) + 1) * (max(layers) / len(values))
        ax.plot(positions, values, linestyle="--", linewidth=1.4, marker=".",
                color=reference_color(label), label=label, zorder=2)
    if chance is not None:
        ax.axhline(chance, color="black", linestyle=":", linewidth=1.2,
                   label=f"chance ({chance:.3g})", zorder=1)
    for (label, value), style in zip((baselines or {}).items(), (":", "-.", "--")):
        ax.axhline(value, color="black", linestyle=style, linewidth=1.1,
                   label=f"{label} ({value:.3g})", zorder=1)
    layer_axis(ax, layers)
    if metric != "cross_entropy":  # a fraction; a loss has no upper bound
        ax.set_ylim(0.0, 1.0)
    else:  # a reference far above ours (a loss without the final norm) would flatten ours
        ours = [data[metric].max(), *(baselines or {}).values()]
        top = 1.25 * max(ours)
        if any(np.nanmax(np.asarray(v, dtype=float)) > top for v in (reference or {}).values()):
            ax.set_ylim(0.0, top)
            ax.text(0.98, 0.02, "paper curves above the axis are cut", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize="x-small", color="grey")
    ax.set_ylabel(f"{split} {METRIC_LABELS.get(metric, metric)}\n({BAND_LABELS[band]})")


def layerwise_accuracy_figure(
    acc: pd.DataFrame,
    split: str,
    title: str | None = None,
    chance: float | None = None,
    reference: Mapping[str, Sequence[float]] | None = None,
    band: str = "sd",
    metric: str = "accuracy",
    baselines: Mapping[str, float] | None = None,
) -> Figure:
    """Accuracy (or the `metric` column, e.g. "f1") against layer (1..L) for each method: mean
    over seeds, shaded spread band.

    `chance` draws a dotted horizontal line. `reference` maps a label (e.g. "paper: standard")
    to values for layers 1..L, drawn as dashed grey lines tinted towards the method they name.
    `baselines` maps a label to a model's score drawn as a black horizontal line (models
    without hidden layers on the same samples).
    """
    with theme():
        # Wide enough for two legend columns of methods, paper curves and baselines.
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        _draw_layerwise(ax, acc, split, metric, reference, chance, band, baselines)
        ax.set_title(title if title is not None else f"Layer-wise {metric} ({split})")
        legend_below(fig, ax)
        fit_layout(fig)
    return fig


def layerwise_panels_figure(
    panels: Mapping[str, tuple[pd.DataFrame, str, Mapping[str, Sequence[float]] | None]],
    split: str,
    title: str,
    band: str = "sd",
    sharey: bool = True,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """:func:`layerwise_accuracy_figure` for several tasks (paper Fig 8 shape) or metrics (Fig 9:
    a language model's accuracy and cross-entropy, `sharey=False`) side by side.

    `panels` maps a panel title to (accuracy frame, metric column, reference curves or None);
    each panel's title names its metric, and so does the shared y axis when all panels agree.
    `baselines` maps a metric to horizontal lines drawn on its panels ({label: value}, e.g. a
    language model's unigram and bigram baselines).
    """
    if not panels:
        raise ValueError("no panels to plot")
    metrics = {metric for _, metric, _ in panels.values()}
    with theme():
        # One panel is as wide as the single-panel figure, so its legend fits beneath it.
        fig, axes = plt.subplots(1, len(panels), figsize=(max(4.6 * len(panels), 6.4), 4.4),
                                 layout="constrained", squeeze=False, sharey=sharey)
        for ax, (label, (acc, metric, reference)) in zip(axes[0], panels.items()):
            _draw_layerwise(ax, acc, split, metric, reference, None, band,
                            (baselines or {}).get(metric))
            ax.set_title(f"{label} ({METRIC_LABELS.get(metric, metric)})")
        for ax in axes[0][1:] if sharey else ():
            ax.set_ylabel("")
        if len(metrics) > 1 and sharey:
            axes[0][0].set_ylabel(f"{split} metric\n({BAND_LABELS[band]})")
        fig.suptitle(title, fontweight="bold")
        # The methods (and paper curves alike in every panel) once below all panels; what
        # differs, a task's paper curves or a baseline's value, under its own panel.
        shared, own = shared_and_own(axes[0])
        figure_legend(fig, *shared)
        for ax, (handles, labels) in zip(axes[0], own):
            panel_legend(ax, handles, labels)
        fit_layout(fig)
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
    for text in ax.texts:  # cell values lie inside the panel: no need to measure them for layout
        text.set_in_layout(False)
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
    with theme(), sns.axes_style("white"):
        fig, ax = plt.subplots(figsize=(side + 1.0, side), layout="compressed")
        _draw_heatmap(ax, matrix, layers, vmin, vmax, annotate, True, measure_label)
        # Over the colorbar too: a square panel leaves a long title little width.
        fig.suptitle(title, fontweight="bold")
        fit_layout(fig)
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
    order = ordered_methods(matrices)
    mats = {m: _square_matrix(matrices[m], f"matrix for {m!r}") for m in order}
    vmin = min(heatmap_color_limits(m)[0] for m in mats.values())
    vmax = 1.0
    side = _heatmap_side(max(m.shape[0] for m in mats.values()))
    with theme(), sns.axes_style("white"):
        fig, axes = plt.subplots(1, len(mats), figsize=(side * len(mats) + 1.2, side + 0.4),
                                 layout="compressed", squeeze=False)
        axes = list(axes[0])
        for ax, (method, matrix) in zip(axes, mats.items()):
            layers = range(1, matrix.shape[0] + 1)
            _draw_heatmap(ax, matrix, layers, vmin, vmax, annotate, False, measure_label)
            ax.set_title(method_label(method), color=method_color(method))
        for ax in axes[1:]:
            ax.set_ylabel("")
        fig.colorbar(axes[0].collections[0], ax=axes, label=measure_label, shrink=0.9)
        fig.suptitle(title, fontweight="bold")
        fit_layout(fig)
    return fig


def _draw_curves_vs_last(ax, acc: pd.DataFrame, sim: pd.DataFrame, method: str, split: str,
                         band: str) -> int:
    """Draw COS(l, L), CKA(l, L) and accuracy of one method on `ax`; returns L."""
    check_columns(acc, ["method", "seed", "split", "layer", "accuracy"], "accuracy")
    check_columns(sim, ["method", "seed", "measure", "layer_a", "layer_b", "value"],
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
    curves = [similarity_to_last(sim_rows, m.name, last) for m in CURVES]
    # Centered cosine can be negative; extend the axis below 0 only then.
    lowest = min([0.0] + [float(c["value"].min()) for c in curves])
    for i, (measure, curve) in enumerate(zip(CURVES, curves)):
        draw_band(ax, mean_band(curve, "layer", "value", band), "layer", color=CURVE_COLORS[i],
                  label=measure.curve.format(last=last), marker=CURVE_MARKERS[i])
    draw_band(ax, mean_band(acc_rows, "layer", "accuracy", band), "layer",
               color=method_color(method), label=f"{split} accuracy")
    layer_axis(ax, sorted(int(v) for v in acc_rows["layer"].unique()))
    ax.set_xlabel("layer l")
    ax.set_ylim(0.0 if lowest >= 0 else max(-1.0, lowest - 0.05), 1.0)
    ax.set_ylabel(f"similarity / accuracy\n({BAND_LABELS[band]})")
    return last


def curves_vs_last_figure(
    acc: pd.DataFrame,
    sim: pd.DataFrame,
    method: str,
    split: str,
    band: str = "sd",
) -> Figure:
    """For one method, against layer l = 1..L: every measure with a curve (`CURVES`: centered
    COS and the biased linear CKA) and accuracy; L is the largest layer in the data. Each curve is the mean over seeds
    with a shaded spread band. The accuracy curve uses the method's color.
    """
    with theme():
        fig, ax = plt.subplots(figsize=(5.8, 4.0), layout="constrained")
        last = _draw_curves_vs_last(ax, acc, sim, method, split, band)
        n_seeds = acc[acc["method"] == method]["seed"].nunique()
        ax.set_title(f"{method_label(method)}: similarity to layer {last} and accuracy "
                     f"(n={n_seeds})")
        legend_below(fig, ax)
        fit_layout(fig)
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
    colors = {m.short: (CURVE_COLORS[i], f"paper: {m.curve.format(last='L').split(' (')[0]}")
              for i, m in enumerate(CURVES)}
    colors["acc"] = (method_color(method), "paper: accuracy")
    with theme():
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
        legend_below(fig, axes[0][0])
        fit_layout(fig)
    return fig


def cos_boxplot_figure(per_sample: pd.DataFrame, title: str) -> Figure:
    """Per-sample COS of every layer with the last layer as box plots (paper Fig 10 shape).

    `per_sample` has columns ``method, seed, layer, sample, cos``; samples of all seeds are
    pooled in each box. One box per layer and method, methods side by side in their colors.
    """
    check_columns(per_sample, ["method", "layer", "cos"], "per-sample COS")
    order = ordered_methods(per_sample["method"])
    with theme():
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
        figure_legend(fig, handles, [method_label(m) for m in order], columns=len(order))
        fit_layout(fig)
    return fig


def adjacent_cos_figure(sim: pd.DataFrame, title: str, band: str = "sd",
                        norm_ratio: pd.DataFrame | None = None,
                        reference: tuple[str, Sequence[float]] | None = None) -> Figure:
    """COS between consecutive layers, COS(l, l+1) against l, per method (paper Fig 11a); with
    `norm_ratio` (columns method, seed, layer, sample, ratio), a second panel of per-sample box
    plots of ||h^(l-1)|| / ||h^(l) - h^(l-1)|| per block and method (Fig 11b), and the paper's
    values (`reference`: label, values) dashed at the same relative depth."""
    check_columns(sim, ["method", "seed", "measure", "layer_a", "layer_b", "value"],
                   "similarity")
    rows = sim[(sim["measure"] == "cos") & (sim["layer_b"] == sim["layer_a"] + 1)]
    if rows.empty:
        raise ValueError("no centered COS rows between consecutive layers")
    with theme():
        if norm_ratio is None:
            fig, ax = plt.subplots(figsize=(5.8, 4.0), layout="constrained")
        else:
            fig, (ax, right) = plt.subplots(1, 2, figsize=(12.0, 4.2), layout="constrained")
            _norm_ratio_boxes(right, norm_ratio, reference)
        for method in ordered_methods(rows["method"]):
            stats = mean_band(rows[rows["method"] == method], "layer_a", "value", band)
            draw_band(ax, stats, "layer_a", color=method_color(method),
                       label=method_label(method))
        layer_axis(ax, sorted(int(v) for v in rows["layer_a"].unique()))
        ax.set_xlabel("layer l")
        ax.set_ylabel(f"COS(l, l+1), centered\n({BAND_LABELS[band]})")
        ax.set_ylim(min(0.0, float(rows["value"].min()) - 0.05), 1.0)
        if norm_ratio is None:
            ax.set_title(title)
            legend_below(fig, ax)
        else:
            ax.set_title("(a) adjacent layers")
            fig.suptitle(title)
            # The methods and the paper's norm ratio in one legend below both panels, off
            # the boxes.
            handles, labels = ax.get_legend_handles_labels()
            more, more_labels = right.get_legend_handles_labels()
            figure_legend(fig, handles + more, labels + more_labels)
        fit_layout(fig)
    return fig


def _norm_ratio_boxes(ax, norm_ratio: pd.DataFrame,
                      reference: tuple[str, Sequence[float]] | None) -> None:
    """Box plots of the per-sample norm ratio at every block, one box per method, seeds
    pooled, on a log axis (ratios span orders of magnitude across layers)."""
    check_columns(norm_ratio, ["method", "layer", "ratio"], "norm ratio")
    data = norm_ratio[np.isfinite(norm_ratio["ratio"])]
    methods = ordered_methods(data["method"])
    layers = sorted(int(v) for v in data["layer"].unique())
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        part = data[data["method"] == method]
        boxes = [part.loc[part["layer"] == layer, "ratio"].to_numpy() for layer in layers]
        positions = np.array(layers) + (i - (len(methods) - 1) / 2) * width
        color = method_color(method)
        ax.boxplot(boxes, positions=positions, widths=width * 0.9, patch_artist=True,
                   manage_ticks=False, flierprops={"markersize": 1.5, "alpha": 0.4},
                   boxprops={"facecolor": color, "alpha": 0.6, "linewidth": 0.8},
                   medianprops={"color": "black", "linewidth": 0.9},
                   whiskerprops={"linewidth": 0.8}, capprops={"linewidth": 0.8})
    if reference is not None:
        label, values = reference
        values = np.asarray(values, dtype=float)
        first, last = min(layers), max(layers)  # the paper's values span the same blocks
        positions = np.linspace(first, last, len(values)) if len(values) > 1 else [last]
        ax.plot(positions, values, linestyle="--", marker=".", color=reference_color(label),
                label=label, zorder=4)
    ax.set_yscale("log")
    layer_axis(ax, layers)
    ax.set_xlim(min(layers) - 0.6, max(layers) + 0.6)
    ax.set_xlabel("block l")
    ax.set_ylabel("||h^(l-1)|| / ||h^(l) − h^(l-1)||\n(per sample, seeds pooled)")
    ax.set_title("(b) residual stream against the block's update")


# --- drawing functions: scripts/plot.py's entries, named by the records of figure_kinds --------
# Each takes the options its record declares (parsed), reads the files they name and draws.
def paper_reference(key: str, label: str, acc: pd.DataFrame | None = None) -> dict | None:
    """The paper's curves of a (KEY, LABEL) option (only those of the methods in `acc`, if
    given), or None for KEY '-'."""
    methods = None if acc is None else set(acc["method"])
    return None if key == NO_REFERENCE else reference_curves(key, label, methods)


def baseline_lines(path: str | None, split: str) -> dict | None:
    """{metric: {label: value}} of the models without hidden layers in a dataset's baselines
    file (rule fit_baselines), on the split's samples (None without one): the shallow ones
    first, the trivial predictor last."""
    if path is None:
        return None
    baselines = read_json(path)
    models, names = baselines["models"], model_order(baselines)
    metrics = {metric for name in names for metric in models[name][split]}
    return {metric: {models[name]["label"]: models[name][split][metric] for name in names}
            for metric in metrics}


def draw_layerwise_accuracy(args: Namespace) -> Figure:
    """A classifier's metric, or a language model's next-token accuracy and loss (Fig 9)."""
    name, acc = args.experiment, pd.read_csv(args.accuracy)
    if "cross_entropy" in acc:  # a language model
        loss = paper_reference(*args.loss_reference, acc) if args.loss_reference else None
        return layerwise_panels_figure(
            {"top-1 next token": (acc, "accuracy", paper_reference(*args.reference, acc)
                                  if args.reference else None),
             "next-token loss": (acc, "cross_entropy", loss)},
            args.split, sharey=False, baselines=baseline_lines(args.baselines, args.split),
            title=f"{name}: layer-wise {args.split} tokens, each method's exits")
    return layerwise_accuracy_figure(
        acc, args.split, metric=args.metric,
        reference=paper_reference(*args.reference, acc) if args.reference else None,
        baselines=(baseline_lines(args.baselines, args.split) or {}).get(args.metric),
        title=f"{name}: layer-wise {args.split} {METRIC_LABELS[args.metric]}, "
              "each method's exits")


def draw_text_layerwise(args: Namespace) -> Figure:
    panels = {}
    for title, path, metric, key, label in args.task_panel:
        acc = pd.read_csv(path)
        panels[title] = (acc, metric, paper_reference(key, label, acc))
    return layerwise_panels_figure(panels, args.split, f"Layer-wise {args.split} metric "
                                   "at each method's exits (paper Fig 8 shape)")


def draw_heatmaps(args: Namespace) -> Figure:
    measure = HEATMAPS[args.measure]
    sim = pd.read_csv(args.similarity)
    sim = sim[sim["measure"] == measure.name]
    matrices = {m: frame_matrix(g) for m, g in sim.groupby("method", sort=False)}
    return heatmap_grid_figure(matrices, f"{args.experiment}: {measure.label} between layers, "
                               "mean over seeds", measure.label)


def draw_curves_vs_last(args: Namespace) -> Figure:
    return curves_vs_last_figure(pd.read_csv(args.accuracy), pd.read_csv(args.similarity),
                                 args.method, args.split)


def draw_residual_ablation(args: Namespace) -> Figure:
    panels = {label: (pd.read_csv(acc), pd.read_csv(sim)) for label, acc, sim in args.panel}
    references = None
    if args.panel_reference:  # the paper's curves of each panel, in the order of --panel
        references = {title: (label, similarity_curves(key)) for (title, _, _), (key, label)
                      in zip(args.panel, args.panel_reference)}
    return curves_vs_last_panels_figure(panels, "standard", args.split,
                                        "Residual ablation: similarity to the last layer and "
                                        "accuracy", reference=references)


def draw_cos_boxplot(args: Namespace) -> Figure:
    return cos_boxplot_figure(pd.read_csv(args.per_sample),
                              f"{args.experiment}: per-sample COS with the last layer")


def draw_adjacent_cos(args: Namespace) -> Figure:
    """With a norm-ratio file, beside the paper's DeiT-S values (Fig 11b)."""
    if args.norm_ratio is None:
        return adjacent_cos_figure(pd.read_csv(args.similarity),
                                   f"{args.experiment}: COS between consecutive layers")
    return adjacent_cos_figure(
        pd.read_csv(args.similarity), f"{args.experiment}: why adjacent layers stay similar",
        norm_ratio=pd.read_csv(args.norm_ratio),
        reference=("paper DeiT-S ImageNet (Fig 11b)",
                   paper_values()["fig11_deit_s_imagenet_val"]["norm_ratio"]))


def draw_cross_model(args: Namespace) -> Figure:
    matrix = frame_matrix(pd.read_csv(args.similarity))
    fig = similarity_heatmap_figure(matrix, f"{args.experiment}: linear CKA, standard (rows) vs "
                                    "aligned (columns), mean over seeds", "linear CKA")
    fig.axes[0].set_xlabel("aligned layer")
    fig.axes[0].set_ylabel("standard layer")
    return fig


# --- a two-tower model's image and text layers (paper Figs 22-23) ------------------------------
IMAGE_TEXT_COLUMNS = ("modality_a", "layer_a", "modality_b", "layer_b", "cos", "method", "seed")
# (modality a, modality b, which side is held at its last layer, label) of each curve
_IMAGE_TEXT_CURVES = (("image", "image", "b", "image layer vs last image layer"),
                      ("text", "text", "b", "text layer vs last text layer"),
                      ("image", "text", "b", "image layer vs last text layer"),
                      ("image", "text", "a", "text layer vs last image layer"))


def _pair_matrix(frame: pd.DataFrame, a: str, b: str) -> np.ndarray:
    """The (layers of a) x (layers of b) matrix of one pair of modalities."""
    rows = frame[(frame["modality_a"] == a) & (frame["modality_b"] == b)]
    return rows.pivot(index="layer_a", columns="layer_b", values="cos").sort_index(
        axis=0).sort_index(axis=1).to_numpy(dtype=float)


def image_text_figure(frame: pd.DataFrame, method: str, title: str) -> Figure:
    """COS of every image and text layer with the last layer of either tower (left), and the
    image-image, text-text and image-text COS of every pair of layers (heatmaps), mean over
    seeds, for one method's runs (the rows of scripts/image_text.py). Layer 0 is each tower's
    embedding; each image is compared with the prompt of its own class."""
    check_columns(frame, IMAGE_TEXT_COLUMNS, "image-text similarity")
    rows = frame[frame["method"] == method]
    if rows.empty:
        raise ValueError(f"no image-text rows of method {method!r}")
    mean = rows.groupby(["modality_a", "layer_a", "modality_b", "layer_b"], as_index=False)[
        "cos"].mean()
    matrices = {(a, b): _pair_matrix(mean, a, b)
                for a, b in (("image", "image"), ("text", "text"), ("image", "text"))}
    vmin = min(heatmap_color_limits(m)[0] for m in matrices.values())
    side = _heatmap_side(max(max(m.shape) for m in matrices.values()))
    with theme():
        fig, axes = plt.subplots(1, 4, figsize=(4.2 + 3 * side, side + 0.6),
                                 layout="compressed",
                                 gridspec_kw={"width_ratios": [1.3, 1, 1, 1]})
        curves = axes[0]
        for (a, b, held, label), color in zip(_IMAGE_TEXT_CURVES, CURVE_COLORS):
            matrix = matrices[(a, b)]
            values = matrix[:, -1] if held == "b" else matrix[-1, :]
            curves.plot(range(len(values)), values, marker="o", color=color, label=label)
        layer_axis(curves, range(max(len(m) for m in matrices.values())))
        curves.set_ylabel("COS (uncentered)")
        curves.set_title("with the last layer")
        for ax, ((a, b), matrix) in zip(axes[1:], matrices.items()):
            annotate = max(matrix.shape) <= _MAX_ANNOTATED_LAYERS
            sns.heatmap(matrix, ax=ax, vmin=vmin, vmax=1.0, cmap=_heatmap_cmap(vmin),
                        annot=_cell_labels(matrix) if annotate else False, fmt="",
                        annot_kws={"size": 7}, cbar=ax is axes[-1],
                        cbar_kws={"label": "COS"} if ax is axes[-1] else None,
                        linewidths=0.4, linecolor="white")
            for text in ax.texts:
                text.set_in_layout(False)
            ax.set_xlabel(f"{b} layer")
            ax.set_ylabel(f"{a} layer")
            ax.set_title(f"{a}-{b}")
            ax.tick_params(axis="y", labelrotation=0)
        legend_below(fig, curves)
        fig.suptitle(title, fontweight="bold")
        fit_layout(fig)
    return fig


def draw_image_text(args: Namespace) -> Figure:
    return image_text_figure(pd.read_csv(args.data), args.method,
                             f"{args.experiment}: image and text layers, {method_label(args.method)}")
