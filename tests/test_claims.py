"""Each claim's statistic on hand-made results: one set of inputs where the claim must hold and
one where it must fail; claims whose inputs a study lacks are listed as not evaluated."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from layerwise import claims
from layerwise.claims import FAILS, HOLDS, NOT_EVALUATED, ExperimentData
from layerwise.study.config import load_config_file, validate_config
from layerwise.reference import paper_values

from conftest import ROOT

LAYERS = 6
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def thresholds() -> dict:
    return validate_config(load_config_file(ROOT / "config/config.yaml"))["claims"]


def accuracy(curves: dict[str, list[float]], noise: float = 0.0) -> pd.DataFrame:
    """layer_accuracy.csv rows: each method's curve over layers 1..L (layer 0 at chance)."""
    rng = np.random.default_rng(0)
    rows = []
    for method, curve in curves.items():
        for seed in SEEDS:
            for layer, value in enumerate([0.1, *curve]):
                rows.append({"method": method, "seed": seed, "split": "test", "layer": layer,
                             "accuracy": value + (noise * rng.normal() if layer else 0.0)})
    return pd.DataFrame(rows)


def similarity(matrices: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """similarity.csv rows of layers 1..L: {method: {measure: matrix}}, the same every seed."""
    rows = []
    for method, measures in matrices.items():
        for measure, matrix in measures.items():
            for seed in SEEDS:
                for a in range(matrix.shape[0]):
                    for b in range(matrix.shape[1]):
                        rows.append({"method": method, "seed": seed, "measure": measure,
                                     "layer_a": a + 1, "layer_b": b + 1,
                                     "value": float(matrix[a, b])})
    return pd.DataFrame(rows)


def decaying(rate: float = 0.8) -> np.ndarray:
    """A similarity matrix that falls off with the distance between layers."""
    idx = np.arange(LAYERS)
    return rate ** np.abs(idx[:, None] - idx[None, :])


def one(rows, claim: str) -> claims.ClaimResult:
    (row,) = [r for r in rows if r.claim == claim]
    return row


# --- C1 ----------------------------------------------------------------------------------------
def agreement(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame([{"method": "standard", "seed": s, "measure": "cka_linear_biased",
                          "scope": "pairs", "spearman": v} for s, v in zip(SEEDS, values)]
                        + [{"method": "standard", "seed": s, "measure": "cka_linear_biased",
                            "scope": "to_last", "spearman": 0.0} for s in SEEDS])


@pytest.mark.parametrize("values, status", [([0.95, 0.9, 0.92], HOLDS), ([0.3, 0.5, 0.1], FAILS)])
def test_c1_cos_cka_rank_agreement(thresholds, values, status):
    row = claims.result("C1", "x", thresholds, lambda: claims.c1_per_seed(agreement(values),
                                                                           "standard"))
    assert row.status == status and row.n == 3
    assert row.mean == pytest.approx(np.mean(values))
    assert row.sd == pytest.approx(np.std(values, ddof=1))


# --- C2 ----------------------------------------------------------------------------------------
def test_closeness_fraction_is_one_for_a_matrix_falling_off_the_diagonal():
    assert claims.closeness_fraction(decaying()) == 1.0
    assert claims.closeness_fraction(
        paper_values()["fig2_deit_s_scratch_standard"]["cifar10_pairwise_cos"]) == 1.0


@pytest.mark.parametrize("matrix, status", [
    (decaying(), HOLDS),
    (1 - decaying(), FAILS),  # rises away from the diagonal: every step towards it falls
])
def test_c2_similarity_rises_as_layers_get_closer(thresholds, matrix, status):
    sim = similarity({"standard": {"cos": matrix}})
    row = claims.result("C2", "x", thresholds, lambda: claims.c2_per_seed(sim, "standard"))
    assert row.status == status


# --- C3, C4, C5 --------------------------------------------------------------------------------
STANDARD = [0.1, 0.1, 0.15, 0.3, 0.7, 0.95]


@pytest.mark.parametrize("aligned, status", [
    ([0.6, 0.75, 0.85, 0.9, 0.93, 0.94], HOLDS),
    ([0.12, 0.11, 0.16, 0.31, 0.72, 0.95], FAILS),  # barely above standard
])
def test_c3_aligned_raises_intermediate_layers(thresholds, aligned, status):
    acc = accuracy({"standard": STANDARD, "aligned": aligned}, noise=0.005)
    row = claims.result("C3", "x", thresholds, lambda: claims.c3_per_seed(acc))
    assert row.status == status
    expected = np.mean(np.subtract(aligned, STANDARD)[:-1])
    assert row.mean == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("aligned, status", [
    ([0.6, 0.75, 0.85, 0.9, 0.93, 0.94], HOLDS),
    ([0.6, 0.85, 0.6, 0.9, 0.93, 0.94], FAILS),  # layer 3 falls 25 points below layer 2
])
def test_c4_aligned_accuracy_rises_nearly_monotonically(thresholds, aligned, status):
    acc = accuracy({"aligned": aligned})
    row = claims.result("C4", "x", thresholds, lambda: claims.c4_per_seed(acc))
    assert row.status == status
    assert claims.largest_drop(aligned) == pytest.approx(row.mean)


@pytest.mark.parametrize("last, status", [(0.94, HOLDS), (0.97, HOLDS), (0.80, FAILS)])
def test_c5_aligned_final_layer_stays_close_to_standard(thresholds, last, status):
    acc = accuracy({"standard": STANDARD, "aligned": [0.6, 0.7, 0.8, 0.85, 0.9, last]})
    row = claims.result("C5", "x", thresholds, lambda: claims.c5_per_seed(acc))
    assert row.status == status
    assert row.mean == pytest.approx(STANDARD[-1] - last)


# --- C12, C14: the tuned lens ------------------------------------------------------------
LENS_ON_STANDARD = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


@pytest.mark.parametrize("on_aligned, status", [
    ([0.6, 0.7, 0.8, 0.85, 0.92, 0.94], HOLDS),    # above the lens on standard below layer L
    ([0.45, 0.55, 0.7, 0.8, 0.9, 0.94], FAILS),
])
def test_c14_a_lens_on_the_aligned_model_against_one_on_the_standard_model(thresholds,
                                                                          on_aligned, status):
    acc = accuracy({"tuned_lens": LENS_ON_STANDARD, "aligned_lens": on_aligned})
    row = claims.result("C14", "x", thresholds, lambda: claims.c14_per_seed(acc))
    assert row.status == status
    # layer L is each model's own: only layers 1..L-1 count
    assert row.mean == pytest.approx(np.mean(np.subtract(on_aligned, LENS_ON_STANDARD)[:-1]))
    missing = accuracy({"tuned_lens": LENS_ON_STANDARD})
    row = claims.result("C14", "x", thresholds, lambda: claims.c14_per_seed(missing))
    assert row.status == NOT_EVALUATED and "aligned_lens" in row.reason


def test_c12_aligned_training_against_a_lens_on_the_standard_model(thresholds):
    acc = accuracy({"tuned_lens": LENS_ON_STANDARD, "aligned": [0.4, 0.5, 0.6, 0.7, 0.8, 0.94]})
    row = claims.result("C12", "x", thresholds, lambda: claims.CLAIMS["C12"].compute(
        claims.ExperimentData("x", accuracy=acc), thresholds))
    assert row.status == FAILS and row.mean == pytest.approx(-0.1)


# --- C6, C6-FLOPs, C13 -------------------------------------------------------------------------
def exits(multi_accuracy: float, policy: str = "confidence", other: str = "multi_exit",
          other_flops: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An aligned sweep of 9 thresholds: on validation the speed-up of threshold t is 1 + t/4,
    on test 0.2x less, and the FLOPs ratio is the inverse of the speed-up (exits cost
    nothing); test accuracy falls from 0.9 at threshold 0 by 0.075 a threshold, except at
    threshold 5, an outlier of 0.95 that only a choice made on test would take. The other
    method's operating point is at 2x on validation (2.1x on test) at `other_flops` of full
    depth's FLOPs: by speed-up validation matches aligned threshold 4 (test accuracy 0.6)."""
    sweep = pd.DataFrame([{"method": "aligned", "seed": s, "policy": policy, "split": split,
                           "threshold": float(t), "speedup": 1 + t / 4 - (split == "test") * 0.2,
                           "flops_ratio": 1 / (1 + t / 4 - (split == "test") * 0.2),
                           "accuracy": 0.95 if (split, t) == ("test", 5) else 0.9 - 0.075 * t,
                           "selected": t == 2}
                          for s in SEEDS for split in ("val", "test") for t in range(9)])
    chosen = pd.DataFrame([{"method": other, "seed": s, "policy": policy, "split": "val",
                            "threshold": t, "speedup": 2.0 if t else 1.0,
                            "flops_ratio": other_flops if t else 1.0, "accuracy": 0.9,
                            "selected": t == 0.5} for s in SEEDS for t in (0.0, 0.5)])
    points = pd.DataFrame([{"method": m, "seed": s, "policy": policy, "layers": 12,
                            "threshold": threshold, "speedup": test, "flops_ratio": flops,
                            "accuracy": a}
                           for s in SEEDS for m, threshold, test, flops, a in
                           (("aligned", 2.0, 1.3, 1 / 1.3, 0.825),
                            (other, 0.5, 2.1, other_flops, multi_accuracy))])
    return pd.concat([sweep, chosen], ignore_index=True), points


def test_the_aligned_threshold_is_matched_on_validation():
    sweep, _ = exits(0.6)
    val = sweep[(sweep["method"] == "aligned") & (sweep["seed"] == SEEDS[0])
                & (sweep["split"] == "val")]
    assert claims.matched_threshold(val, 2.0) == 4.0
    assert claims.matched_threshold(val, 2.1) == 4.0      # nearest, not the next one up
    assert claims.matched_threshold(val, 9.0) == 8.0      # beyond the sweep: its fastest
    assert claims.matched_threshold(val, 0.57, by="flops_ratio") == 3.0   # 1/1.75 = 0.571


@pytest.mark.parametrize("multi, status", [(0.61, HOLDS), (0.59, HOLDS), (0.65, FAILS),
                                           (0.55, FAILS)])
def test_c6_single_classifier_on_par_with_multi_exit_at_matched_speedup(thresholds, multi,
                                                                        status):
    """Two-sided: the multi-exit baseline far below the single classifier is not "on par"
    either; the aligned side is read at the threshold validation matched (0.6), never at the
    test outlier."""
    sweep, points = exits(multi)
    row = claims.result("C6", "x", thresholds,
                        lambda: claims.matched_exit_gap(sweep, points, "confidence"))
    assert row.status == status
    assert row.mean == pytest.approx(multi - 0.6)
    assert "multi_exit operating point" in row.detail and "validation-matched" in row.detail
    assert "speed-up" in row.detail


def test_matching_by_flops_and_by_speedup_can_disagree(thresholds):
    """A tuned lens whose exits cost compute (a translator before the head): at its 2x
    speed-up it spends 0.6 of full depth's FLOPs, where the aligned model at 2x spends 0.5.
    Matched by speed-up, the aligned model is read at threshold 4 (0.6) and the lens, at
    0.64, exits better by more than the 2-point margin; matched by FLOPs, the aligned model
    may exit later (threshold 3, 1.75x, 0.675) and comes out ahead."""
    sweep, points = exits(0.64, other="tuned_lens", other_flops=0.6)
    by_speed = claims.result("C13", "x", thresholds, lambda: claims.matched_exit_gap(
        sweep, points, "confidence", "tuned_lens", by="speedup"))
    by_flops = claims.result("C13", "x", thresholds, lambda: claims.matched_exit_gap(
        sweep, points, "confidence", "tuned_lens", by="flops_ratio"))
    assert by_speed.mean == pytest.approx(0.64 - 0.6) and by_speed.status == FAILS
    assert by_flops.mean == pytest.approx(0.64 - 0.675) and by_flops.status == HOLDS
    assert "FLOPs" in by_flops.detail
    # C13 itself is matched by FLOPs, C6-FLOPs too, C6 by the paper's speed-up
    assert claims.CLAIMS["C13"].compute(_Exits(sweep, points), thresholds)[0] == pytest.approx(
        {s: 0.64 - 0.675 for s in SEEDS})


class _Exits:
    """The two tables an exit claim reads, as ExperimentData gives them."""

    def __init__(self, sweep, points):
        self.tables = {"sweep": sweep, "points": points}

    def table(self, name):
        return self.tables[name]


def test_c6_without_the_configured_policy_is_not_evaluated(thresholds):
    sweep, points = exits(0.75, policy="entropy")
    row = claims.result("C6", "x", thresholds,
                        lambda: claims.matched_exit_gap(sweep, points, "confidence"))
    assert row.status == NOT_EVALUATED and "exit policy confidence" in row.reason


def test_a_sweep_without_flops_is_not_matched_by_flops(thresholds):
    sweep, points = exits(0.6)
    row = claims.result("C6-FLOPs", "x", thresholds, lambda: claims.matched_exit_gap(
        sweep.drop(columns="flops_ratio"), points, "confidence", by="flops_ratio"))
    assert row.status == NOT_EVALUATED and "flops_ratio" in row.reason


# --- C7 ----------------------------------------------------------------------------------------
def saturation(aligned_layers, standard_layers) -> pd.DataFrame:
    rows = [{"method": m, "seed": s, "split": "test", "sample": i, "saturation_layer": layer}
            for m, layers in (("aligned", aligned_layers), ("standard", standard_layers))
            for s in SEEDS for i, layer in enumerate(layers)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("aligned, status", [
    ([1, 1, 2, 2, 3, 6, 6, 5], HOLDS),    # 5 of 8 by layer 3, standard 1 of 8
    ([6, 5, 6, 4, 3, 6, 6, 5], FAILS),    # 1 of 8, as many as standard
])
def test_c7_aligned_training_saturates_earlier(thresholds, aligned, status):
    sat = saturation(aligned, [6, 6, 5, 6, 3, 6, 4, 6])
    row = claims.result("C7", "x", thresholds, lambda: claims.c7_per_seed(sat, LAYERS, 0.5),
                        num_layers=LAYERS)
    assert row.status == status
    assert "by layer 3" in row.statistic


# --- C8 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("plain_cos, status", [
    (decaying(0.3), HOLDS),   # without residuals COS falls off fast while CKA stays high
    (decaying(0.9), FAILS),   # COS as high as CKA: no difference between the two models
])
def test_c8_cka_overstates_similarity_without_residuals(thresholds, plain_cos, status):
    plain = similarity({"standard": {"cos": plain_cos, "cka_linear_biased": decaying(0.98)}})
    residual = similarity({"standard": {"cos": decaying(0.9),
                                        "cka_linear_biased": decaying(0.95)}})
    row = claims.result("C8", "plain vs residual", thresholds,
                        lambda: claims.c8_per_seed(plain, residual))
    assert row.status == status and row.n == 3


# --- the whole table -----------------------------------------------------------------------------
def test_missing_inputs_are_listed_as_not_evaluated_with_a_reason(thresholds):
    """An experiment with standard training only and no ablation: C3-C7 and C8 stay in the
    table, each with the reason it could not be evaluated."""
    data = ExperimentData(name="std_only", accuracy=accuracy({"standard": STANDARD}),
                          similarity=similarity({"standard": {"cos": decaying(),
                                                              "cka_linear_biased": decaying()}}),
                          agreement=agreement([0.9, 0.9, 0.9]))
    rows = claims.evaluate([data], thresholds, None, claims.paper_statistics(paper_values()))
    assert [r.claim for r in rows] == list(claims.CLAIMS)
    status = {r.claim: r for r in rows}
    assert status["C1"].status == status["C2"].status == HOLDS
    for claim in ("C3", "C4", "C5", "C6", "C7", "C8"):
        assert status[claim].status == NOT_EVALUATED and status[claim].reason
    assert "aligned" in status["C3"].reason
    assert "early-exit" in status["C6"].reason
    assert "residual_ablation" in status["C8"].reason
    table = claims.format_claims(rows)
    assert len(table) == len(claims.CLAIMS)
    assert table["verdict"].str.startswith(NOT_EVALUATED).sum() == len(claims.CLAIMS) - 2
    json.dumps([r.to_dict() for r in rows], allow_nan=False)


def test_a_study_without_transformers_still_lists_every_claim(thresholds):
    rows = claims.evaluate([], thresholds, None)
    assert [r.claim for r in rows] == list(claims.CLAIMS)
    assert {r.status for r in rows} == {NOT_EVALUATED}


def test_paper_statistics_pass_the_default_thresholds(thresholds):
    """The paper's own numbers satisfy every threshold it has a number for."""
    paper = claims.paper_statistics(paper_values(), thresholds["early_fraction"])
    assert paper["C1"] is None
    for claim, value in paper.items():
        if value is None:
            continue
        record = claims.CLAIMS[claim]
        assert claims.decide({0: value}, record.comparison,
                             thresholds[record.threshold_key]).status == HOLDS, claim


# --- verdicts over seeds ---------------------------------------------------------------------
@pytest.mark.parametrize("values, status, passing, clear", [
    ([0.95, 0.9, 0.92], HOLDS, 3, True),       # every seed and the mean, far above 0.8
    ([0.95, 0.9, 0.7], claims.MIXED, 2, False),  # the mean passes, one seed does not
    ([0.85, 0.7, 0.6], claims.MIXED, 1, False),  # the mean fails, one seed passes
    ([0.3, 0.5, 0.1], FAILS, 0, True),
    ([0.81, 0.82, 0.83], HOLDS, 3, True),
    ([0.81, 0.9, 0.83], HOLDS, 3, False),      # every seed passes, by less than the spread
])
def test_a_verdict_counts_the_seeds_and_weighs_the_mean_against_its_spread(values, status,
                                                                            passing, clear):
    verdict = claims.decide(dict(enumerate(values)), ">=", 0.8)
    assert (verdict.status, verdict.passing, verdict.clear) == (status, passing, clear)


def test_the_verdict_text_gives_the_seed_count(thresholds):
    row = claims.result("C1", "x", thresholds, lambda: {0: 0.95, 1: 0.9, 2: 0.7})
    assert (claims.verdict_text(row)
            == "mixed: holds on 2/3 seeds; mean within 1 sd of the threshold")
    row = claims.result("C1", "x", thresholds, lambda: {0: 0.95, 1: 0.93, 2: 0.94})
    assert claims.verdict_text(row) == "holds on 3/3 seeds"
    single = claims.result("C1", "x", thresholds, lambda: {0: 0.95})
    assert claims.verdict_text(single) == "holds on 1/1 seeds"
    failed = claims.result("C1", "x", thresholds, lambda: {0: 0.5, 1: 0.4, 2: 0.45})
    assert claims.verdict_text(failed) == "fails: holds on 0/3 seeds"


def test_a_two_sided_claim_fails_on_either_side():
    assert claims.decide({0: 0.01, 1: -0.015}, "|≤|", 0.02).status == HOLDS
    assert claims.decide({0: -0.05, 1: -0.04}, "|≤|", 0.02).status == FAILS
    assert claims.decide({0: 0.05, 1: 0.04}, "|≤|", 0.02).status == FAILS


# --- C9-C11: the rejected cosine loss and the uniform-weights ablation --------------------------
def test_c9_aligned_lifts_intermediate_layers_more_than_the_cosine_loss(thresholds):
    acc = accuracy({"aligned": [0.6, 0.75, 0.85, 0.9, 0.93, 0.94],
                    "cos_regularized": [0.1, 0.12, 0.2, 0.4, 0.8, 0.95]})
    row = claims.result("C9", "x", thresholds, lambda: claims.c9_per_seed(acc))
    assert row.status == HOLDS
    assert row.mean == pytest.approx(np.mean([0.5, 0.63, 0.65, 0.5, 0.13]))
    missing = claims.result("C9", "x", thresholds,
                            lambda: claims.c9_per_seed(accuracy({"aligned": [0.5, 0.9]})))
    assert missing.status == NOT_EVALUATED and "cos_regularized" in missing.reason


def test_c10_c11_uniform_weights_trade_the_last_layer_for_shallow_ones(thresholds):
    acc = accuracy({"aligned": [0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
                    "aligned_uniform": [0.6, 0.7, 0.75, 0.8, 0.88, 0.93]})
    shallow = claims.result("C10", "x", thresholds, lambda: claims.c10_per_seed(acc))
    final = claims.result("C11", "x", thresholds, lambda: claims.c11_per_seed(acc))
    assert shallow.mean == pytest.approx((0.1 + 0.1 + 0.05) / 3)   # layers 1..3 of 6
    assert final.mean == pytest.approx(0.02)
    assert shallow.status == final.status == HOLDS
    flat = accuracy({"aligned": [0.5, 0.6, 0.95], "aligned_uniform": [0.4, 0.6, 0.97]})
    assert claims.result("C11", "x", thresholds,
                         lambda: claims.c11_per_seed(flat)).status == FAILS
