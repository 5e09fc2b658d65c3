"""Result tables written as CSV, GitHub markdown and booktabs LaTeX.

Each table is kept in two forms:

* a **numeric** frame, tidy and machine-readable, which goes to ``<stem>.csv`` unchanged
  (accuracies as fractions in [0, 1], full float precision, empty cells for missing values);
* an optional **formatted** frame of strings for people, which goes to ``<stem>.md`` and
  ``<stem>.tex`` (e.g. "87.3 ± 1.2" in percent).

:func:`layerwise_accuracy_table` builds the numeric frame and :func:`format_accuracy_table`
its formatted twin; pass both to :func:`write_table`::

    table = layerwise_accuracy_table(acc, "test")
    write_table(table, stem, caption, formatted=format_accuracy_table(table))

The markdown and LaTeX are produced here rather than with ``DataFrame.to_markdown`` /
``DataFrame.to_latex``, which need the optional ``tabulate`` and ``jinja2`` packages.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from layerwise.baselines import model_order
from layerwise.io import atomic_path
from layerwise.train.methods import ordered

__all__ = [
    "write_table",
    "layerwise_accuracy_table",
    "format_accuracy_table",
    "markdown_table",
    "latex_table",
]

_MISSING = "–"


def _cell_text(value) -> str:
    """Human text of one cell: floats to 4 significant digits, missing values as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return _MISSING
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def _text_frame(frame: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, rows of cell text, and whether each column is numeric (right-aligned)."""
    header = [str(c) for c in frame.columns]
    rows = [[_cell_text(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    numeric = []
    for i, column in enumerate(frame.columns):
        if pd.api.types.is_numeric_dtype(frame[column]):
            numeric.append(True)
        else:  # formatted numbers such as "87.3 ± 1.2" are right-aligned too
            numeric.append(all(re.match(r"^[-+]?\d", r[i]) or r[i] == _MISSING for r in rows)
                           and bool(rows))
    return header, rows, numeric


def markdown_table(frame: pd.DataFrame, caption: str = "") -> str:
    """GitHub pipe table of `frame` (index dropped), preceded by `caption` if given."""
    header, rows, numeric = _text_frame(frame)

    def escape(text: str) -> str:
        return text.replace("|", r"\|").replace("\n", " ")

    widths = [max([len(escape(h))] + [len(escape(r[i])) for r in rows] + [3])
              for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        padded = [escape(c).rjust(w) if num else escape(c).ljust(w)
                  for c, w, num in zip(cells, widths, numeric)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if num else ("-" * w)
                             for w, num in zip(widths, numeric)) + " |"
    lines = [line(header), rule] + [line(r) for r in rows]
    text = "\n".join(lines) + "\n"
    return f"{caption.strip()}\n\n{text}" if caption.strip() else text


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "–": "--", "—": "---",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(frame: pd.DataFrame, caption: str = "", label: str | None = None) -> str:
    """Booktabs LaTeX tabular of `frame` (index dropped).

    With a caption (or label) the tabular is wrapped in a ``table`` float carrying them.
    Needs ``\\usepackage{booktabs}`` in the document.
    """
    header, rows, numeric = _text_frame(frame)
    spec = "".join("r" if num else "l" for num in numeric)
    body = [
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(_latex_escape(h) for h in header) + r" \\",
        r"\midrule",
        *(" & ".join(_latex_escape(c) for c in r) + r" \\" for r in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    if not caption.strip() and label is None:
        return "\n".join(body) + "\n"
    wrapped = [r"\begin{table}[ht]", r"\centering"]
    if caption.strip():
        wrapped.append(rf"\caption{{{_latex_escape(caption.strip())}}}")
    if label is not None:
        wrapped.append(rf"\label{{{label}}}")
    wrapped += body + [r"\end{table}"]
    return "\n".join(wrapped) + "\n"


def gather_runs(runs: Sequence[dict], part: str, name: str = "method") -> pd.DataFrame:
    """One tidy frame of one file per run: `runs` as a gathering job's spec lists them (each
    with `method`, `seed` and its `files` by part), `part` picks the file; the run's name (as
    column `name`) and seed come first."""
    frame = pd.concat([pd.read_csv(run["files"][part]).assign(**{name: run["method"]},
                                                               seed=int(run["seed"]))
                       for run in runs], ignore_index=True)
    return frame[[name, "seed"] + [c for c in frame if c not in (name, "seed")]]


def over_seeds(frame: pd.DataFrame) -> str:
    """'mean ± sd over N seeds' for the runs in `frame` (its `seed` column), for captions."""
    seeds = frame["seed"].nunique()
    return f"mean ± sd over {seeds} seed{'s' * (seeds != 1)}"


def write_table(
    frame: pd.DataFrame,
    stem: Path | str | os.PathLike,
    caption: str = "",
    formatted: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write `<stem>.csv`, `<stem>.md` and `<stem>.tex`, each atomically.

    The CSV is `frame` as is (numeric, no index). The markdown and LaTeX show `formatted` when
    given (a frame of display strings, e.g. from :func:`format_accuracy_table`), else `frame`
    with floats at 4 significant digits. `caption` heads the markdown and captions the LaTeX
    table. Returns the three paths keyed by suffix ("csv", "md", "tex").
    """
    stem = Path(stem)
    shown = frame if formatted is None else formatted
    paths = {ext: stem.with_name(f"{stem.name}.{ext}") for ext in ("csv", "md", "tex")}
    with atomic_path(paths["csv"]) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(markdown_table(shown, caption), encoding="utf-8")
    with atomic_path(paths["tex"]) as tmp:
        tmp.write_text(latex_table(shown, caption), encoding="utf-8")
    return paths


