"""A language model's decoding: the self-speculative decoder's table and figure (acceptance and
measured speed-up against the draft exit E), and the paper's Fig 9 (c, d) (diversity and
coherence of text sampled with the exit fixed at layer k).

Tidy frames in, as the rest of the report: `speculative` holds one row per run and draft exit
(`layerwise.exits.speculative.speculative_study`, with method and seed), `generation` one row
per run and exit layer (`layerwise.exits.generation.generation_frame`).
"""

from __future__ import annotations

from argparse import Namespace

import pandas as pd
from matplotlib.figure import Figure

from layerwise.report.exit_tables import format_columns, mean_sd
from layerwise.report.style import (check_columns, draw_band, figure_legend, fit_layout,
                                    layer_axis, mean_band, method_color, method_label,
                                    ordered_methods, theme)

# The speculative table's measured columns, with how they are shown.
SPECULATIVE_COLUMNS = {
    "acceptance": ("acceptance (%)", "percent"),
    "layer_agreement": ("test tokens with layer-E = layer-L prediction (%)", "percent"),
    "tokens_per_pass": ("tokens per pass", "plain"),
    "tokens_per_s_full_depth": ("full depth (tokens/s)", "plain"),
    "tokens_per_s_speculative": ("speculative (tokens/s)", "plain"),
    "wall_speedup": ("speed-up", "times"),
}


def _draft_choices(rows: pd.DataFrame) -> str:
    """The chosen (E, g) of each seed, e.g. 'E=2 g=4 (3)' or 'E=2 g=4 (2), E=3 g=4 (1)'."""
    pairs = rows.groupby(["exit_layer", "draft_length"]).size()
    return ", ".join(f"E={e} g={g} ({n})" for (e, g), n in pairs.items())


def speculative_table(speculative: pd.DataFrame) -> pd.DataFrame:
    """Per method, over seeds: the (E, g) chosen on validation prompts, and on test prompts at
    it the acceptance, the share of test tokens already predicted at E, tokens per pass, tokens
    per second of full-depth and speculative decoding and the speed-up; and whether every
    output equalled full-depth greedy decoding."""
    check_columns(speculative, ["method", "seed", "chosen", *SPECULATIVE_COLUMNS],
                  "speculative")
    chosen = speculative[speculative["chosen"].astype(bool)]
    order = ordered_methods(chosen["method"])
    chosen = chosen.set_index("method").loc[order].reset_index()
    table = mean_sd(chosen, ["method"], list(SPECULATIVE_COLUMNS))
    table.insert(1, "draft", [_draft_choices(chosen[chosen["method"] == m]) for m in order])
    equal = speculative.groupby("method")["equal_to_full_depth"].all()
    table["equal_to_full_depth"] = [bool(equal[m]) for m in order]
    return table


def format_speculative_table(table: pd.DataFrame) -> pd.DataFrame:
    out = format_columns(table, {"method": "method", "n": "n", "draft": "chosen (E, g) (seeds)"},
                  SPECULATIVE_COLUMNS)
    out["output = full depth"] = ["yes" if v else "NO" for v in table["equal_to_full_depth"]]
    return out


def _per_method(ax, frame: pd.DataFrame, x: str, y: str, scale: float = 1.0) -> None:
    for method in ordered_methods(frame["method"]):
        rows = frame[frame["method"] == method].assign(**{y: lambda f: f[y] * scale})
        draw_band(ax, mean_band(rows, x, y), x, color=method_color(method),
                  label=f"{method_label(method)} (n={rows['seed'].nunique()})")


def _finish(fig: Figure, axes, layers: list[int], xlabel: str, title: str, columns: int
            ) -> None:
    """The layer axes of a two-panel decoding figure, one legend below (the first panel's
    entries) and the title."""
    for ax in axes:
        layer_axis(ax, layers)
        ax.set_xlabel(xlabel)
    fig.suptitle(title, fontweight="bold")
    figure_legend(fig, *axes[0].get_legend_handles_labels(), columns=columns)
    fit_layout(fig)


