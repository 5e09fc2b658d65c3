"""Tables and figures of the early-exit study, from small hand-made frames."""

import numpy as np
import pandas as pd
import pytest

from layerwise.report.exit_figures import (depth_study_figure, exit_counts_figure,
                                           exit_tradeoff_figure, saturation_figure)
from layerwise.report.exit_tables import (effective_depth_table, exit_table, format_exit_table,
                                          format_parameter_table, parameter_rows)
from layerwise.report.style import save_figure
from layerwise.reference import paper_values
from layerwise.exits.saturation import effective_depths


def points_frame():
    rows = []
    for method, accuracy in (("multi_exit", (0.8, 0.9)), ("aligned", (0.7, 0.8))):
        for seed, acc in enumerate(accuracy):
            rows.append({"method": method, "seed": seed, "policy": "confidence",
                         "full_depth_accuracy": 0.9, "accuracy": acc, "mean_exit_layer": 6.0,
                         "speedup": 2.0 + seed, "flops_ratio": 0.5, "wall_speedup_b1": 1.5,
                         "wall_speedup_b256": 1.9})
    return pd.DataFrame(rows)


def test_exit_table_gives_mean_and_sd_over_seeds_in_method_order():
    table = exit_table(points_frame())
    assert table["method"].tolist() == ["aligned", "multi_exit"]
    row = table.iloc[1]
    assert row["accuracy_mean"] == pytest.approx(0.85)
    assert row["accuracy_sd"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert row["speedup_mean"] == 2.5 and row["n"] == 2
    shown = format_exit_table(table)
    assert shown.loc[1, "acc. (%)"] == "85.0 ± 7.1"
    assert shown.loc[1, "wall-clock speed-up, batch 256"] == "1.90 ± 0.00×"


def test_effective_depths_per_run_and_split():
    rows = []
    curves = {("standard_d2", 0): [0.2, 0.5, 0.99], ("aligned", 0): [0.2, 0.98, 0.99, 0.99],
              ("aligned", 1): [0.2, 0.5, 0.98, 0.99]}
    for (run, seed), curve in curves.items():
        for layer, acc in enumerate(curve):
            rows.append({"run": run, "seed": seed, "split": "train", "layer": layer,
                         "accuracy": acc})
    depths = effective_depths(pd.DataFrame(rows), 0.03)
    # layer 0 is ignored: standard_d2 has L = 2
    assert depths.set_index(["run", "seed"])["effective_depth"].to_dict() == {
        ("standard_d2", 0): 2, ("aligned", 0): 1, ("aligned", 1): 2}
    table = effective_depth_table(depths)
    assert table["run"].tolist() == ["standard_d2", "aligned"]
    assert table.loc[1, "effective_depth_mean"] == 1.5


def test_parameter_table_has_the_papers_rows_and_the_counted_model():
    model = {"model": "tiny", "width": 4, "classes": 3, "layers": 3, "single": 100,
             "multi_counted": 130, "lens_counted": 40}
    table = parameter_rows(paper_values()["table1_parameter_savings"], model)
    assert table["model"].tolist() == ["DeiT-S", "DeiT-B", "GPT-2", "tiny"]
    assert table.iloc[-1]["multi_formula"] == 100 + 2 * 3 * 4
    assert table.iloc[-1]["saving_reported"] == pytest.approx(30 / 130)
    # a tuned lens: (L-1)(d^2 + d); for GPT-2 (K = 50257 > d) far below the exit heads
    gpt2 = table.set_index("model").loc["GPT-2"]
    assert gpt2["lens"] == 11 * (768 ** 2 + 768) and gpt2["lens"] < gpt2["multi_formula"] - gpt2[
        "single"]
    assert table.iloc[-1]["lens"] == 40
    shown = format_parameter_table(table)
    assert shown.loc[0, "multi = single + (L-1)Kd"] == "26.27M"
    assert shown.loc[3, "tuned lens (L-1)(d²+d)"] == "40"


def test_the_built_lens_has_the_counted_parameters():
    from layerwise.exits.parameters import lens_parameters
    from layerwise.train.runs import build_run_model

    spec = dict(arch="gpt2", depth=3, width=16, heads=2, mlp_ratio=2.0, head_input="raw",
                pretrained="")
    info = dict(vocab_size=20, num_classes=20, max_length=8, pad_id=0)
    single, lens = (sum(p.numel() for p in build_run_model({"method": m, "model": spec},
                                                           info).parameters())
                    for m in ("standard", "tuned_lens"))
    assert lens - single == lens_parameters(3, 16) == 2 * (16 * 16 + 16)


def test_every_exit_figure_renders(tmp_path):
    layers = range(1, 5)
    sweep = pd.DataFrame([{"method": m, "seed": s, "policy": p, "split": "test",
                           "threshold": t, "accuracy": 0.9 - 0.1 * t, "speedup": 1 + t,
                           "selected": t == 1}
                          for m in ("standard", "aligned") for s in (0, 1)
                          for p in ("confidence", "patience") for t in range(3)])
    counts = pd.DataFrame([{"method": m, "seed": s, "policy": "confidence", "layer": l,
                            "count": l} for m in ("aligned", "multi_exit") for s in (0, 1)
                           for l in layers])
    saturation = pd.DataFrame([{"method": m, "seed": s, "split": "test", "sample": i,
                                "saturation_layer": 1 + i % 4}
                               for m in ("standard", "aligned") for s in (0, 1)
                               for i in range(10)])
    similarity = pd.DataFrame([{"method": m, "seed": s, "measure": "cos", "layer_a": a,
                                "layer_b": 4, "value": a / 4}
                               for m in ("standard", "aligned") for s in (0, 1) for a in layers])
    accuracy = pd.DataFrame([{"run": r, "seed": s, "split": "train", "layer": l,
                              "accuracy": min(1.0, l / 3)}
                             for r, depth in (("standard_d2", 2), ("standard", 4),
                                              ("aligned", 4), ("multi_exit", 4))
                             for s in (0, 1) for l in range(depth + 1)])
    figures = {
        "tradeoff": exit_tradeoff_figure(sweep, "trade-off"),
        "counts": exit_counts_figure(counts, "counts"),
        "saturation": saturation_figure(saturation, similarity, "saturation"),
        "depth": depth_study_figure(accuracy, 0.03, "train", "depth"),
    }
    for name, fig in figures.items():
        save_figure(fig, tmp_path / f"{name}.pdf", tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
