"""What a finished study shows at a glance: the metrics DVC tracks, the data series of DVC's
plots, the runtime statistics of every job, and the results summary in Markdown.

All of it is derived from files the workflow already wrote (the tidy per-experiment CSVs, the
tables, the figures, the claims and Snakemake's benchmark files); nothing is recomputed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from layerwise.train.methods import METHODS, ordered


# Benchmark columns (Snakemake's `benchmark:` TSV) kept in the runtime table.
_BENCHMARK_COLUMNS = {"s": "wall_s", "max_rss": "max_rss_mb", "cpu_time": "cpu_s"}


def _clean(value):
    """A JSON-safe float (NaN -> None)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return float(value)


def _layer_key(layer: int) -> str:
    return f"l{int(layer):02d}"


# --- metrics (dvc metrics show) -------------------------------------------------------------
def experiment_metrics(acc: pd.DataFrame, metric: str = "accuracy",
                       agreement: pd.DataFrame | None = None,
                       points: pd.DataFrame | None = None, split: str = "test") -> dict:
    """One experiment's headline numbers: final and per-layer `metric` per method (mean over
    seeds, and the sd of the final one), COS-vs-CKA rank agreement per method, scope and CKA
    estimator (mean over seeds), and each exit policy's operating point per method."""
    rows = acc[(acc["split"] == split) & (acc["layer"] >= 1)]
    last = int(rows["layer"].max())
    out: dict = {f"final_{metric}": {}, f"final_{metric}_sd": {}, f"layer_{metric}": {}}
    for method in ordered(rows["method"]):
        part = rows[rows["method"] == method]
        final = part[part["layer"] == last][metric]
        out[f"final_{metric}"][method] = _clean(final.mean())
        out[f"final_{metric}_sd"][method] = _clean(final.std(ddof=1)) if len(final) > 1 else None
        means = part.groupby("layer")[metric].mean()
        out[f"layer_{metric}"][method] = {_layer_key(l): _clean(v) for l, v in means.items()}
    if agreement is not None and not agreement.empty:
        stats = agreement.groupby(["method", "scope", "measure"])["spearman"].mean()
        spearman: dict = {}
        for (method, scope, measure), value in stats.items():
            spearman.setdefault(method, {}).setdefault(scope, {})[measure] = _clean(value)
        out["cos_cka_spearman"] = {m: spearman[m] for m in ordered(spearman)}
    if points is not None and not points.empty:
        exits: dict = {}
        for (policy, method), part in points.groupby(["policy", "method"], sort=False):
            exits.setdefault(policy, {})[method] = {
                key: _clean(part[key].mean()) for key in
                ("accuracy", "speedup", "full_depth_accuracy", "mean_exit_layer")
                if key in part}
        out["early_exit"] = exits
    return out


def claims_metrics(claims: list[dict]) -> dict:
    """{claim: {experiment: status}} from the claims JSON rows."""
    out: dict = {}
    for row in claims:
        out.setdefault(row["claim"], {})[row["experiment"]] = row["status"]
    return out


# --- plot data series (dvc plots show) ------------------------------------------------------
def layerwise_series(acc: pd.DataFrame, metric: str = "accuracy", split: str = "test"
                     ) -> pd.DataFrame:
    """layer, then the mean `metric` over seeds of each training method (empty
    where the experiment does not train the method): one line per method in `dvc plots`."""
    rows = acc[(acc["split"] == split) & (acc["layer"] >= 1)]
    table = rows.pivot_table(index="layer", columns="method", values=metric, aggfunc="mean")
    out = pd.DataFrame({"layer": table.index.astype(int)})
    for method in METHODS:
        out[method] = table[method].to_numpy() if method in table else np.nan
    return out


def tradeoff_series(sweep: pd.DataFrame, policy: str, split: str = "test") -> pd.DataFrame:
    """speedup, then the accuracy of each training method at that speed-up: every
    threshold of the policy's sweep of every seed, one row each (a scatter in `dvc plots`)."""
    rows = sweep[(sweep["policy"] == policy) & (sweep["split"] == split)]
    out = pd.DataFrame({"speedup": rows["speedup"].to_numpy()})
    for method in METHODS:
        out[method] = np.where(rows["method"] == method, rows["accuracy"], np.nan)
    return out.sort_values("speedup", kind="stable").reset_index(drop=True)


# --- runtime statistics -----------------------------------------------------------------------
def read_benchmarks(root: str | os.PathLike) -> pd.DataFrame:
    """Every benchmark file under `root` (one per job): step (the folder under `root`, i.e. the
    rule or the kind of figure), job (the rest of the path), wall_s, cpu_s, max_rss_mb."""
    root = Path(root)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        if frame.empty:
            continue
        record = frame.iloc[-1]
        parts = path.relative_to(root).with_suffix("").parts
        rows.append({"step": parts[0], "job": "/".join(parts[1:]) or parts[0],
                     **{new: pd.to_numeric(record.get(old), errors="coerce")
                        for old, new in _BENCHMARK_COLUMNS.items()}})
    return pd.DataFrame(rows, columns=["step", "job", *_BENCHMARK_COLUMNS.values()])


