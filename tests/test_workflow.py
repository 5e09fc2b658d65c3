"""The workflow as a user drives it: dry runs, lint, bad configs, and the smoke study end to end."""

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, SMOKE, job_counts, snakemake
from layerwise.train.methods import METHODS

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def planned_runs(config_file: Path) -> int:
    config = yaml.safe_load(config_file.read_text())
    return sum((len(e["methods"]) + len(e.get("depth_study", []))) * len(e["seeds"])
               for e in config["experiments"])


@pytest.mark.parametrize("extra", [[], ["--configfile", "config/smoke.yaml"]])
def test_dry_run_plans_every_run(fresh_project, extra):
    run = snakemake(fresh_project, "-n", *extra)
    assert run.returncode == 0, run.stderr
    counts = job_counts(run.stdout)
    config_file = fresh_project / (extra[1] if extra else "config/config.yaml")
    runs = planned_runs(config_file)
    # one analysis job per run: stored hidden states (with the exit study or without), or a
    # language model's token passes
    analysed = sum(counts.get(rule, 0)
                   for rule in ("analyze_run", "analyze_exit_run", "analyze_tokens"))
    # every run is trained, or fitted post hoc on another run (the tuned lenses on the
    # standard and on the aligned run)
    assert counts["train"] + counts.get("fit_lens", 0) == analysed == runs
    assert counts.get("fit_lens", 0) == sum(
        (e["methods"].count("tuned_lens") + e["methods"].count("aligned_lens")) * len(e["seeds"])
        for e in yaml.safe_load(config_file.read_text())["experiments"])
    assert counts["analyze_tokens"] == sum(
        len(e["methods"]) * len(e["seeds"])
        for e in yaml.safe_load(config_file.read_text())["experiments"]
        if e["model"]["arch"] == "gpt2")
    datasets = {e["dataset"] for e in yaml.safe_load(config_file.read_text())["experiments"]}
    # digits, review snippets, running text, MNIST
    assert counts["prepare_data"] == len(datasets) == 4 and counts["all"] == 1


def test_one_figure_asks_for_exactly_the_jobs_its_experiments_figures_need(fresh_project):
    """One job draws an experiment's figures: asking for one asks for what all of them read
    (its summaries, the exit and depth studies, the cross-model CKA) and nothing else."""
    target = f"results/figures/{SMOKE}/layerwise_accuracy.png"
    run = snakemake(fresh_project, "-n", target, "--configfile", "config/smoke.yaml")
    assert run.returncode == 0, run.stderr
    # 5 trained methods and one depth-study run x 2 seeds, a tuned lens fitted on each
    # standard run, 4 of the methods in the exit study (the lens among them), the shallow
    # baselines the figure draws beside the layers
    assert job_counts(run.stdout) == {"prepare_data": 1, "fit_baselines": 1, "train": 12,
                                      "fit_lens": 2,
                                      "analyze_run": 6, "analyze_exit_run": 8, "summarize": 1,
                                      "summarize_exits": 1, "depth_study": 1,
                                      "cross_model_similarity": 1, f"figures_{SMOKE}": 1}


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
                 "curves_vs_last_standard", "curves_vs_last_aligned", "cos_boxplot",
                 "adjacent_cos", "cross_model_cka", "../residual_ablation"):
        for ext in ("pdf", "png"):
            assert (results / "figures" / SMOKE / f"{stem}.{ext}").stat().st_size > 1000
    for ext in ("csv", "md", "tex"):
        assert (results / "tables" / SMOKE / f"layerwise_accuracy.{ext}").stat().st_size > 0
    acc = pd.read_csv(results / "analysis" / SMOKE / "layer_accuracy.csv")
    assert {"standard", "aligned"} <= set(acc["method"]) and set(acc["seed"]) == {0, 1}
    assert acc["accuracy"].between(0, 1).all()
    last = acc[(acc["layer"] == 4) & (acc["split"] == "test")]["accuracy"]
    assert (last > 0.2).all()  # two epochs already beat chance (0.1) clearly
    sim = pd.read_csv(results / "analysis" / SMOKE / "similarity.csv")
    assert {"cos", "cos_raw", "cka_linear_biased", "cka_linear_unbiased", "cka_rbf"} == set(
        sim["measure"])
    bounded = sim[sim["measure"].isin(["cos", "cos_raw", "cka_linear_biased", "cka_rbf"])]
    assert bounded["value"].between(-1 - 1e-9, 1 + 1e-9).all()
    agreement = pd.read_csv(results / "analysis" / SMOKE / "agreement.csv")
    assert set(agreement["scope"]) == {"pairs", "to_last"}
    assert agreement["spearman"].between(-1, 1).all()
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
    assert f"figures_{SMOKE}" in counts
    rerun = re.findall(r"wildcards: experiment=\S+, method=(\w+), seed=\d+", run.stdout)
    assert rerun and set(rerun) == {"aligned"}


