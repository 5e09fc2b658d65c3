"""Figures of the early-exit study: the accuracy/speed-up trade-off, exit counts per layer,
saturation layers with the COS curve, and the depth study (paper Figs 1c, 3, 5, 6, 7).

Same conventions as `layerwise.report.style` (its theme, method colors and spread bands): every
function takes tidy frames and returns a Figure; `layerwise.report.style.save_figure` writes it.
"""

from __future__ import annotations

from argparse import Namespace

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from layerwise.exits.policies import POLICIES
from layerwise.report.style import (draw_band, figure_legend, fit_layout, layer_axis,
                                    legend_below, mean_band, method_color, method_label,
                                    ordered_methods, theme)
from layerwise.similarity.measures import similarity_to_last
from layerwise.exits.saturation import effective_depth
from layerwise.train.runs import split_run_name


def _policies(frame: pd.DataFrame) -> list[str]:
    """The policies of a frame in registry order, unknown ones after them as they come."""
    present = list(dict.fromkeys(frame["policy"]))
    return [p for p in POLICIES if p in present] + [p for p in present if p not in POLICIES]


def _title(policy: str) -> str:
    return POLICIES[policy].label if policy in POLICIES else policy


def _panels(count: int, width: float = 4.2, height: float = 3.6):
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), layout="constrained",
                             squeeze=False)
    return fig, list(axes[0])


def exit_tradeoff_figure(sweep: pd.DataFrame, title: str, split: str = "test") -> Figure:
    """Accuracy against the paper's speed-up L/E[k] over the threshold sweep, one panel per
    policy: a thin line per run, a marker at each run's operating point (chosen on
    validation)."""
    data = sweep[sweep["split"] == split]
    policies = _policies(data)
    low = max(0.0, float(data["accuracy"].min()) - 0.05)  # shared, so panels compare
    with theme():
        fig, axes = _panels(len(policies))
        for ax, policy in zip(axes, policies):
            rows = data[data["policy"] == policy]
            for method in ordered_methods(rows["method"]):
                color = method_color(method)
                for index, (_, run) in enumerate(rows[rows["method"] == method].groupby("seed")):
                    run = run.sort_values("speedup")
                    ax.plot(run["speedup"], run["accuracy"], color=color, linewidth=1.1,
                            alpha=0.7, label=method_label(method) if index == 0 else None)
                    chosen = run[run["selected"]]
                    ax.plot(chosen["speedup"], chosen["accuracy"], marker="o", markersize=7,
                            color=color, markeredgecolor="black", linestyle="none", zorder=4)
            ax.set_title(_title(policy))
            ax.set_xlabel("speed-up L / E[k]")
            ax.set_ylim(low, 1.0)
        axes[0].set_ylabel(f"{split} accuracy\n(one line per seed; ● operating point)")
        fig.suptitle(title)
        legend_below(fig, axes[0])
        fit_layout(fig)
    return fig


def exit_counts_figure(counts: pd.DataFrame, title: str) -> Figure:
    """Fraction of test samples exiting at each layer at the operating point, per method (mean
    over seeds), one panel per policy (the paper's Fig 7 shape)."""
    counts = counts.assign(fraction=counts["count"] / counts.groupby(
        ["method", "seed", "policy"])["count"].transform("sum"))
    policies = _policies(counts)
    with theme():
        fig, axes = _panels(len(policies))
        for ax, policy in zip(axes, policies):
            rows = counts[counts["policy"] == policy]
            methods = ordered_methods(rows["method"])
            width = 0.8 / len(methods)
            for index, method in enumerate(methods):
                mean = rows[rows["method"] == method].groupby("layer")["fraction"].mean()
                ax.bar(mean.index + (index - (len(methods) - 1) / 2) * width, mean.to_numpy(),
                       width=width, color=method_color(method), label=method_label(method))
            layers = sorted(rows["layer"].unique())
            layer_axis(ax, layers)
            ax.set_xlim(min(layers) - 0.6, max(layers) + 0.6)  # room for the outer bars
            ax.set_title(_title(policy))
        axes[0].set_ylabel("fraction of test samples\nexiting (mean over seeds)")
        fig.suptitle(title)
        legend_below(fig, axes[0])
        fit_layout(fig)
    return fig


