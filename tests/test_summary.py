"""The study summary on hand-made files: metrics JSON, DVC plot series, runtime statistics from
the jobs' usage records, the learning check and the Markdown summary with links that work from
where it lies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from layerwise.report import summary
from layerwise.train.methods import METHODS
from layerwise.report.tables import write_table


@pytest.fixture
def acc() -> pd.DataFrame:
    rows = [{"method": m, "seed": s, "split": split, "layer": l,
             "accuracy": base + 0.1 * l + 0.01 * s}
            for m, base in (("standard", 0.1), ("aligned", 0.5)) for s in (0, 1)
            for split in ("val", "test") for l in range(4)]
    return pd.DataFrame(rows)


def test_experiment_metrics_and_claims_are_json_numbers(acc):
    agreement = pd.DataFrame([{"method": "standard", "seed": s, "measure": "cka_linear_biased",
                               "scope": "pairs", "spearman": 0.8 + 0.1 * s} for s in (0, 1)])
    points = pd.DataFrame([{"method": "aligned", "seed": s, "policy": "confidence",
                            "accuracy": 0.9, "speedup": 1.5 + s} for s in (0, 1)])
    metrics = summary.experiment_metrics(acc, "accuracy", agreement, points)
    assert metrics["final_accuracy"]["aligned"] == pytest.approx(0.5 + 0.3 + 0.005)
    assert metrics["final_accuracy_sd"]["standard"] == pytest.approx(np.std([0.4, 0.41], ddof=1))
    assert list(metrics["layer_accuracy"]["standard"]) == ["l01", "l02", "l03"]
    assert metrics["cos_cka_spearman"]["standard"]["pairs"]["cka_linear_biased"] == \
        pytest.approx(0.85)
    assert metrics["early_exit"]["confidence"]["aligned"]["speedup"] == pytest.approx(2.0)
    claims = summary.claims_metrics([{"claim": "C1", "experiment": "x", "status": "holds"}])
    json.dumps({"experiments": {"x": metrics}, "claims": claims}, allow_nan=False)


def test_plot_series_have_a_column_per_method(acc):
    series = summary.layerwise_series(acc)
    assert list(series.columns) == ["layer", *METHODS]  # one line per method in dvc plots
    assert series["multi_exit"].isna().all() and len(series) == 3
    sweep = pd.DataFrame({"method": ["aligned", "standard", "aligned"], "policy": "confidence",
                          "split": "test", "speedup": [2.0, 1.0, 1.5],
                          "accuracy": [0.7, 0.9, 0.8]})
    tradeoff = summary.tradeoff_series(sweep, "confidence")
    assert tradeoff["speedup"].tolist() == [1.0, 1.5, 2.0]
    assert tradeoff["aligned"].tolist()[1:] == [0.8, 0.7] and np.isnan(tradeoff["aligned"][0])


def test_runtime_table_sums_the_usage_records_per_step(tmp_path):
    for path, seconds in (("train/exp/standard/seed0", 10.0), ("train/exp/aligned/seed0", 30.0),
                          ("figures/exp", 2.0), ("check_claims", 1.0)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{path}.usage.json").write_text(json.dumps(
            {"wall_s": seconds, "cpu_s": seconds / 2, "max_rss_mb": 10 * seconds,
             "written_mb": 1.0}))
    (tmp_path / "train" / "exp" / "standard" / "seed0.log").write_text("not a record")
    table = summary.runtime_table(summary.read_usage(tmp_path)).set_index("step")
    assert table.index.tolist() == ["train", "figures", "check_claims", "total"]
    assert table.loc["train", "total_s"] == 40.0 and table.loc["train", "cpu_s"] == 20.0
    assert table.loc["train", "max_rss_mb"] == 300.0 and table.loc["total", "jobs"] == 4
    assert table.loc["total", "written_mb"] == 4.0
    assert "peak memory (MB)" in summary.format_runtime_table(table.reset_index()).columns


def test_summary_links_are_relative_to_the_summary(tmp_path, acc):
    results = tmp_path / "results"
    stem = results / "tables" / "exp" / "layerwise_accuracy"
    write_table(pd.DataFrame({"layer": [1], "standard": [0.5]}), stem, "Caption of the table.")
    figure = results / "figures" / "exp" / "layerwise_accuracy.png"
    other = results / "figures" / "exp" / "cos_heatmaps.png"
    text = summary.summary_markdown(results, ["exp"], {"exp": [f"{stem}.md"]},
                                    {"exp": [str(figure), str(other)], "": []},
                                    "| claim |\n| --- |\n| C1 |", pd.DataFrame())
    assert "![layerwise accuracy](figures/exp/layerwise_accuracy.png)" in text
    assert "[cos heatmaps](figures/exp/cos_heatmaps.png)" in text
    assert "([csv](tables/exp/layerwise_accuracy.csv)): Caption of the table." in text
    assert "| C1 |" in text and str(tmp_path) not in text


def test_learning_check_counts_the_seeds_that_beat_the_shallow_baseline():
    from layerwise.report.summary import learning_check

    runs = pd.DataFrame({"method": ["standard", "standard", "aligned", "aligned"],
                         "seed": [0, 1, 0, 1], "cross_entropy": [2.3, 2.5, 2.4, 2.44],
                         "beats_shallow": [True, False, True, True]})
    baselines = {"metric": "cross_entropy", "trivial": "unigram", "shallow": "kneser_ney",
                 "models": {"unigram": {"label": "unigram model",
                                        "test": {"cross_entropy": 3.2}},
                            "kneser_ney": {"label": "Kneser-Ney 5-gram model",
                                           "test": {"cross_entropy": 2.45}}}}
    text = learning_check(runs, baselines)
    assert ("last-layer cross-entropy per seed (nats): standard 2.300, 2.500; aligned 2.400, "
            "2.440") in text
    assert "Kneser-Ney 5-gram model 2.450; unigram model 3.200" in text
    assert text.endswith("Seeds below the shallow baseline (Kneser-Ney 5-gram model): "
                         "standard 1/2, aligned 2/2.")
    classifier = {"metric": "accuracy", "trivial": "majority", "shallow": None,
                  "note": "no pixel baseline", "models": {"majority": {
                      "label": "majority class", "test": {"accuracy": 0.1}}}}
    runs = runs.assign(accuracy=[0.9, 0.85, 0.8, 0.75], beats_shallow=pd.NA)
    text = learning_check(runs, classifier)
    assert "per seed (%): standard 90.0, 85.0; aligned 80.0, 75.0" in text
    assert "majority class 10.0" in text
    assert text.endswith("No shallow baseline: no pixel baseline.")


def test_gather_runs_puts_method_and_seed_first(tmp_path):
    from layerwise.report.tables import gather_runs

    for name, value in (("a", 1.0), ("b", 2.0)):
        pd.DataFrame({"layer": [1, 2], "x": [value, value]}).to_csv(tmp_path / f"{name}.csv",
                                                                     index=False)
    runs = [{"method": "standard", "seed": 0,
             "files": {"other": "unused", "part": str(tmp_path / "a.csv")}},
            {"method": "aligned", "seed": 1,
             "files": {"other": "unused", "part": str(tmp_path / "b.csv")}}]
    frame = gather_runs(runs, "part")
    assert list(frame.columns) == ["method", "seed", "layer", "x"]
    assert list(gather_runs(runs, "part", name="run").columns[:2]) == ["run", "seed"]
    assert frame["method"].tolist() == ["standard", "standard", "aligned", "aligned"]
    assert frame["seed"].tolist() == [0, 0, 1, 1] and frame["x"].tolist() == [1, 1, 2, 2]


def test_the_depth_note_says_which_check_an_arm_fails():
    from layerwise.report.summary import depth_note

    verdict = {"deep": False, "seeds": 3, "beats_shallow": 0, "model": "standard",
               "first_layer_share": [0.5, 0.52, None], "reader": "tuned_lens"}
    text = depth_note(verdict, 0.6, "Kneser-Ney 8-gram model")
    assert "beats the shallow baseline (Kneser-Ney 8-gram model) on 0/3 seeds" in text
    assert "s_1 = 0.50, 0.52, – of what" in text and "at most 0.6 on 2/3 seeds" in text
    assert "scores as well or better" in text and "; and a linear read" in text
    deep = {**verdict, "deep": True, "beats_shallow": 3, "first_layer_share": [0.4, 0.5, 0.3]}
    assert depth_note(deep, 0.6, "x").endswith("The arm **uses its depth**.")
    lens_only = {**deep, "deep": False, "first_layer_share": [0.9, 0.5, 0.3]}
    assert depth_note(lens_only, 0.6, "x").endswith(
        "labelled **shallow**: a linear read of its first block already has more than 0.6 of "
        "its last layer's gain.")
