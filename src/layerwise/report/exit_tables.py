"""Tables of the early-exit study: operating points, effective depth and parameter savings.

Each builder returns a numeric frame (for the CSV) and a `format_*` twin of display strings
(for Markdown and LaTeX), to be written together with `layerwise.report.tables.write_table`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerwise.exits.parameters import (lens_parameters, multi_exit_parameters,
                                        parameter_saving)
from layerwise.exits.policies import POLICIES
from layerwise.train.methods import METHODS
from layerwise.train.runs import split_run_name

METHOD_ORDER = list(METHODS)

# Operating-point columns of the multi-exit table, with how they are shown.
EXIT_COLUMNS = {
    "full_depth_accuracy": ("full-depth acc. (%)", "percent"),
    "accuracy": ("acc. (%)", "percent"),
    "mean_exit_layer": ("E[k]", "plain"),
    "speedup": ("speed-up L/E[k]", "times"),
    "flops_ratio": ("FLOPs / full", "plain"),
}
# A language model's, beside them: the cross-entropy of the next token at full depth and at
# the exits.
LOSS_COLUMNS = {
    "full_depth_cross_entropy": ("full-depth CE (nats)", "plain"),
    "cross_entropy": ("CE (nats)", "plain"),
}
_MISSING = "–"


def exit_columns(columns) -> dict[str, tuple[str, str]]:
    """The operating-point columns a table shows: EXIT_COLUMNS, the losses where the points
    have them (a language model's), and the measured speed-ups."""
    names = {c.removesuffix("_mean") for c in columns}
    losses = {k: v for k, v in LOSS_COLUMNS.items() if k in names}
    return {**EXIT_COLUMNS, **losses, **wall_clock_columns(columns)}


def _rank(value: str, order) -> int:
    return order.index(value) if value in order else len(order)


def mean_sd(frame: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean, sample sd (ddof=1; empty for one seed) and count over seeds of `columns` per group."""
    groups = frame.groupby(by, sort=False)
    table = groups.size().rename("n").reset_index()
    for column in columns:
        stats = groups[column].agg(["mean", "std"]).reset_index(drop=True)
        table[f"{column}_mean"], table[f"{column}_sd"] = stats["mean"], stats["std"]
    return table


def _cell(mean: float, sd: float, style: str) -> str:
    if pd.isna(mean):
        return _MISSING
    scale, suffix, digits = {"percent": (100, "", 1), "times": (1, "×", 2),
                             "plain": (1, "", 2)}[style]
    text = f"{scale * mean:.{digits}f}"
    if not pd.isna(sd):
        text += f" ± {scale * sd:.{digits}f}"
    return text + suffix


def format_columns(table: pd.DataFrame, keys: dict[str, str],
                   columns: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Display strings: the `keys` columns as they are, each of `columns` as mean ± sd."""
    out = pd.DataFrame({label: table[key].astype(str) for key, label in keys.items()})
    for column, (label, style) in columns.items():
        out[label] = [_cell(m, s, style) for m, s in
                      zip(table[f"{column}_mean"], table[f"{column}_sd"])]
    return out


# --- multi-exit: operating points ---------------------------------------------------------
def wall_clock_columns(columns) -> dict[str, tuple[str, str]]:
    """Display names of the measured speed-up columns, one per timed batch size, from the
    per-run columns wall_speedup_b<size> (or their _mean/_sd forms)."""
    sizes = sorted({int(c.removeprefix("wall_speedup_b").split("_")[0]) for c in columns
                    if c.startswith("wall_speedup_b")})
    return {f"wall_speedup_b{b}": (f"wall-clock speed-up, batch {b}", "times") for b in sizes}


def exit_table(points: pd.DataFrame) -> pd.DataFrame:
    """Per method and policy, mean and sd over seeds of the test metrics at the operating point
    (full-depth accuracy, accuracy, E[k], speed-up, FLOPs ratio, measured speed-ups)."""
    columns = list(exit_columns(points.columns))
    rank = points["policy"].map(lambda p: _rank(p, list(POLICIES))) * 10 + points["method"].map(
        lambda m: _rank(m, METHOD_ORDER))
    points = points.iloc[np.argsort(rank.to_numpy(), kind="stable")]
    return mean_sd(points, ["policy", "method"], columns)


def format_exit_table(table: pd.DataFrame) -> pd.DataFrame:
    return format_columns(table, {"policy": "policy", "method": "method", "n": "n"},
                   exit_columns(table.columns))


# --- effective depth ----------------------------------------------------------------------
def effective_depth_table(depths: pd.DataFrame) -> pd.DataFrame:
    """Per run name and split: model depth, absolute and relative effective depth over seeds."""
    def rank(run: str) -> int:  # shallow standard models first, then the methods
        method, depth = split_run_name(run)
        return depth if depth is not None else 1000 + _rank(method, METHOD_ORDER)

    depths = depths.iloc[np.lexsort((depths["run"].map(rank), depths["split"]))]
    return mean_sd(depths, ["split", "run", "depth"], ["effective_depth", "relative_depth"])


def format_effective_depth_table(table: pd.DataFrame, epsilon: float) -> pd.DataFrame:
    return format_columns(table, {"split": "split", "run": "run", "depth": "L", "n": "n"}, {
        "effective_depth": (f"depth at acc ≥ 1-ε (ε={epsilon:g})", "plain"),
        "relative_depth": ("depth at acc ≥ (1-ε)·acc(L)", "plain")})


# --- parameter savings (paper Table 1) ----------------------------------------------------
def parameter_rows(paper_rows: list[dict], model_row: dict | None = None) -> pd.DataFrame:
    """The paper's Table 1 recomputed by the formula multi = single + (L-1) K d, beside the
    values it prints; `model_row` adds this study's model with the multi-exit size counted in
    the built model. Beside them, what a tuned lens adds to the single-classifier model
    instead of exit heads, (L-1)(d^2 + d) (this study's model: counted). Parameter counts are
    absolute numbers, savings fractions."""
    rows = []
    for row in paper_rows:
        single = row["single_M"] * 1e6
        multi = multi_exit_parameters(single, row["layers"], row["classes"], row["hidden_dim"])
        rows.append({"model": row["model"], "source": "paper Table 1", "width": row["hidden_dim"],
                     "classes": row["classes"], "layers": row["layers"], "single": single,
                     "multi_formula": multi, "saving_formula": parameter_saving(single, multi),
                     "multi_reported": row["multi_M"] * 1e6,
                     "saving_reported": row["saving_pct"] / 100,
                     "lens": lens_parameters(row["layers"], row["hidden_dim"])})
    if model_row is not None:
        single, counted = model_row["single"], model_row["multi_counted"]
        multi = multi_exit_parameters(single, model_row["layers"], model_row["classes"],
                                      model_row["width"])
        rows.append({"model": model_row["model"], "source": "this study (counted)",
                     "width": model_row["width"], "classes": model_row["classes"],
                     "layers": model_row["layers"], "single": single, "multi_formula": multi,
                     "saving_formula": parameter_saving(single, multi),
                     "multi_reported": counted,
                     "saving_reported": parameter_saving(single, counted),
                     "lens": model_row["lens_counted"]})
    return pd.DataFrame(rows)


def format_parameter_table(table: pd.DataFrame) -> pd.DataFrame:
    def millions(values):
        return [f"{v / 1e6:.2f}M" if v >= 1e5 else f"{int(v):,}" for v in values]

    def percent(values):
        return [f"{100 * v:.2f}%" for v in values]

    return pd.DataFrame({
        "model": table["model"], "source": table["source"], "d": table["width"],
        "K": table["classes"], "L": table["layers"], "single": millions(table["single"]),
        "multi = single + (L-1)Kd": millions(table["multi_formula"]),
        "saving (formula)": percent(table["saving_formula"]),
        "multi (paper / counted)": millions(table["multi_reported"]),
        "saving (paper / counted)": percent(table["saving_reported"]),
        "tuned lens (L-1)(d²+d)": millions(table["lens"]),
    })