def layerwise_accuracy_table(acc: pd.DataFrame, split: str, metric: str = "accuracy"
                             ) -> pd.DataFrame:
    """Numeric per-layer accuracy table for one split: one row per layer 1..L (of the `metric`
    column, e.g. "f1" for the GLUE tasks the paper scores by F1).

    Columns: ``layer``, then for each method (standard, aligned, multi_exit, then others)
    ``<method>_mean`` and ``<method>_sd`` (accuracy as a fraction in [0, 1]; sd is the sample
    standard deviation over seeds, ``ddof=1``, missing for a single seed) and ``<method>_n``
    (number of seeds). This is the tidy CSV form; :func:`format_accuracy_table` turns it into
    "mean ± sd" strings in percent for markdown and LaTeX.
    """
    missing = [c for c in ("method", "seed", "split", "layer", metric) if c not in acc]
    if missing:
        raise ValueError(f"accuracy frame lacks columns {missing}")
    data = acc[(acc["split"] == split) & (acc["layer"] >= 1)]
    if data.empty:
        raise ValueError(f"no {metric} rows for split {split!r} at layers >= 1")
    stats = (data.groupby(["method", "layer"])[metric]
             .agg(mean="mean", sd="std", n="count").reset_index())
    table = pd.DataFrame({"layer": sorted(int(v) for v in data["layer"].unique())})
    for method in ordered(data["method"]):
        part = stats[stats["method"] == method].set_index("layer")
        for col in ("mean", "sd", "n"):
            table[f"{method}_{col}"] = table["layer"].map(part[col]).to_numpy()
        table[f"{method}_n"] = table[f"{method}_n"].astype("Int64")
    return table


