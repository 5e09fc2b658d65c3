"""Summarize the whole study: metrics JSON (dvc metrics), plot data and images (dvc plots), the
runtime table from every job's usage record, and the results summary in Markdown."""

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from layerwise import cli
from layerwise.baselines.depth_use import uses_depth
from layerwise.io import atomic_path, read_json, write_csv, write_json, write_text
from layerwise.report.summary import (claims_metrics, experiment_metrics, format_runtime_table,
                                      layerwise_series, learning_check, read_usage,
                                      runtime_table, summary_markdown, tradeoff_series)
from layerwise.report.tables import write_table


SPEC_KEYS = ("experiments", "policy", "study_figures", "figure_copies", "claims_json",
             "claims_md", "logs")


def optional_csv(path):
    return None if path is None else pd.read_csv(path)


def main(argv=None):
    parser = cli.spec_parser(__doc__, "experiments with their files, figures, tables and plot "
                                      "outputs; the claims files; the logs folder")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--summary", required=True, help="Markdown summary to write")
    parser.add_argument("--runtime", required=True, help="runtime table stem (.csv, .md, .tex)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, SPEC_KEYS)

    claims = read_json(spec["claims_json"])["claims"]
    metrics = {"experiments": {}, "claims": claims_metrics(claims)}
    notes = {}  # each experiment's learning check, above its tables
    for exp in spec["experiments"]:
        acc = pd.read_csv(exp["accuracy"])
        runs = pd.read_csv(exp["depth_use"])
        notes[exp["name"]] = [learning_check(runs, read_json(exp["baselines"]))]
        sweep = optional_csv(exp.get("sweep"))
        metrics["experiments"][exp["name"]] = {**experiment_metrics(
            acc, exp["metric"], optional_csv(exp.get("agreement")),
            optional_csv(exp.get("points"))), "depth_use": uses_depth(runs, **exp["depth"])}
        write_csv(exp["layerwise_plot"], layerwise_series(acc, exp["metric"]))
        if exp.get("tradeoff_plot"):
            write_csv(exp["tradeoff_plot"], tradeoff_series(sweep, spec["policy"]))
    for source, copy in spec["figure_copies"]:  # DVC renders PNG images, not PDFs
        with atomic_path(copy) as tmp:
            shutil.copyfile(source, tmp)
    write_json(args.metrics, metrics)

    runtime = runtime_table(read_usage(spec["logs"]))
    write_table(runtime, args.runtime, "Wall-clock time, CPU time, peak memory and data "
                "written per step of the workflow, from the usage record of every job "
                "(layerwise.usage).", formatted=format_runtime_table(runtime))

    summary = summary_markdown(
        Path(args.summary).parent, [e["name"] for e in spec["experiments"]],
        {e["name"]: e["tables"] for e in spec["experiments"]},
        {"": spec["study_figures"], **{e["name"]: e["figures"] for e in spec["experiments"]}},
        Path(spec["claims_md"]).read_text(encoding="utf-8"), runtime, notes=notes,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    write_text(args.summary, summary)


if __name__ == "__main__":
    cli.run(main)
