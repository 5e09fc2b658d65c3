"""A language model's decoding report (self-speculative table and figure, Fig 9 c, d) and its
per-layer table beside the n-gram baselines, on small synthetic frames."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from layerwise.report.decoding import (format_speculative_table, generation_figure,
                                       speculative_figure, speculative_table)
from layerwise.report.tables import token_table


def speculative_rows():
    rows = []
    for method, offset in (("standard", 0.0), ("aligned", 0.3)):
        for seed in (0, 1):
            for layer in (1, 2, 3):
                chosen = layer == (2 if seed == 0 else 3)
                rows.append({"method": method, "seed": seed, "exit_layer": layer,
                             "draft_length": 4, "acceptance": 0.2 * layer + offset / 2,
                             "layer_agreement": 0.1 * layer + offset / 3,
                             "tokens_per_pass": 1 + layer / 2, "tokens_per_s_full_depth": 100.0,
                             "tokens_per_s_speculative": 100.0 * (1 + offset + seed / 10),
                             "wall_speedup": 1 + offset + seed / 10,
                             "equal_to_full_depth": True, "chosen": chosen})
    return pd.DataFrame(rows)


def test_speculative_table_reads_each_seeds_chosen_draft():
    table = speculative_table(speculative_rows())
    assert list(table["method"]) == ["standard", "aligned"]     # the methods' registry order
    aligned = table.set_index("method").loc["aligned"]
    # seed 0 chose E=2, seed 1 E=3: their acceptances 0.55 and 0.75
    assert aligned["acceptance_mean"] == pytest.approx(0.65)
    assert aligned["acceptance_sd"] == pytest.approx(np.std([0.55, 0.75], ddof=1))
    assert aligned["wall_speedup_mean"] == pytest.approx(1.35)
    assert aligned["draft"] == "E=2 g=4 (1), E=3 g=4 (1)" and aligned["n"] == 2
    shown = format_speculative_table(table)
    assert shown.loc[1, "speed-up"] == "1.35 ± 0.07×"
    assert list(shown["output = full depth"]) == ["yes", "yes"]


def test_an_output_that_differs_from_full_depth_is_flagged():
    rows = speculative_rows()
    rows.loc[(rows["method"] == "aligned") & (rows["exit_layer"] == 1), "equal_to_full_depth"] = False
    assert list(format_speculative_table(speculative_table(rows))["output = full depth"]) == [
        "yes", "NO"]


def test_decoding_figures_draw_a_line_per_method():
    fig = speculative_figure(speculative_rows(), "t")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel().startswith("tokens/s")
    generation = pd.DataFrame([{"method": m, "seed": s, "exit_layer": k, "diversity": 0.1 * k,
                                "coherence": 3 - 0.1 * k, "coherence_measure": "full_depth_ce_nats"}
                               for m in ("standard", "aligned") for s in (0, 1)
                               for k in (1, 2, 3)])
    fig = generation_figure(generation, "t")
    assert "substitute" in fig.axes[1].get_ylabel()
    mixed = generation.assign(coherence_measure=["simcse_cosine"] * 6 + ["full_depth_ce_nats"] * 6)
    with pytest.raises(ValueError, match="mix coherence measures"):
        generation_figure(mixed, "t")


def test_the_token_table_puts_the_baselines_beside_every_layer():
    acc = pd.DataFrame([{"method": m, "seed": s, "split": "test", "layer": layer,
                         "accuracy": 0.1 * layer + s / 100, "cross_entropy": 3 - layer / 2}
                        for m in ("standard", "aligned") for s in (0, 1) for layer in (0, 1, 2)])
    baselines = {"trivial": "unigram", "shallow": "kneser_ney", "models": {
        "bigram": {"label": "bigram model", "test": {"accuracy": 0.2, "cross_entropy": 2.45}},
        "kneser_ney": {"label": "Kneser-Ney 5-gram model",
                       "test": {"accuracy": 0.3, "cross_entropy": 2.1}},
        "unigram": {"label": "unigram model", "test": {"accuracy": 0.05, "cross_entropy": 3.2}}}}
    table, shown = token_table(acc, "test", baselines)
    assert list(table["layer"]) == [1, 2]
    assert table["standard_mean"].tolist() == pytest.approx([0.105, 0.205])
    assert table["standard_mean_cross_entropy"].tolist() == pytest.approx([2.5, 2.0])
    assert (table["bigram_cross_entropy"] == 2.45).all()
    assert (table["kneser_ney_accuracy"] == 0.3).all()
    assert list(shown.columns) == ["layer", "acc. % standard (n=2)", "acc. % aligned (n=2)",
                                   "CE standard (n=2)", "CE aligned (n=2)",
                                   "acc. % Kneser-Ney 5-gram model",
                                   "CE Kneser-Ney 5-gram model",
                                   "acc. % bigram model", "CE bigram model",
                                   "acc. % unigram model", "CE unigram model"]
    assert shown.loc[0, "CE standard (n=2)"] == "2.50 ± 0.00"
    assert shown.loc[1, "acc. % bigram model"] == "20.0"