def test_smoke_study_writes_the_early_exit_outputs(smoke_project):
    results = smoke_project / "results"
    for stem in ("exit_tradeoff", "exit_counts", "saturation", "depth_study",
                 "curves_vs_last_multi_exit"):
        for ext in ("pdf", "png"):
            assert (results / "figures" / SMOKE / f"{stem}.{ext}").stat().st_size > 1000
    for table in ("multi_exit", "parameter_savings", "effective_depth"):
        for ext in ("csv", "md", "tex"):
            assert (results / "tables" / SMOKE / f"{table}.{ext}").stat().st_size > 0
    points = pd.read_csv(results / "analysis" / SMOKE / "exit_operating_points.csv")
    config = yaml.safe_load((smoke_project / "config/smoke.yaml").read_text())
    smoke = next(e for e in config["experiments"] if e["name"] == SMOKE)
    # the exit study's methods, the tuned lens beside them
    assert set(points["method"]) == {"standard", "aligned", "multi_exit", "tuned_lens"}
    assert set(points["policy"]) == set(config["exits"]["policies"])
    assert points["mean_exit_layer"].between(1, 4).all()
    assert (points["speedup"] - 4 / points["mean_exit_layer"]).abs().max() < 1e-9
    assert {"wall_speedup_b1", "wall_speedup_b64"} <= set(points.columns)
    # the operating point keeps validation accuracy within the allowed drop of full depth
    drop = points["val_full_depth_accuracy"] - points["val_accuracy"]
    assert (drop <= 0.01 + 1e-9).all()
    saturation = pd.read_csv(results / "analysis" / SMOKE / "saturation.csv")
    assert saturation["saturation_layer"].between(1, 4).all()
    depths = pd.read_csv(results / "analysis" / SMOKE / "effective_depth.csv")
    # every trained run (a tuned lens is fitted, not trained)
    trained = {m for m in smoke["methods"] if METHODS[m].post_hoc is None}
    assert {"standard_d2", *trained} == set(depths["run"])
    assert {"train", "test"} <= set(depths["split"])
    shallow = depths[depths["run"] == "standard_d2"]
    assert (shallow["depth"] == 2).all() and (shallow["effective_depth"] <= 2).all()


def test_changing_an_exit_setting_retrains_nothing(smoke_project, tmp_path):
    config = yaml.safe_load((smoke_project / "config/smoke.yaml").read_text())
    config["exits"]["max_accuracy_drop"] = 0.05
    config["experiments"][0]["multi_exit"]["weights"] = "uniform"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    run = snakemake(smoke_project, "-n", "--configfile", str(changed))
    assert run.returncode == 0, run.stderr
    counts = job_counts(run.stdout)
    exit_runs = sum(len([m for m in e["methods"] if METHODS[m].evaluate_exits]) * len(e["seeds"])
                    for e in config["experiments"] if {"aligned", "multi_exit"} & set(e["methods"]))
    assert counts["train"] == 2  # the multi_exit runs of the changed experiment (2 seeds)
    # every operating point moves
    assert counts["analyze_exit_run"] + counts["analyze_tokens"] == exit_runs
    trained = re.findall(r"rule train:\n.*?wildcards: experiment=\S+, method=(\w+),",
                         run.stdout, re.DOTALL)
    assert trained and set(trained) == {"multi_exit"}



def info_tokens(results):
    info = json.loads((results / "data" / "running_text" / "info.json").read_text())
    return info["tokens"]["test"]


