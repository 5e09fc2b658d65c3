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
    """Per method and seed: the fixed and the adaptive draft timed on test (seed 1 of aligned
    chose another fixed draft, and found the adaptive one faster on validation), and three
    replayed draft exits."""
    rows = []
    for method, offset in (("standard", 0.0), ("aligned", 0.3)):
        for seed in (0, 1):
            for kind, stop, gain in (("fixed", 0.0, 0.0), ("adaptive", 0.5 + seed / 10, 0.2)):
                other = method == "aligned" and seed == 1
                rows.append({"method": method, "seed": seed, "kind": kind,
                             "head": "final" if other and kind == "fixed" else "exit",
                             "exit_layer": 3 if other and kind == "fixed" else 2,
                             "draft_length": 4, "stop_below": stop,
                             "acceptance": 0.5 + offset / 2 + gain / 2,
                             "tokens_per_pass": 2 + gain, "tokens_per_s_full_depth": 100.0,
                             "tokens_per_s_speculative": 100.0 * (1 + offset + gain + seed / 10),
                             "wall_speedup": 1 + offset + gain + seed / 10,
                             "equal_to_full_depth": True,
                             "chosen": kind == ("adaptive" if other else "fixed")})
            for layer in (1, 2, 3):
                rows.append({"method": method, "seed": seed, "kind": "exit", "head": "exit",
                             "exit_layer": layer, "draft_length": 4, "stop_below": 0.0,
                             "acceptance": 0.2 * layer + offset / 2,
                             "layer_agreement": 0.1 * layer + offset / 3,
                             "tokens_per_pass": 1 + layer / 2, "chosen": False})
    return pd.DataFrame(rows)


def test_speculative_table_gives_each_draft_per_method_over_seeds():
    table = speculative_table(speculative_rows())
    # the methods' registry order, the fixed draft before the adaptive one
    assert list(zip(table["method"], table["kind"])) == [
        ("standard", "fixed"), ("standard", "adaptive"), ("aligned", "fixed"),
        ("aligned", "adaptive")]
    fixed = table.set_index(["method", "kind"]).loc[("aligned", "fixed")]
    assert fixed["wall_speedup_mean"] == pytest.approx(1.35)
    assert fixed["wall_speedup_sd"] == pytest.approx(np.std([1.3, 1.4], ddof=1))
    assert fixed["draft"] == "exit E=2 g=4 (1), final E=3 g=4 (1)" and fixed["n"] == 2
    assert fixed["faster_on_val"] == 1
    adaptive = table.set_index(["method", "kind"]).loc[("aligned", "adaptive")]
    assert adaptive["stop_below_mean"] == pytest.approx(0.55)    # the threshold's spread shown
    shown = format_speculative_table(table)
    assert shown.loc[2, "speed-up (median over prompts)"] == "1.35 ± 0.07×"
    assert shown.loc[3, "stop below top probability"] == "0.55 ± 0.07"
    assert list(shown["faster on validation (seeds)"]) == ["2/2", "0/2", "1/2", "1/2"]
    assert list(shown["output = full depth"]) == ["yes"] * 4


def test_an_output_that_differs_from_full_depth_is_flagged():
    rows = speculative_rows()
    rows.loc[(rows["method"] == "aligned") & (rows["kind"] == "adaptive"),
             "equal_to_full_depth"] = False
    assert list(format_speculative_table(speculative_table(rows))["output = full depth"]) == [
        "yes", "yes", "yes", "NO"]


def test_decoding_figures_draw_a_line_per_method():
    fig = speculative_figure(speculative_rows(), "t")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "tokens per verification pass"
    # drawn from the replayed exits only: a point per exit layer on each method's line
    assert sorted(fig.axes[1].lines[0].get_xdata()) == [1, 2, 3]
    generation = pd.DataFrame([{"method": m, "seed": s, "exit_layer": k, "diversity": 0.1 * k,
                                "coherence": 3 - 0.1 * k, "coherence_measure": "full_depth_ce_nats"}
                               for m in ("standard", "aligned") for s in (0, 1)
                               for k in (1, 2, 3)])
    fig = generation_figure(generation, "t")
    label = " ".join(fig.axes[1].get_ylabel().split())   # as read, line breaks aside
    assert "substitute" in label and "under each method's own model" in label
    judged = generation.assign(coherence_judge="the pretrained model")
    label = " ".join(generation_figure(judged, "t").axes[1].get_ylabel().split())
    assert "under the pretrained model" in label
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
