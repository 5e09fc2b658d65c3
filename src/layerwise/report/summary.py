"""What a finished study shows at a glance: the metrics DVC tracks, the data series of DVC's
plots, the runtime statistics of every job, and the results summary in Markdown.

All of it is derived from files the workflow already wrote (the tidy per-experiment CSVs, the
tables, the figures, the claims and every job's usage record); nothing is recomputed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from layerwise.baselines import lower_is_better, model_order, shallow_label
from layerwise.train.methods import METHODS, ordered


# The columns of a job's usage record (layerwise.usage) that the runtime table keeps.
USAGE_COLUMNS = ("wall_s", "cpu_s", "max_rss_mb", "written_mb")
USAGE_SUFFIX = ".usage.json"


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
def read_usage(root: str | os.PathLike) -> pd.DataFrame:
    """Every job's usage record under `root` (the logs folder; layerwise.usage writes one beside
    each job's log): step (the folder under `root`, i.e. the rule or the kind of figure, or the
    log's own name for a job of one), job (the rest of the path) and USAGE_COLUMNS."""
    import json

    root = Path(root)
    rows = []
    for path in sorted(root.rglob(f"*{USAGE_SUFFIX}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        parts = path.relative_to(root).parts
        parts = (*parts[:-1], parts[-1][:-len(USAGE_SUFFIX)])
        rows.append({"step": parts[0], "job": "/".join(parts[1:]) or parts[0],
                     **{column: record.get(column) for column in USAGE_COLUMNS}})
    return pd.DataFrame(rows, columns=["step", "job", *USAGE_COLUMNS])


def runtime_table(usage: pd.DataFrame) -> pd.DataFrame:
    """Per step: jobs, total, mean and longest wall time (s), CPU time (s), peak memory (MB) and
    data written (MB), longest total first, then a `total` row over all jobs."""
    columns = ["step", "jobs", "total_s", "mean_s", "max_s", "cpu_s", "max_rss_mb",
               "written_mb"]
    if usage.empty:
        return pd.DataFrame(columns=columns)

    def summary(frame):
        return {"jobs": len(frame), "total_s": frame["wall_s"].sum(),
                "mean_s": frame["wall_s"].mean(), "max_s": frame["wall_s"].max(),
                "cpu_s": frame["cpu_s"].sum(), "max_rss_mb": frame["max_rss_mb"].max(),
                "written_mb": frame["written_mb"].sum()}

    table = pd.DataFrame([{"step": step, **summary(frame)}
                          for step, frame in usage.groupby("step")])
    table = table.sort_values("total_s", ascending=False, kind="stable")
    return pd.concat([table, pd.DataFrame([{"step": "total", **summary(usage)}])],
                     ignore_index=True)[columns]


def format_runtime_table(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for column in ("total_s", "mean_s", "max_s", "cpu_s", "written_mb"):
        out[column] = [f"{v:.1f}" if pd.notna(v) else "–" for v in table[column]]
    out["max_rss_mb"] = [f"{v:.0f}" if pd.notna(v) else "–" for v in table["max_rss_mb"]]
    return out.rename(columns={"total_s": "total (s)", "mean_s": "mean (s)",
                               "max_s": "longest (s)", "cpu_s": "CPU (s)",
                               "max_rss_mb": "peak memory (MB)", "written_mb": "written (MB)"})


# --- the Markdown summary ---------------------------------------------------------------------
def _score_text(value: float, metric: str) -> str:
    return f"{value:.3f}" if lower_is_better(metric) else f"{100 * value:.1f}"


def learning_check(runs: pd.DataFrame, baselines: Mapping, split: str = "test") -> str:
    """Whether each run learned more than a model without hidden layers: every seed's last-layer
    score per method (`runs`: one row per run with method, seed, the baselines' metric and
    beats_shallow, as report.tables.depth_use_table writes them) beside the shallow baseline
    and the trivial predictor on the same samples, and how many seeds beat the shallow one."""
    metric, models = baselines["metric"], baselines["models"]
    unit = "nats" if lower_is_better(metric) else "%"
    per_method, beating = [], []
    for method in ordered(runs["method"]):
        mine = runs[runs["method"] == method].sort_values("seed")
        per_method.append(f"{method} {', '.join(_score_text(v, metric) for v in mine[metric])}")
        beating.append(f"{method} {int(mine['beats_shallow'].fillna(False).sum())}/{len(mine)}")
    scores = "; ".join(f"{models[name]['label']} {_score_text(models[name][split][metric], metric)}"
                       for name in model_order(baselines))
    text = (f"Learning check ({split} {'tokens' if unit == 'nats' else 'samples'}): last-layer "
            f"{metric.replace('_', '-')} per seed ({unit}): {'; '.join(per_method)}. Models "
            f"without hidden layers fitted on the training split, on the same {split} "
            f"{'tokens' if unit == 'nats' else 'samples'}: {scores}.")
    if baselines["shallow"] is None:
        return f"{text} No shallow baseline: {baselines['note']}."
    better = "below" if lower_is_better(metric) else "above"
    return (f"{text} Seeds {better} the shallow baseline ({shallow_label(baselines)}): "
            f"{', '.join(beating)}.")


def depth_note(verdict: Mapping, max_share: float, shallow: str | None) -> str:
    """One paragraph on whether an arm uses its depth (layerwise.baselines.depth_use.uses_depth):
    how many seeds of its model beat the shallow baseline (`shallow`: its label, None without
    one), its first layer's depth-use share per seed against the bound, and the label the arm
    gets, with the reasons for a shallow one."""
    shares = verdict["first_layer_share"]
    within = sum(s is not None and s <= max_share for s in shares)
    how = ("by the tuned lens fitted on it" if verdict["reader"] != verdict["model"]
           else "by its own classifier")
    seeds = verdict["seeds"]
    beaten = (f"beats the shallow baseline ({shallow}) on {verdict['beats_shallow']}/{seeds} "
              "seeds" if shallow else "has no shallow baseline to beat")
    text = (f"Depth use: the {verdict['model']} model {beaten}; its first layer, read {how}, "
            f"has s_1 = {', '.join('–' if s is None else f'{s:.2f}' for s in shares)} of what "
            f"its last layer gains over the trivial predictor (at most {max_share:g} on "
            f"{within}/{seeds} seeds).")
    if verdict["deep"]:
        return f"{text} The arm **uses its depth**."
    reasons = []
    if verdict["beats_shallow"] < seeds:
        reasons.append("a model without hidden layers scores as well or better on the same "
                       "samples" if shallow else "nothing shows it beats a model without hidden "
                       "layers")
    if within < seeds:
        reasons.append(f"a linear read of its first block already has more than {max_share:g} "
                       "of its last layer's gain")
    return f"{text} The arm is labelled **shallow**: {'; and '.join(reasons)}."


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

        lines += ["## Runtime", "", "Wall-clock time, CPU time (the job's processes and every "
                  "process they waited for), peak resident memory of the largest process and "
                  "data written per step, from every job's own usage record "
                  "(`results/logs/**/*.usage.json`).", "",
                  markdown_table(format_runtime_table(runtime)).strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
