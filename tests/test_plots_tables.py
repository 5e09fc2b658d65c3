"""Figures and tables on small synthetic frames: files are written, complete and correct."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from layerwise.report import figures as plots, style, tables
from layerwise.report.figure_kinds import FIGURES, figure_parser
from layerwise.similarity.measures import HEATMAPS

METHODS = ("standard", "aligned")
SEEDS = (0, 1)
LAYERS = 5  # layers 0..4: embedding plus 4 blocks


@pytest.fixture(scope="module")
def acc() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for method in METHODS:
        for seed in SEEDS:
            for layer in range(LAYERS):
                base = layer / (LAYERS - 1) if method == "standard" else 0.8 + 0.04 * layer
                for split in ("val", "test"):
                    rows.append({"method": method, "seed": seed, "split": split,
                                 "layer": layer,
                                 "accuracy": float(np.clip(base + rng.normal(0, 0.02), 0, 1))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for method in METHODS:
        for seed in SEEDS:
            for measure in ("cos", "cos_raw", "cka_linear_biased"):
                for a in range(LAYERS):
                    for b in range(LAYERS):
                        value = 1.0 if a == b else 0.9 ** abs(a - b) - rng.uniform(0, 0.05)
                        rows.append({"method": method, "seed": seed, "measure": measure,
                                     "layer_a": a, "layer_b": b, "value": value})
    return pd.DataFrame(rows)


def _matrix(sim: pd.DataFrame, method: str, measure: str = "cos") -> np.ndarray:
    rows = sim[(sim["method"] == method) & (sim["measure"] == measure)
               & (sim["layer_a"] >= 1) & (sim["layer_b"] >= 1)]
    return rows.pivot_table(index="layer_a", columns="layer_b", values="value").to_numpy()


def _assert_saved(fig, tmp_path, name: str) -> None:
    pdf, png = tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"
    style.save_figure(fig, pdf, png)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.stat().st_size > 1000 and png.stat().st_size > 1000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_layerwise_accuracy_figure(acc, tmp_path):
    reference = {"paper: standard": [0.1, 0.3, 0.6, 0.9], "paper: aligned": [0.8] * 4}
    fig = plots.layerwise_accuracy_figure(acc, "test", chance=0.1, reference=reference)
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 1.0)
    labels = ax.get_legend_handles_labels()[1]
    assert "standard (n=2)" in labels and "paper: aligned" in labels
    # The standard line is the mean over seeds at layers 1..4 (layer 0 dropped).
    line = next(l for l in ax.get_lines() if l.get_label() == "standard (n=2)")
    expected = (acc[(acc.method == "standard") & (acc.split == "test") & (acc.layer >= 1)]
                .groupby("layer")["accuracy"].mean())
    np.testing.assert_allclose(line.get_xdata(), expected.index)
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())
    assert line.get_color() == style.METHOD_COLORS["standard"]
    _assert_saved(fig, tmp_path, "acc")


def test_minmax_band_label(acc):
    fig = plots.layerwise_accuracy_figure(acc, "val", band="minmax")
    assert "min–max" in fig.axes[0].get_ylabel()
    style.plt.close(fig)
    with pytest.raises(ValueError):
        plots.layerwise_accuracy_figure(acc, "no-such-split")


def test_heatmap_color_limits():
    assert plots.heatmap_color_limits(np.array([[1.0, 0.2], [0.2, 1.0]])) == (0.0, 1.0)
    assert plots.heatmap_color_limits(np.array([[1.0, -0.3], [-0.3, 1.0]])) == (-1.0, 1.0)
    # float noise just below zero does not switch to the diverging scale; NaN is ignored
    assert plots.heatmap_color_limits(np.array([[1.0, -1e-9], [np.nan, 1.0]])) == (0.0, 1.0)


def test_similarity_heatmap_figure(sim, tmp_path):
    matrix = _matrix(sim, "standard")
    fig = plots.similarity_heatmap_figure(matrix, "COS, standard", "COS")
    ax = fig.axes[0]
    assert ax.collections[0].get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
    assert len(ax.texts) == matrix.size  # every cell annotated
    assert ax.texts[0].get_text() == f"{matrix[0, 0]:.2f}"
    _assert_saved(fig, tmp_path, "heat")

    fig = plots.similarity_heatmap_figure(matrix - 0.95, "shifted", "COS")
    assert fig.axes[0].collections[0].get_clim() == (-1.0, 1.0)
    style.plt.close(fig)

    big = np.eye(20)
    fig = plots.similarity_heatmap_figure(big, "big", "CKA")
    assert not fig.axes[0].texts  # no annotations above 16 layers
    style.plt.close(fig)
    with pytest.raises(ValueError):
        plots.similarity_heatmap_figure(np.ones((2, 3)), "bad", "CKA")


def test_heatmap_grid_figure(sim, tmp_path):
    matrices = {m: _matrix(sim, m) for m in ("aligned", "standard")}
    matrices["aligned"] = matrices["aligned"] - 0.95  # some negative values
    fig = plots.heatmap_grid_figure(matrices, "COS heatmaps", "COS")
    heat_axes = [ax for ax in fig.axes if ax.get_title() in ("standard", "aligned")]
    assert [ax.get_title() for ax in heat_axes] == ["standard", "aligned"]
    assert all(ax.collections[0].get_clim() == (-1.0, 1.0) for ax in heat_axes)
    assert len(fig.axes) == 3  # two panels and one shared color bar
    _assert_saved(fig, tmp_path, "grid")


def test_curves_vs_last_figure(acc, sim, tmp_path):
    fig = plots.curves_vs_last_figure(acc, sim, "standard", "test")
    ax = fig.axes[0]
    lines = {l.get_label(): l for l in ax.get_lines()}
    assert set(lines) == {"COS(l, 4) (centered)", "CKA(l, 4) (linear)", "test accuracy"}
    cka = lines["CKA(l, 4) (linear)"]
    np.testing.assert_allclose(cka.get_xdata(), [1, 2, 3, 4])
    assert cka.get_ydata()[-1] == pytest.approx(1.0)
    _assert_saved(fig, tmp_path, "curves")
    with pytest.raises(ValueError, match="cka_linear_biased"):
        plots.curves_vs_last_figure(acc, sim[sim.measure != "cka_linear_biased"],
                                    "standard", "test")


def test_accuracy_table_roundtrip(acc, tmp_path):
    table = tables.layerwise_accuracy_table(acc, "test")
    assert list(table["layer"]) == [1, 2, 3, 4]
    assert list(table.columns) == ["layer", "standard_mean", "standard_sd", "standard_n",
                                   "aligned_mean", "aligned_sd", "aligned_n"]
    paths = tables.write_table(table, tmp_path / "acc_test", "Layer-wise accuracy (%).",
                               formatted=tables.format_accuracy_table(table))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "acc_test.csv", "acc_test.md", "acc_test.tex"]  # and no temporary files left

    back = pd.read_csv(paths["csv"])
    data = acc[(acc.split == "test") & (acc.layer >= 1)]
    expected = data.groupby(["method", "layer"])["accuracy"].agg(["mean", "std", "count"])
    for method in METHODS:
        np.testing.assert_allclose(back[f"{method}_mean"], expected.loc[method, "mean"])
        np.testing.assert_allclose(back[f"{method}_sd"], expected.loc[method, "std"])
        assert list(back[f"{method}_n"]) == list(expected.loc[method, "count"])

    md = paths["md"].read_text(encoding="utf-8")
    table_lines = [l for l in md.splitlines() if l.startswith("|")]
    assert len(table_lines) == 2 + 4 and set(table_lines[1]) <= set("|-: ")
    header = [c.strip() for c in table_lines[0].strip("|").split("|")]
    assert header == ["layer", "standard (n=2)", "aligned (n=2)"]
    mean = 100 * expected.loc[("standard", 2), "mean"]
    sd = 100 * expected.loc[("standard", 2), "std"]
    assert f"{mean:.1f} ± {sd:.1f}" in md

    tex = paths["tex"].read_text(encoding="utf-8")
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert "standard" in tex and "aligned" in tex and r"$\pm$" in tex
    assert r"\caption{Layer-wise accuracy (\%).}" in tex


def test_write_table_plain_and_escaping(tmp_path):
    frame = pd.DataFrame({"method": ["multi_exit", "a|b"], "value": [0.123456, np.nan]})
    paths = tables.write_table(frame, str(tmp_path / "plain"))
    assert pd.read_csv(paths["csv"])["value"].iloc[0] == pytest.approx(0.123456)
    md = paths["md"].read_text(encoding="utf-8")
    assert r"a\|b" in md and "0.1235" in md
    tex = paths["tex"].read_text(encoding="utf-8")
    assert r"multi\_exit" in tex and r"\begin{table}" not in tex


def test_single_seed_table():
    one = pd.DataFrame({"method": "aligned", "seed": 0, "split": "test",
                        "layer": [0, 1, 2], "accuracy": [0.1, 0.5, 0.75]})
    table = tables.layerwise_accuracy_table(one, "test")
    assert table["aligned_sd"].isna().all()
    formatted = tables.format_accuracy_table(table)
    assert list(formatted["aligned (n=1)"]) == ["50.0", "75.0"]


def test_similarity_figures_of_the_paper_appendix(tmp_path):
    from layerwise.report.figures import (adjacent_cos_figure, cos_boxplot_figure,
                                          curves_vs_last_panels_figure)
    from layerwise.report.style import save_figure
    rng = np.random.default_rng(0)
    per_sample = pd.DataFrame([{"method": m, "seed": s, "layer": l, "sample": i,
                                "cos": float(rng.uniform(-1, 1))}
                               for m in ("standard", "aligned") for s in (0, 1)
                               for l in range(1, 5) for i in range(10)])
    sim = pd.DataFrame([{"method": m, "seed": s, "measure": meas, "layer_a": a, "layer_b": b,
                         "value": 1.0 if a == b else 1 / (1 + abs(a - b))}
                        for m in ("standard", "aligned") for s in (0, 1)
                        for meas in ("cos", "cka_linear_biased")
                        for a in range(1, 5) for b in range(1, 5)])
    acc = pd.DataFrame([{"method": m, "seed": s, "split": "test", "layer": l,
                         "accuracy": l / 5} for m in ("standard",) for s in (0, 1)
                        for l in range(0, 5)])
    figures = {"box": cos_boxplot_figure(per_sample, "boxes"),
               "adjacent": adjacent_cos_figure(sim, "adjacent"),
               "panels": curves_vs_last_panels_figure({"a": (acc, sim), "b": (acc, sim)},
                                                      "standard", "test", "two panels")}
    for name, fig in figures.items():
        save_figure(fig, tmp_path / f"{name}.pdf", tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_adjacent_cos_with_the_norm_ratio_panel(tmp_path):
    from layerwise.report.figures import adjacent_cos_figure
    from layerwise.report.style import save_figure

    sim = pd.DataFrame([{"method": m, "seed": s, "measure": "cos", "layer_a": a, "layer_b": a + 1,
                         "value": 0.5 + 0.1 * a} for m in ("standard", "aligned")
                        for s in (0, 1) for a in range(1, 4)])
    rng = np.random.default_rng(0)
    ratio = pd.DataFrame([{"method": m, "seed": s, "layer": l, "sample": i,
                           "ratio": float(rng.lognormal(1.0, 0.5))}
                          for m in ("standard", "aligned") for s in (0, 1)
                          for l in range(1, 5) for i in range(20)])
    ratio.loc[0, "ratio"] = np.inf                          # a block that changed nothing
    fig = adjacent_cos_figure(sim, "t", norm_ratio=ratio, reference=("paper", [2.0, 4.0, 3.0]))
    assert len(fig.axes) == 2 and fig.axes[1].get_yscale() == "log"
    assert [line.get_label() for line in fig.axes[1].get_lines()][-1] == "paper"
    save_figure(fig, tmp_path / "a.pdf", tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 0


# --- every figure record draws, through scripts/plot.py's parser, from small files ------------
@pytest.fixture(scope="module")
def figure_inputs(acc, sim, tmp_path_factory) -> dict[str, str]:
    """One small file of every kind a figure reads, by name."""
    folder = tmp_path_factory.mktemp("figure_inputs")
    rng = np.random.default_rng(2)
    runs = [(m, s) for m in METHODS for s in SEEDS]
    blocks = range(1, LAYERS)
    frames = {
        "accuracy": acc,
        "lm_accuracy": acc.assign(cross_entropy=3.0 - acc["accuracy"]),
        "similarity": sim,
        "per_sample": pd.DataFrame([{"method": m, "seed": s, "layer": l, "sample": i,
                                     "cos": float(rng.uniform(-1, 1))}
                                    for m, s in runs for l in blocks for i in range(8)]),
        "norm_ratio": pd.DataFrame([{"method": m, "seed": s, "layer": l, "sample": i,
                                     "ratio": float(rng.lognormal(1.0, 0.5))}
                                    for m, s in runs for l in blocks for i in range(8)]),
        "cross_model": sim[(sim.method == "standard") & (sim.measure == "cka_linear_biased")
                           & (sim.layer_a >= 1) & (sim.layer_b >= 1)],
        "sweep": pd.DataFrame([{"method": m, "seed": s, "policy": p, "split": "test",
                                "threshold": t, "accuracy": 0.9 - 0.1 * t, "speedup": 1 + t,
                                "selected": t == 1}
                               for m, s in runs for p in ("confidence", "patience")
                               for t in range(3)]),
        "counts": pd.DataFrame([{"method": m, "seed": s, "policy": "confidence", "layer": l,
                                 "count": l} for m, s in runs for l in blocks]),
        "saturation": pd.DataFrame([{"method": m, "seed": s, "split": "test", "sample": i,
                                     "saturation_layer": 1 + i % 4}
                                    for m, s in runs for i in range(10)]),
        "depth": pd.DataFrame([{"run": r, "seed": s, "split": "train", "layer": l,
                                "accuracy": min(1.0, l / 3)}
                               for r, depth in (("standard_d2", 2), ("standard", 4),
                                                ("aligned", 4))
                               for s in SEEDS for l in range(depth + 1)]),
        "val_curves": pd.DataFrame([{"run": r, "seed": s, "epoch": e, "val_accuracy": e / 4}
                                    for r in ("standard_d2", "standard", "aligned")
                                    for s in SEEDS for e in range(1, 4)]),
        "speculative": pd.DataFrame([{"method": m, "seed": s, "kind": "exit", "head": "exit",
                                      "exit_layer": l, "draft_length": 4, "stop_below": 0.0,
                                      "acceptance": 0.2 * l, "layer_agreement": 0.1 * l,
                                      "tokens_per_pass": 1 + l / 2, "chosen": False}
                                     for m, s in runs for l in (1, 2, 3)]),
        # a CLIP of 3 image and 2 text layers: every pair within and across the towers
        "image_text": pd.DataFrame([{"modality_a": a, "layer_a": i, "modality_b": b,
                                     "layer_b": j, "cos": float(rng.uniform(-0.2, 1)),
                                     "method": "pretrained", "seed": s}
                                    for a, b, rows, cols in (("image", "image", 4, 4),
                                                             ("text", "text", 3, 3),
                                                             ("image", "text", 4, 3))
                                    for s in SEEDS for i in range(rows) for j in range(cols)]),
        "generation": pd.DataFrame([{"method": m, "seed": s, "exit_layer": k,
                                     "diversity": 0.1 * k, "coherence": 3 - 0.1 * k,
                                     "coherence_measure": "full_depth_ce_nats"}
                                    for m, s in runs for k in (1, 2, 3)]),
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = str(folder / f"{name}.csv")
        frame.to_csv(paths[name], index=False)
    paths["lm_baselines"] = str(folder / "lm_baselines.json")
    (folder / "lm_baselines.json").write_text(json.dumps({
        "metric": "cross_entropy", "trivial": "unigram", "shallow": "kneser_ney", "models": {
            "unigram": {"label": "unigram model",
                        "test": {"accuracy": 0.05, "cross_entropy": 3.2, "tokens": 9}},
            "bigram": {"label": "bigram model",
                       "test": {"accuracy": 0.2, "cross_entropy": 2.45, "tokens": 9}},
            "kneser_ney": {"label": "Kneser-Ney 4-gram model",
                           "test": {"accuracy": 0.3, "cross_entropy": 2.1, "tokens": 9}}}}))
    paths["baselines"] = str(folder / "baselines.json")
    (folder / "baselines.json").write_text(json.dumps({
        "metric": "accuracy", "trivial": "majority", "shallow": "logistic", "models": {
            "majority": {"label": "majority class", "test": {"accuracy": 0.1, "f1": 0.0}},
            "logistic": {"label": "logistic regression on pixels",
                         "test": {"accuracy": 0.7, "f1": 0.6}}}}))
    return paths


def figure_cases(f: dict[str, str]) -> dict[str, list[list[str]]]:
    """scripts/plot.py's arguments of every figure kind on the files of `figure_inputs`
    (a new record without a case here fails test_every_figure_record_draws)."""
    return {
        "layerwise_accuracy": [
            ["--accuracy", f["accuracy"], "--metric", "accuracy", "--baselines",
             f["baselines"], "--reference", "fig4_deit_s_imagenet.test_acc",
             "paper DeiT-S ImageNet (Fig 4)"],
            ["--accuracy", f["lm_accuracy"], "--baselines", f["lm_baselines"],
             "--reference", "fig9_gpt2_wikitext103_token_acc", "paper GPT-2 (Fig 9)",
             "--loss-reference", "fig9_gpt2_wikitext103_token_loss", "paper GPT-2 (Fig 9)"]],
        "heatmaps": [["--similarity", f["similarity"], "--measure", short] for short in HEATMAPS],
        "curves_vs_last": [["--accuracy", f["accuracy"], "--similarity", f["similarity"],
                            "--method", "aligned"]],
        "cos_boxplot": [["--per-sample", f["per_sample"]]],
        "adjacent_cos": [["--similarity", f["similarity"]],
                         ["--similarity", f["similarity"], "--norm-ratio", f["norm_ratio"]]],
        "cross_model": [["--similarity", f["cross_model"]]],
        "exit_tradeoff": [["--data", f["sweep"]]],
        "exit_counts": [["--data", f["counts"]]],
        "speculative": [["--data", f["speculative"]]],
        "generation": [["--data", f["generation"]]],
        "image_text": [["--data", f["image_text"], "--method", "pretrained"]],
        "saturation": [["--data", f["saturation"], "--similarity", f["similarity"]]],
        "depth_study": [["--data", f["depth"], "--epsilon", "0.03", "--split", "train",
                         "--val-curves", f["val_curves"]]],
        "residual_ablation": [["--panel", "without", f["accuracy"], f["similarity"],
                               "--panel", "with", f["accuracy"], f["similarity"],
                               "--panel-reference", "fig12_mlp9_mnist.no_residual", "paper",
                               "--panel-reference", "fig12_mlp9_mnist.residual", "paper"]],
        "text_layerwise": [["--task-panel", "sst2", f["accuracy"], "accuracy", "sst2_acc",
                            "paper BERT", "--task-panel", "own", f["accuracy"], "accuracy", "-", "-"]],
    }


@pytest.mark.parametrize("kind", list(FIGURES))
def test_every_figure_record_draws(kind, figure_inputs, tmp_path):
    """Each record's options parse as scripts/plot.py parses them, and its drawing function
    draws a figure that is written as PDF and PNG."""
    cases = figure_cases(figure_inputs)
    assert kind in cases, f"no synthetic case for the figure record {kind!r}"
    record = FIGURES[kind]
    for i, case in enumerate(cases[kind]):
        name = f"{kind}_{i}"
        experiment = ["--experiment", "synthetic"] if record.per_experiment else []
        args = figure_parser().parse_args([kind, *experiment, *case,
                                           "--pdf", str(tmp_path / f"{name}.pdf"),
                                           "--png", str(tmp_path / f"{name}.png")])
        fig = record.drawer()(args)
        assert fig.axes and any(ax.has_data() for ax in fig.axes), name
        _assert_saved(fig, tmp_path, name)
