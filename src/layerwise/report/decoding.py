"""A language model's decoding: the self-speculative decoder's table (its fixed and its
confidence-stopped draft timed against full depth) and figure (acceptance and tokens per pass
against the draft exit E), and the paper's Fig 9 (c, d) (diversity and
coherence of text sampled with the exit fixed at layer k).

Tidy frames in, as the rest of the report: `speculative` holds, per run, a row per timed draft
and a row per draft exit (`layerwise.exits.speculative.speculative_study`, with method and
seed), `generation` one row
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
    "stop_below": ("stop below top probability", "plain"),
    "acceptance": ("acceptance (%)", "percent"),
    "tokens_per_pass": ("tokens per pass", "plain"),
    "tokens_per_s_full_depth": ("full depth (tokens/s)", "plain"),
    "tokens_per_s_speculative": ("speculative (tokens/s)", "plain"),
    "wall_speedup": ("speed-up (median over prompts)", "times"),
}
#: The two timed drafts of every run, in table order (`layerwise.exits.speculative`).
DRAFT_KINDS = ("fixed", "adaptive")


def _draft_choices(rows: pd.DataFrame) -> str:
    """The draft each seed chose, e.g. 'final E=2 g=4 (3)' or 'exit E=1 g=8 (2), final E=2
    g=8 (1)': the head the draft reads layer E through, E and the draft length g."""
    plans = rows.groupby(["head", "exit_layer", "draft_length"]).size()
    return ", ".join(f"{head} E={e} g={g} ({n})" for (head, e, g), n in plans.items())


def speculative_table(speculative: pd.DataFrame) -> pd.DataFrame:
    """Per method and draft (fixed length, or stopped when unsure), over seeds: the draft each
    run chose on validation prompts, its stop threshold, and on test prompts its acceptance,
    tokens per pass, tokens per second against full depth's and the speed-up; how many seeds
    found it the faster of the two on validation; and whether every output equalled
    full-depth greedy decoding."""
    check_columns(speculative, ["method", "seed", "kind", "head", "exit_layer", "draft_length",
                                "chosen", "equal_to_full_depth", *SPECULATIVE_COLUMNS],
                  "speculative")
    timed = speculative[speculative["kind"].isin(DRAFT_KINDS)]
    order = [(m, k) for m in ordered_methods(timed["method"]) for k in DRAFT_KINDS
             if ((timed["method"] == m) & (timed["kind"] == k)).any()]
    timed = timed.set_index(["method", "kind"]).loc[order].reset_index()
    table = mean_sd(timed, ["method", "kind"], list(SPECULATIVE_COLUMNS))
    groups = [timed[(timed["method"] == m) & (timed["kind"] == k)] for m, k in order]
    table.insert(2, "draft", [_draft_choices(rows) for rows in groups])
    table["faster_on_val"] = [int(rows["chosen"].astype(bool).sum()) for rows in groups]
    table["equal_to_full_depth"] = [bool(rows["equal_to_full_depth"].astype(bool).all())
                                    for rows in groups]
    return table


def format_speculative_table(table: pd.DataFrame) -> pd.DataFrame:
    out = format_columns(table, {"method": "method", "kind": "draft", "n": "n",
                                 "draft": "chosen head, E, g (seeds)"}, SPECULATIVE_COLUMNS)
    out["faster on validation (seeds)"] = [f"{k}/{n}" for k, n in zip(table["faster_on_val"],
                                                                      table["n"])]
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
    """Acceptance (beside the share of test tokens predicted at E as at L) and tokens per
    verification pass against the draft exit E, a line per method (mean and sd over seeds):
    each run's fixed draft (its head and length) replayed at every E on the test prompts."""
    import matplotlib.pyplot as plt

    check_columns(speculative, ["method", "seed", "kind", "exit_layer", "acceptance",
                                "layer_agreement", "tokens_per_pass"], "speculative")
    speculative = speculative[speculative["kind"] == "exit"]
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
        _per_method(speed, speculative, "exit_layer", "tokens_per_pass")
        speed.axhline(1.0, color="black", linestyle=":", linewidth=1.0)
        speed.set_ylabel("tokens per verification pass")
        _finish(fig, (accept, speed), layers, "draft exit E", title, columns=4)
    return fig


def generation_figure(generation: pd.DataFrame, title: str) -> Figure:
    """The paper's Fig 9 (c, d): diversity and coherence of text sampled with the exit fixed at
    layer k, a line per method (mean and sd over seeds); the coherence axis names its measure
    (the SimCSE cosine, or the offline substitute and the model that judged every method's
    text)."""
    import matplotlib.pyplot as plt

    check_columns(generation, ["method", "seed", "exit_layer", "diversity", "coherence",
                               "coherence_measure"], "generation")
    measures = sorted(set(generation["coherence_measure"]))
    if len(measures) != 1:
        raise ValueError(f"generation rows mix coherence measures {measures}")
    judges = sorted(set(generation.get("coherence_judge", pd.Series(dtype=str)).dropna()))
    judge = judges[0] if len(judges) == 1 else "each method's own model"
    label = {"simcse_cosine": "coherence (SimCSE cosine)",
             "full_depth_ce_nats": f"substitute for coherence:\nCE of the continuation "
                                   f"under\n{judge}\n(nats; lower: more fluent)"}.get(
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