def format_accuracy_table(table: pd.DataFrame, decimals: int = 1, scale: float = 100
                          ) -> pd.DataFrame:
    """Display form of :func:`layerwise_accuracy_table`: "mean ± sd" per method, in percent
    (`scale` 1 shows the values as they are, e.g. a cross-entropy).

    Column headers are "<method> (n=<seeds>)"; a single seed shows the mean alone, a missing
    layer shows a dash.
    """
    methods = [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
    out = pd.DataFrame({"layer": table["layer"].astype(int).astype(str)})
    for method in methods:
        counts = table[f"{method}_n"].dropna()
        n_values = sorted({int(v) for v in counts})
        n_text = "/".join(str(v) for v in n_values) if n_values else "0"
        cells = []
        for mean, sd in zip(table[f"{method}_mean"], table[f"{method}_sd"]):
            if pd.isna(mean):
                cells.append(_MISSING)
            elif pd.isna(sd):
                cells.append(f"{scale * mean:.{decimals}f}")
            else:
                cells.append(f"{scale * mean:.{decimals}f} ± {scale * sd:.{decimals}f}")
        out[f"{method} (n={n_text})"] = cells
    return out


def token_table(acc: pd.DataFrame, split: str, baselines: dict
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A language model's per-layer table: next-token accuracy and cross-entropy per method
    (:func:`layerwise_accuracy_table` of each), beside its dataset's count models on the same
    tokens (`baselines`: the baselines file, layerwise.baselines.fit_baselines). Returns the
    numeric table and its display form (accuracy in percent, cross-entropy in nats)."""
    accuracy = layerwise_accuracy_table(acc, split, "accuracy")
    loss = layerwise_accuracy_table(acc, split, "cross_entropy")
    shown = pd.concat([
        format_accuracy_table(accuracy).rename(columns=lambda c: c if c == "layer"
                                               else f"acc. % {c}"),
        format_accuracy_table(loss, decimals=2, scale=1).drop(columns="layer").rename(
            columns=lambda c: f"CE {c}")], axis=1)
    table = accuracy.merge(loss, on="layer", suffixes=("", "_cross_entropy"))
    add_baselines(table, shown, baselines, split, (("accuracy", "acc. % ", 100, 1),
                                                   ("cross_entropy", "CE ", 1, 2)))
    return table, shown


def classifier_table(acc: pd.DataFrame, split: str, metric: str, baselines: dict
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A classifier's per-layer table of `metric` (:func:`layerwise_accuracy_table`) beside
    its dataset's trivial and shallow baselines on the same samples. Returns the numeric
    table and its display form (percent)."""
    table = layerwise_accuracy_table(acc, split, metric)
    shown = format_accuracy_table(table)
    add_baselines(table, shown, baselines, split, ((metric, "", 100, 1),))
    return table, shown


def add_baselines(table: pd.DataFrame, shown: pd.DataFrame, baselines: dict, split: str,
                  metrics) -> None:
    """A column per baseline model and metric, the same value on every layer: in `table`
    <model>_<metric>, in `shown` the model's label after the metric's prefix (`metrics`: (metric,
    prefix, scale, decimals) each)."""
    for name in model_order(baselines):
        record = baselines["models"][name]
        for metric, prefix, scale, decimals in metrics:
            value = record[split][metric]
            table[f"{name}_{metric}"] = value
            shown[f"{prefix}{record['label']}"] = f"{scale * value:.{decimals}f}"


def depth_use_table(shares: pd.DataFrame, learned: pd.DataFrame, metric: str
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per run (method, then seed): its last layer's `metric`, whether it beats the shallow
    baseline, and the depth-use share s_l of every layer below the last (layerwise.baselines.
    depth_use). Returns the numeric table and its display form (a share with two decimals,
    '–' for a run that has not learned)."""
    wide = shares.pivot_table(index=["method", "seed"], columns="layer", values="share",
                              dropna=False, sort=False)
    last = int(shares["layer"].max())
    shown_layers = range(1, max(last, 2))   # s_1 always (a one-block model's is its last's)
    table = learned.set_index(["method", "seed"])[[metric, "beats_shallow"]].copy()
    for layer in shown_layers:
        table[f"s_{layer}"] = wide[layer] if layer in wide else np.nan
    order = {m: i for i, m in enumerate(ordered(table.index.get_level_values("method")))}
    table = table.reset_index().sort_values(["method", "seed"], key=lambda c: c.map(order)
                                            if c.name == "method" else c, kind="stable")
    table = table.reset_index(drop=True)
    shown = table[["method", "seed"]].astype(str)
    scale, decimals = (1, 2) if metric == "cross_entropy" else (100, 1)
    shown[f"layer {last} {metric}"] = [f"{scale * v:.{decimals}f}" for v in table[metric]]
    shown["beats shallow"] = ["–" if pd.isna(v) else ("yes" if v else "no")
                              for v in table["beats_shallow"]]
    for layer in shown_layers:
        shown[f"s_{layer}"] = [_MISSING if pd.isna(v) else f"{v:.2f}"
                               for v in table[f"s_{layer}"]]
    return table, shown