def saturation_figure(saturation: pd.DataFrame, similarity: pd.DataFrame, title: str) -> Figure:
    """Per method, the fraction of samples whose prediction saturates at each layer (bars), its
    cumulative sum (line) and COS(l, L) (centered, dashed, on the same [0, 1] scale, so no
    second axis crowds the next panel); a last panel overlays the cumulative curves of all
    methods (the paper's Figs 1c, 3 and 6)."""
    last = int(saturation["saturation_layer"].max())
    hist = (saturation.groupby(["method", "seed"])["saturation_layer"]
            .value_counts(normalize=True).rename("fraction").reset_index())
    methods = ordered_methods(saturation["method"])
    with theme():
        fig, axes = _panels(len(methods) + 1)
        for ax, method in zip(axes, methods):
            color = method_color(method)
            grid = _per_layer(hist[hist["method"] == method], last)
            ax.bar(grid.columns, grid.mean().to_numpy(), color=color, alpha=0.55)
            ax.plot(grid.columns, grid.cumsum(axis=1).mean().to_numpy(), color=color,
                    marker="o", markersize=4)
            ax.set_title(method_label(method), color=color)
            layer_axis(ax, list(grid.columns))
            cos = similarity[(similarity["method"] == method) &
                             (similarity["measure"] == "cos")]
            low = 0.0
            if not cos.empty:
                stats = mean_band(similarity_to_last(cos, "cos", last), "layer", "value")
                ax.plot(stats["layer"], stats["mean"], color="black", linestyle="--",
                        marker="s", markersize=3)
                low = min(0.0, float(stats["mean"].min()) - 0.05)
            ax.set_ylim(low, 1.0)
        axes[0].set_ylabel(f"fraction of test samples\nand COS(l, {last}) (dashed)")
        for method in methods:
            grid = _per_layer(hist[hist["method"] == method], last).cumsum(axis=1)
            axes[-1].plot(grid.columns, grid.mean().to_numpy(), color=method_color(method),
                          marker="o", markersize=4, label=method_label(method))
        axes[-1].set_title("saturated by layer l")
        axes[-1].set_ylim(0.0, 1.0)
        layer_axis(axes[-1], list(range(1, last + 1)))
        fig.suptitle(title)
        grey = "#7f7f7f"
        keys = [Patch(color=grey, alpha=0.55, label="saturating at layer l (bars)"),
                Line2D([], [], color=grey, marker="o", label="saturated by layer l (cumulative)"),
                Line2D([], [], color="black", linestyle="--", marker="s", markersize=3,
                       label=f"COS(l, {last}), centered (dashed)")]
        handles, labels = axes[-1].get_legend_handles_labels()
        figure_legend(fig, keys + handles, [key.get_label() for key in keys] + labels)
        fit_layout(fig)
    return fig


def _per_layer(hist: pd.DataFrame, last: int) -> pd.DataFrame:
    """seeds x layers 1..L of the saturation fractions, zero where no sample saturates."""
    grid = hist.pivot_table(index="seed", columns="saturation_layer", values="fraction",
                            fill_value=0.0)
    return grid.reindex(columns=range(1, last + 1), fill_value=0.0)


def _run_styles(runs: list[str]) -> dict[str, tuple[str, str, str]]:
    """Color, marker and label of each run; the shallower standard models are lighter shades
    of the standard color, the shallowest lightest."""
    shallow = sorted((d for d in (split_run_name(r)[1] for r in runs) if d is not None))
    base = np.array(mcolors.to_rgb(method_color("standard")))
    styles = {}
    for run in runs:
        method, depth = split_run_name(run)
        if depth is None:
            styles[run] = (method_color(method), "o", method_label(method))
            continue
        rank = shallow.index(depth)
        tint = 0.55 - 0.3 * rank / max(1, len(shallow) - 1) if len(shallow) > 1 else 0.45
        styles[run] = (mcolors.to_hex(base + (1 - base) * tint), "^sDv"[rank % 4],
                       f"standard, {depth} layers")
    return styles