def runtime_table(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """Per step: jobs, total, mean and longest wall time (s), CPU time (s) and peak memory
    (MB), longest total first, then a `total` row over all jobs."""
    if benchmarks.empty:
        return pd.DataFrame(columns=["step", "jobs", "total_s", "mean_s", "max_s", "cpu_s",
                                     "max_rss_mb"])
    grouped = benchmarks.groupby("step")
    table = pd.DataFrame({
        "jobs": grouped.size(), "total_s": grouped["wall_s"].sum(),
        "mean_s": grouped["wall_s"].mean(), "max_s": grouped["wall_s"].max(),
        "cpu_s": grouped["cpu_s"].sum(), "max_rss_mb": grouped["max_rss_mb"].max(),
    }).sort_values("total_s", ascending=False).reset_index()
    total = {"step": "total", "jobs": len(benchmarks), "total_s": benchmarks["wall_s"].sum(),
             "mean_s": benchmarks["wall_s"].mean(), "max_s": benchmarks["wall_s"].max(),
             "cpu_s": benchmarks["cpu_s"].sum(), "max_rss_mb": benchmarks["max_rss_mb"].max()}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def format_runtime_table(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for column in ("total_s", "mean_s", "max_s", "cpu_s"):
        out[column] = [f"{v:.1f}" if pd.notna(v) else "–" for v in table[column]]
    out["max_rss_mb"] = [f"{v:.0f}" if pd.notna(v) else "–" for v in table["max_rss_mb"]]
    return out.rename(columns={"total_s": "total (s)", "mean_s": "mean (s)",
                               "max_s": "longest (s)", "cpu_s": "CPU (s)",
                               "max_rss_mb": "peak memory (MB)"})


# --- the Markdown summary ---------------------------------------------------------------------
def learning_check(acc: pd.DataFrame, baselines: Mapping, split: str = "test") -> str:
    """Whether a language model learned more than counts: each seed's layer-L cross-entropy per
    method beside the unigram and bigram models' on the same tokens (`baselines`: a dataset's
    ngram_baselines), and how many seeds score below the bigram model."""
    rows = acc[(acc["split"] == split) & (acc["layer"] == acc["layer"].max())]
    bigram = baselines["bigram"][split]["cross_entropy"]
    unigram = baselines["unigram"][split]["cross_entropy"]
    per_method, below = [], []
    for method in ordered(rows["method"]):
        losses = rows[rows["method"] == method].sort_values("seed")["cross_entropy"]
        per_method.append(f"{method} {', '.join(f'{v:.3f}' for v in losses)}")
        below.append(f"{method} {int((losses < bigram).sum())}/{len(losses)}")
    return (f"Learning check ({split} tokens): layer-{int(rows['layer'].max())} cross-entropy "
            f"per seed (nats): {'; '.join(per_method)}. On the same tokens a bigram model "
            f"fitted on the training split scores {bigram:.3f} and a unigram model "
            f"{unigram:.3f}; seeds below the bigram model: {', '.join(below)}.")



def _strip_caption(markdown: str) -> tuple[str, str]:
    """(caption, table) of a Markdown file written by layerwise.report.tables.write_table."""
    lines = markdown.strip().splitlines()
    first_table = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    caption = " ".join(line.strip() for line in lines[:first_table] if line.strip())
    return caption, "\n".join(lines[first_table:])


def _title(stem: str) -> str:
    return stem.replace("_", " ")


def summary_markdown(base: str | os.PathLike, experiments: list[str],
                     tables: Mapping[str, list[str]], figures: Mapping[str, list[str]],
                     claims_md: str, runtime: pd.DataFrame,
                     shown: Sequence[str] = ("layerwise_accuracy", "exit_tradeoff",
                                             "speculative"),
                     notes: Mapping[str, list[str]] | None = None, date: str | None = None
                     ) -> str:
    """The results summary: claims, then per experiment its `notes` (paragraphs, e.g. a
    language model's learning check), tables (in full) and figures (those named in `shown`
    drawn, the others linked), then the study-wide figures and the runtime; `date` is the day
    the study wrote it.

    Paths in `tables` and `figures` (keyed by experiment, "" for study-wide ones) are written
    relative to `base`, the folder the summary lives in, so its links work where it lies.
    """
    base = Path(base)

    def rel(path: str) -> str:
        return Path(os.path.relpath(path, base)).as_posix()

    def figure_block(paths: list[str]) -> list[str]:
        lines = []
        for path in paths:
            if Path(path).stem in shown:
                lines += [f"![{_title(Path(path).stem)}]({rel(path)})", ""]
        others = [p for p in paths if Path(p).stem not in shown]
        if others:
            lines += ["Figures: " + ", ".join(f"[{_title(Path(p).stem)}]({rel(p)})"
                                              for p in others), ""]
        return lines

    written = f" on {date}" if date else ""
    lines = ["# Results summary", "",
             f"Written by the workflow (rule `study_summary`){written} from this run's own "
             "results. "
             "Accuracies are fractions or percent as each table says; ± is one sample "
             "standard deviation over seeds.", "",
             "## Claims of the paper, checked", "", claims_md.strip(), ""]
    for name in experiments:
        lines += [f"## {name}", ""]
        for note in (notes or {}).get(name, []):
            lines += [note, ""]
        for path in tables.get(name, []):
            caption, table = _strip_caption(Path(path).read_text(encoding="utf-8"))
            lines += [f"**{_title(Path(path).stem)}** ([csv]({rel(str(Path(path).with_suffix('.csv')))}))"
                      + (f": {caption}" if caption else ""), "", table, ""]
        lines += figure_block(figures.get(name, []))
    if figures.get(""):
        lines += ["## Across experiments", ""]
        for path in figures[""]:
            lines += [f"![{_title(Path(path).stem)}]({rel(path)})", ""]
    if not runtime.empty:
        from layerwise.report.tables import markdown_table

        lines += ["## Runtime", "", "Wall-clock time per step, from the benchmark file of "
                  "every job (`results/benchmarks/`).", "",
                  markdown_table(format_runtime_table(runtime)).strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
