"""The workflow as a user drives it: dry runs, lint, bad configs, and the smoke study end to end."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.workflow

SMOKE = "vit_digits_smoke"


def snakemake(cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}; empty when nothing is to be done."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if m.group(1) != "total"}


def copy_project(dest: Path) -> Path:
    for part in ("workflow", "scripts", "config", "src"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "environment.yml", dest)  # the rules' conda environment
    return dest


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("fresh"))


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory):
    """A copy of the project after the smoke study ran in it."""
    project = copy_project(tmp_path_factory.mktemp("smoke"))
    started = time.perf_counter()
    run = snakemake(project, "--cores", "2", "--configfile", "config/smoke.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    print(f"smoke study: {time.perf_counter() - started:.1f} s")
    return project


def planned_runs(config_file: Path) -> int:
    config = yaml.safe_load(config_file.read_text())
    return sum(len(e["methods"]) * len(e["seeds"]) for e in config["experiments"])


@pytest.mark.parametrize("extra", [[], ["--configfile", "config/smoke.yaml"]])
def test_dry_run_plans_every_run(fresh_project, extra):
    run = snakemake(fresh_project, "-n", *extra)
    assert run.returncode == 0, run.stderr
    counts = job_counts(run.stdout)
    runs = planned_runs(fresh_project / (extra[1] if extra else "config/config.yaml"))
    assert counts["train"] == counts["extract"] == counts["analyze_run"] == runs
    assert counts["prepare_data"] == 1 and counts["all"] == 1


def test_one_figure_asks_for_exactly_the_jobs_it_needs(fresh_project):
    target = f"results/figures/{SMOKE}/layerwise_accuracy.png"
    run = snakemake(fresh_project, "-n", target, "--configfile", "config/smoke.yaml")
    assert run.returncode == 0, run.stderr
    assert job_counts(run.stdout) == {"prepare_data": 1, "train": 4, "extract": 4,
                                      "analyze_run": 4, "summarize": 1,
                                      "figure_layerwise_accuracy": 1}


def test_lint_reports_nothing(fresh_project):
    run = snakemake(fresh_project, "--lint")
    assert run.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in run.stdout + run.stderr


@pytest.mark.parametrize("bad, key", [
    ("experiments:\n  - {name: x, dataset: digits, model: {width: 30, heads: 4}}\n",
     "experiments[0].model.width"),
    ("experiments:\n  - {name: x, dataset: digits, methods: [fancy]}\n", "experiments[0].methods"),
    ("analysis: {similarity_split: train}\n", "analysis.similarity_split"),
])
def test_invalid_config_is_rejected_before_any_job_with_one_line(fresh_project, tmp_path, bad,
                                                                  key):
    config = tmp_path / "bad.yaml"
    config.write_text(bad)
    run = snakemake(fresh_project, "-n", "--configfile", str(config))
    assert run.returncode != 0
    assert f"error: config key {key}" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert not (fresh_project / "results").exists()


def test_smoke_study_writes_every_figure_and_table(smoke_project):
    results = smoke_project / "results"
    for stem in ("layerwise_accuracy", "cos_heatmaps", "cka_heatmaps",
                 "curves_vs_last_standard", "curves_vs_last_aligned"):
        for ext in ("pdf", "png"):
            assert (results / "figures" / SMOKE / f"{stem}.{ext}").stat().st_size > 1000
    for ext in ("csv", "md", "tex"):
        assert (results / "tables" / SMOKE / f"layerwise_accuracy.{ext}").stat().st_size > 0
    acc = pd.read_csv(results / "analysis" / SMOKE / "layer_accuracy.csv")
    assert set(acc["method"]) == {"standard", "aligned"} and set(acc["seed"]) == {0, 1}
    assert acc["accuracy"].between(0, 1).all()
    last = acc[(acc["layer"] == 4) & (acc["split"] == "test")]["accuracy"]
    assert (last > 0.2).all()  # two epochs already beat chance (0.1) clearly
    sim = pd.read_csv(results / "analysis" / SMOKE / "similarity.csv")
    assert sim["value"].between(-1 - 1e-9, 1 + 1e-9).all()
    diagonal = sim[sim["layer_a"] == sim["layer_b"]]["value"]
    assert (diagonal - 1).abs().max() < 1e-9
    for run_dir in (results / "runs" / SMOKE).glob("*/seed*"):
        assert {"model.safetensors", "train_log.csv", "provenance.json"} <= {
            p.name for p in run_dir.iterdir()}


def test_rerun_after_the_study_has_nothing_to_do(smoke_project):
    started = time.perf_counter()
    run = snakemake(smoke_project, "-n", "--configfile", "config/smoke.yaml")
    assert run.returncode == 0, run.stderr
    assert job_counts(run.stdout) == {}, run.stdout
    assert "Nothing to be done" in run.stdout + run.stderr
    assert time.perf_counter() - started < 15


def test_changing_an_aligned_setting_reruns_only_aligned_runs(smoke_project, tmp_path):
    config = yaml.safe_load((smoke_project / "config/smoke.yaml").read_text())
    config["experiments"][0]["aligned"]["weights"] = "uniform"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    run = snakemake(smoke_project, "-n", "--configfile", str(changed))
    assert run.returncode == 0, run.stderr
    counts = job_counts(run.stdout)
    assert counts["train"] == 2  # aligned x 2 seeds; standard runs stay as they are
    assert "figure_layerwise_accuracy" in counts
    trained = re.findall(r"wildcards: experiment=\S+, method=(\w+), seed=\d+", run.stdout)
    assert trained and set(trained) == {"aligned"}