def test_smoke_study_analyses_the_language_model_token_by_token(smoke_project):
    results, lm = smoke_project / "results", "gpt2_smoke"
    for stem in ("layerwise_accuracy", "cos_heatmaps", "cka_heatmaps", "cos_boxplot",
                 "adjacent_cos", "exit_tradeoff", "exit_counts", "saturation", "speculative",
                 "generation"):
        assert (results / "figures" / lm / f"{stem}.png").stat().st_size > 1000, stem
    # every run fine-tunes the one pretraining run
    assert (results / "runs" / lm / "pretrain" / "model.safetensors").exists()
    provenance = json.loads((results / "runs" / lm / "aligned" / "seed0" / "provenance.json"
                             ).read_text())
    assert provenance["spec"]["init"]["method"] == "standard"
    speculative = pd.read_csv(results / "analysis" / lm / "speculative.csv")
    timed = speculative[speculative["kind"] != "exit"]
    # a fixed and a confidence-stopped draft per run, the faster on validation marked
    assert all(kinds == ["fixed", "adaptive"]
               for kinds in timed.groupby(["method", "seed"])["kind"].apply(list))
    assert timed["equal_to_full_depth"].astype(bool).all()     # lossless, whatever the draft
    assert timed.groupby(["method", "seed"])["chosen"].sum().eq(1).all()
    assert (timed[timed["kind"] == "adaptive"]["stop_below"] == 0.5).all()
    assert set(timed["head"]) <= {"exit", "final"}
    generation = pd.read_csv(results / "analysis" / lm / "generation.csv")
    assert set(generation["coherence_measure"]) == {"full_depth_ce_nats"}   # offline substitute
    assert set(generation["coherence_judge"]) == {"the pretrained model"}   # one for all
    table = (results / "tables" / lm / "layerwise_accuracy.md").read_text()
    assert "bigram model" in table and "Kneser-Ney" in table
    summary = (results / "SUMMARY.md").read_text()
    assert "Learning check (test tokens)" in summary and "Learning check (test samples)" in summary
    baselines = json.loads((results / "baselines" / "running_text.json").read_text())
    assert baselines["models"]["kneser_ney"]["test"]["tokens"] == info_tokens(results)
    depth = pd.read_csv(results / "tables" / lm / "depth_use.csv")
    assert set(depth["method"]) == {"standard", "aligned", "multi_exit", "tuned_lens",
                                    "aligned_lens"}
    assert {"s_1", "beats_shallow", "cross_entropy"} <= set(depth.columns)
    assert not (results / "hidden" / lm).exists()  # nothing per token is stored
    acc = pd.read_csv(results / "analysis" / lm / "layer_accuracy.csv")
    assert {"accuracy", "cross_entropy", "perplexity", "tokens"} <= set(acc.columns)
    assert (acc["perplexity"] - np.exp(acc["cross_entropy"])).abs().max() < 1e-9
    info = json.loads((results / "data" / "running_text" / "info.json").read_text())
    test = acc[acc["split"] == "test"]
    assert (test["tokens"] == info["tokens"]["test"]).all()  # every test token is counted
    sim = pd.read_csv(results / "analysis" / lm / "similarity.csv")
    assert {"cos", "cos_raw", "cka_linear_biased", "cka_linear_unbiased"} == set(sim["measure"])
    points = pd.read_csv(results / "analysis" / lm / "exit_operating_points.csv")
    assert {"cross_entropy", "full_depth_cross_entropy", "wall_speedup_b1"} <= set(points.columns)
    timing = pd.read_csv(results / "analysis" / lm / "exit_timing.csv")
    assert timing["agreement_prefix"].between(0, 1).all() and (timing["batch_size"] == 1).all()
    saturation = pd.read_csv(results / "analysis" / lm / "saturation.csv")
    # one row per test token and method of the exit study (every method but the depth study)
    assert len(saturation) == len(set(depth["method"])) * info["tokens"]["test"]
    claims = pd.read_csv(results / "tables" / "claims.csv")
    rows = claims[claims["experiment"] == lm]
    evaluated = rows[rows["claim"].isin([f"C{i}" for i in range(1, 8)])]
    assert len(evaluated) == 7 and evaluated["status"].isin(["holds", "fails", "mixed"]).all()


def test_smoke_study_fits_a_tuned_lens_on_each_standard_run(smoke_project):
    """The lens is one more method everywhere downstream: layer-wise metrics, exits, the
    parameter table and its two claims."""
    results = smoke_project / "results"
    for experiment in (SMOKE, "gpt2_smoke"):
        acc = pd.read_csv(results / "analysis" / experiment / "layer_accuracy.csv")
        assert "tuned_lens" in set(acc["method"])
        test = acc[(acc["split"] == "test") & (acc["layer"] == acc["layer"].max())]
        # layer L is the standard model's own output: the lens changes nothing there
        by_method = test.groupby("method")["accuracy"].mean()
        assert by_method["tuned_lens"] == pytest.approx(by_method["standard"])
        log = pd.read_csv(results / "runs" / experiment / "tuned_lens" / "seed0" /
                          "train_log.csv")
        assert log["kl"].iloc[-1] < log["kl"].iloc[0]          # the fit lowered the KL
        assert "tuned lens" in (results / "tables" / experiment /
                                "parameter_savings.md").read_text()
    claims = pd.read_csv(results / "tables" / "claims.csv")
    rows = claims[claims["claim"].isin(["C12", "C13"]) & (claims["experiment"] == SMOKE)]
    assert len(rows) == 2 and rows["status"].isin(["holds", "fails", "mixed"]).all()