def speculative_figure(speculative: pd.DataFrame, title: str) -> Figure:
    """Acceptance (beside the share of test tokens predicted at E as at L) and measured speed-up
    over full-depth greedy decoding against the draft exit E, a line per method (mean and sd
    over seeds), at each run's chosen draft length."""
    import matplotlib.pyplot as plt

    check_columns(speculative, ["method", "seed", "exit_layer", "acceptance",
                                "layer_agreement", "wall_speedup"], "speculative")
    layers = sorted(int(v) for v in speculative["exit_layer"].unique())
    with theme():
        fig, (accept, speed) = plt.subplots(1, 2, figsize=(9.6, 4.0), layout="constrained")
        _per_method(accept, speculative, "exit_layer", "acceptance", 100)
        for method in ordered_methods(speculative["method"]):
            rows = speculative[speculative["method"] == method]
            stats = rows.groupby("exit_layer")["layer_agreement"].mean() * 100
            accept.plot(stats.index, stats.to_numpy(), color=method_color(method),
                        linestyle=":", linewidth=1.2)
        accept.plot([], [], color="grey", linestyle=":", label="test tokens predicted at E as at L")
        accept.set_ylabel("drafted tokens accepted (%)")
        accept.set_ylim(0, 100)
        _per_method(speed, speculative, "exit_layer", "wall_speedup")
        speed.axhline(1.0, color="black", linestyle=":", linewidth=1.0)
        speed.set_ylabel("tokens/s over full depth (batch 1)")
        _finish(fig, (accept, speed), layers, "draft exit E", title, columns=4)
    return fig


def generation_figure(generation: pd.DataFrame, title: str) -> Figure:
    """The paper's Fig 9 (c, d): diversity and coherence of text sampled with the exit fixed at
    layer k, a line per method (mean and sd over seeds); the coherence axis names its measure
    (the SimCSE cosine, or the offline substitute)."""
    import matplotlib.pyplot as plt

    check_columns(generation, ["method", "seed", "exit_layer", "diversity", "coherence",
                               "coherence_measure"], "generation")
    measures = sorted(set(generation["coherence_measure"]))
    if len(measures) != 1:
        raise ValueError(f"generation rows mix coherence measures {measures}")
    label = {"simcse_cosine": "coherence (SimCSE cosine)",
             "full_depth_ce_nats": "substitute for coherence:\nfull-depth CE of the "
                                   "continuation\n(nats; lower: more fluent)"}.get(
        measures[0], measures[0])
    layers = sorted(int(v) for v in generation["exit_layer"].unique())
    with theme():
        fig, (diverse, coherent) = plt.subplots(1, 2, figsize=(9.6, 4.0), layout="constrained")
        _per_method(diverse, generation, "exit_layer", "diversity")
        diverse.set_ylabel("diversity (SimCTG)")
        diverse.set_ylim(0, 1.02)
        _per_method(coherent, generation, "exit_layer", "coherence")
        coherent.set_ylabel(label)
        _finish(fig, (diverse, coherent), layers, "exit layer k", title, columns=4)
    return fig


# --- drawing functions: scripts/plot.py's entries, named by the records of figure_kinds --------
def draw_speculative(args: Namespace) -> Figure:
    return speculative_figure(pd.read_csv(args.data), f"{args.experiment}: self-speculative "
                              "greedy decoding (test prompts, batch 1)")


def draw_generation(args: Namespace) -> Figure:
    return generation_figure(pd.read_csv(args.data), f"{args.experiment}: text sampled with "
                             "the exit fixed at layer k (paper Fig 9 c, d)")


__all__ = ["draw_generation", "draw_speculative", "format_speculative_table",
           "generation_figure", "speculative_figure", "speculative_table"]