def depth_study_figure(accuracy: pd.DataFrame, epsilon: float, split: str, title: str,
                       val_curves: pd.DataFrame | None = None) -> Figure:
    """Layer-wise accuracy of the standard models of every depth and the aligned model (mean
    and sd over seeds), the 1 - epsilon line, and a star at each model's effective depth (of
    its mean curve): the paper's Fig 5. Multi-exit runs, read through their own heads, are
    left out. With `val_curves` (run, seed, epoch, val_accuracy from the training logs), a
    second panel draws each model's validation accuracy per epoch (Fig 5's second panel)."""
    data = accuracy[(accuracy["split"] == split) & (accuracy["layer"] >= 1)]
    data = data[data["run"].map(lambda r: split_run_name(r)[0] in ("standard", "aligned"))]
    runs = sorted(data["run"].unique(), key=lambda r: (split_run_name(r)[1] or 10**6,
                                                       r != "standard"))
    with theme():
        if val_curves is None:
            fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        else:
            fig, (ax, right) = plt.subplots(1, 2, figsize=(12.4, 4.4), layout="constrained")
        styles = _run_styles(runs)
        for run in runs:
            color, marker, label = styles[run]
            stats = mean_band(data[data["run"] == run], "layer", "accuracy")
            depth = effective_depth(stats["mean"].to_numpy(), epsilon)
            draw_band(ax, stats, "layer", color=color, marker=marker,
                       label=f"{label}: effective depth {depth}")
            ax.plot([depth], [stats["mean"].iloc[depth - 1]], marker="*", markersize=15,
                    color=color, markeredgecolor="black", zorder=5)
        ax.axhline(1 - epsilon, color="black", linestyle=":", linewidth=1.2,
                   label=f"1 - ε = {1 - epsilon:g}")
        layer_axis(ax, sorted(data["layer"].unique()))
        ax.set_ylim(0.0, 1.02)
        ax.set_ylabel(f"{split} accuracy\n(mean ± 1 sd over seeds)")
        if val_curves is None:
            ax.set_title(title)
        else:
            ax.set_title(f"(a) layer-wise {split} accuracy")
            _val_accuracy_panel(right, val_curves, runs, styles)
            fig.suptitle(title)
        legend_below(fig, ax)
        fit_layout(fig)
    return fig


def _val_accuracy_panel(ax, val_curves: pd.DataFrame, runs: list[str], styles: dict) -> None:
    """Validation accuracy of each model after every epoch, mean and sd over seeds."""
    for run in runs:
        rows = val_curves[val_curves["run"] == run]
        if rows.empty:
            continue
        color, marker, _ = styles[run]
        draw_band(ax, mean_band(rows, "epoch", "val_accuracy"), "epoch", color=color,
                  marker=marker)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy\n(mean ± 1 sd over seeds)")
    ax.set_ylim(0.0, 1.02)
    ax.set_title("(b) validation accuracy per epoch")


# --- drawing functions: scripts/plot.py's entries, named by the records of figure_kinds --------
def draw_exit_tradeoff(args: Namespace) -> Figure:
    return exit_tradeoff_figure(pd.read_csv(args.data), f"{args.experiment}: early exit, "
                                f"{args.split} accuracy against speed-up over the threshold "
                                "sweep", args.split)


def draw_exit_counts(args: Namespace) -> Figure:
    return exit_counts_figure(pd.read_csv(args.data),
                              f"{args.experiment}: exit layer at the operating point (test)")


def draw_saturation(args: Namespace) -> Figure:
    return saturation_figure(pd.read_csv(args.data), pd.read_csv(args.similarity),
                             f"{args.experiment}: saturation layer of each test sample")


def draw_depth_study(args: Namespace) -> Figure:
    return depth_study_figure(pd.read_csv(args.data), args.epsilon, args.split,
                              f"{args.experiment}: layer-wise {args.split} accuracy by model "
                              "depth", None if args.val_curves is None
                              else pd.read_csv(args.val_curves))
