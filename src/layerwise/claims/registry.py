"""The paper's claims (docs/method.md §8), one record each: adding a claim is adding its record to
CLAIMS (and its per-seed statistic here), which the evaluation, the paper values and the table
all iterate.

Each claim's statistic is computed per seed, pairing runs of the same seed where a claim
compares two methods or two experiments; all statistics are on fractions in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from layerwise.claims.inputs import (CKA, ExperimentData, NotEvaluated, accuracy_curves, needs,
                                     paired, reference_method, require_methods, similarity_matrices)
from layerwise.claims.statistics import (cka_cos_gap, closeness_fraction,
                                         early_fraction, early_layer, intermediate_gain,
                                         largest_drop)

#: A claim is evaluated once per transformer experiment, or once on the residual-ablation pair.
EXPERIMENT, ABLATION = "experiment", "ablation"
SCOPES = (EXPERIMENT, ABLATION)
#: How a statistic must pass its threshold: at least, at most, or at most in absolute value (a
#: two-sided "on par").
COMPARISONS = (">=", "<=", "|≤|")

PerSeed = dict[int, float]


@dataclass(frozen=True)
class Claim:
    """Everything the claims table needs of one claim.

    statistic: the statistic in words, a template with {metric}, {policy} and {early}.
    comparison, threshold_key: a seed passes when its value is `comparison` the threshold at
        `claims.<threshold_key>` of the config (">=", "<=", or "|≤|": at most in absolute
        value); the verdict counts the seeds that pass and asks the same of the mean.
    compute: (subject, thresholds) -> {seed: value}, or ({seed: value}, detail); the subject is
        the ExperimentData of an "experiment" claim, the (without, with) pair of an "ablation"
        claim. Raises NotEvaluated with the reason where the study lacks an input.
    paper: (reference values, early_fraction) -> the same statistic on the paper's digitized
        numbers, or None where the paper gives none; a KeyError, TypeError, IndexError or
        ValueError (a missing or malformed reference value) also counts as none.
    """

    id: str
    statement: str
    statistic: str
    comparison: str
    threshold_key: str
    scope: str
    compute: Callable[[Any, dict], PerSeed | tuple[PerSeed, str]]
    paper: Callable[[dict, float], float | None]

    def __post_init__(self):
        if self.comparison not in COMPARISONS:
            raise ValueError(f"{self.id}: comparison {self.comparison!r} is not one of "
                             f"{COMPARISONS}")
        if self.scope not in SCOPES:
            raise ValueError(f"{self.id}: scope {self.scope!r} is not one of {SCOPES}")


# --- the per-seed statistics, on an experiment's tidy tables ---------------------------------
def c1_per_seed(agreement: pd.DataFrame, method: str) -> PerSeed:
    """Spearman rank correlation between centered COS and linear CKA (biased, the paper's) over
    the off-diagonal layer pairs (the agreement.csv of analyze_run)."""
    require_methods(agreement, [method], "agreement.csv")
    rows = agreement[(agreement["method"] == method) & (agreement["measure"] == CKA)
                     & (agreement["scope"] == "pairs")]
    if rows.empty:
        raise NotEvaluated("no COS-vs-linear-CKA agreement (analysis.cka_estimators must "
                           "include linear_biased)")
    return {int(r.seed): float(r.spearman) for r in rows.itertuples()}


def c2_per_seed(sim: pd.DataFrame, method: str) -> PerSeed:
    """Of all steps one layer towards the diagonal in the COS matrix, the fraction along which
    COS does not fall."""
    return {seed: closeness_fraction(m) for seed, m in
            similarity_matrices(sim, method, "cos").items()}


def _paired_curves(acc: pd.DataFrame, metric: str, first: str, second: str
                   ) -> tuple[dict, dict, list[int]]:
    """{seed: curve} of two methods and the seeds both have."""
    require_methods(acc, [second, first], "layer_accuracy.csv")
    a, b = (accuracy_curves(acc, m, metric) for m in (first, second))
    return a, b, paired(a, b, f"{first} and {second} runs")


def _aligned_and_standard(acc: pd.DataFrame, metric: str) -> tuple[dict, dict, list[int]]:
    return _paired_curves(acc, metric, "aligned", "standard")


def c3_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Mean over the intermediate layers 1..L-1 of aligned minus standard test metric."""
    aligned, standard, seeds = _aligned_and_standard(acc, metric)
    return {s: intermediate_gain(aligned[s], standard[s]) for s in seeds}


def c4_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Largest drop of aligned test metric below the best earlier layer (0 when monotone)."""
    return {s: largest_drop(c) for s, c in accuracy_curves(acc, "aligned", metric).items()}


def c5_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Standard minus aligned test metric at the last layer."""
    aligned, standard, seeds = _aligned_and_standard(acc, metric)
    return {s: float(standard[s][-1] - aligned[s][-1]) for s in seeds}


#: How two operating points are matched: by the paper's speed-up L / E[k] (Fig 7), or by
#: compute, the expected FLOPs over full depth's with every exit evaluated on the way counted
#: (its head, a lens' translator). The sweep's column of each.
MATCHINGS = {"speedup": "speed-up L / E[k]", "flops_ratio": "FLOPs"}


def matched_threshold(val_sweep: pd.DataFrame, target: float, by: str = "speedup") -> float:
    """The threshold of a validation sweep whose `by` column (a MATCHINGS key) is closest to
    `target` (ties: the more accurate on validation, then the first in sweep order)."""
    gap = (val_sweep[by] - target).abs()
    ranked = val_sweep.assign(gap=gap).sort_values(["gap", "accuracy"], ascending=[True, False],
                                                   kind="stable")
    return float(ranked["threshold"].iloc[0])


def matched_exit_gap(sweep: pd.DataFrame, points: pd.DataFrame, policy: str,
                     other: str = "multi_exit", by: str = "speedup") -> tuple[PerSeed, str]:
    """Per seed: the `other` method's test accuracy at its operating point minus the aligned
    model's test accuracy at the aligned threshold whose validation `by` (speed-up or FLOPs
    ratio, MATCHINGS) is closest to the other's operating point's on validation. Both
    thresholds are chosen on validation; test is only read. Signed, so that "on par" can be
    judged both ways; and a line describing the operating points."""
    require_methods(points, ["aligned", other], "exit_operating_points.csv")
    if policy not in set(points["policy"]):
        raise NotEvaluated(f"exit policy {policy} is not among exits.policies "
                           f"({', '.join(sorted(set(points['policy'])))})")
    if by not in sweep:
        raise NotEvaluated(f"the exit sweep has no {by} column (exit_sweep.csv)")
    sweep = sweep[sweep["policy"] == policy]
    val = sweep[sweep["split"] == "val"]
    others = {int(s): g for s, g in val[val["method"] == other].groupby("seed")}
    aligned = {int(s): g for s, g in sweep[sweep["method"] == "aligned"].groupby("seed")}
    operating = {int(r.seed): r for r in points[(points["method"] == other)
                                                & (points["policy"] == policy)].itertuples()}
    values, matched, targets = {}, [], []
    for seed in paired(operating, aligned, f"the aligned sweep and the {other} points"):
        point, curve = operating[seed], aligned[seed]
        chosen = needs(others.get(seed), f"no {other} sweep of seed {seed}")
        target = float(chosen.loc[chosen["selected"].astype(bool), by].iloc[0])
        threshold = matched_threshold(curve[curve["split"] == "val"], target, by)
        test = curve[(curve["split"] == "test") & (curve["threshold"] == threshold)].iloc[0]
        values[seed] = float(point.accuracy) - float(test["accuracy"])
        matched.append((float(test["accuracy"]), float(test[by])))
        targets.append(float(getattr(point, by)))
    unit = "x" if by == "speedup" else " of full-depth FLOPs"
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    detail = (f"matched by {MATCHINGS[by]}: {other} operating point "
              f"{mean([float(p.accuracy) for p in operating.values()]):.3f} at "
              f"{mean(targets):.2f}{unit}; aligned at the validation-matched threshold "
              f"{mean([a for a, _ in matched]):.3f} at {mean([v for _, v in matched]):.2f}{unit} "
              f"(test)")
    return values, detail


def c7_per_seed(saturation: pd.DataFrame, num_layers: int, fraction: float) -> PerSeed:
    """Aligned minus standard fraction of test samples that saturate early (saturation layer at
    or below early_fraction * L)."""
    require_methods(saturation, ["standard", "aligned"], "saturation.csv")
    rows = saturation[saturation["split"] == "test"] if "split" in saturation else saturation
    early = {m: {int(s): early_fraction(g["saturation_layer"], num_layers, fraction)
                 for s, g in rows[rows["method"] == m].groupby("seed")}
             for m in ("aligned", "standard")}
    return {s: early["aligned"][s] - early["standard"][s]
            for s in paired(early["aligned"], early["standard"], "aligned and standard runs")}


def c9_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Mean over the intermediate layers 1..L-1 of aligned minus cosine-regularized test metric:
    how much more the shared classifier's training lifts them than pulling representations
    towards the last layer does."""
    aligned, regularized, seeds = _paired_curves(acc, metric, "aligned", "cos_regularized")
    return {s: intermediate_gain(aligned[s], regularized[s]) for s in seeds}


def c12_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Mean over the intermediate layers 1..L-1 of aligned minus tuned-lens test metric: what
    training the model for its shared head adds to reading a standard model's layers through a
    lens fitted after training."""
    aligned, lens, seeds = _paired_curves(acc, metric, "aligned", "tuned_lens")
    return {s: intermediate_gain(aligned[s], lens[s]) for s in seeds}


def c14_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Mean over the intermediate layers 1..L-1 of the tuned lens on the aligned model minus
    the tuned lens on the standard model, test metric: what aligned training adds to what a
    lens fitted after training reads."""
    on_aligned, on_standard, seeds = _paired_curves(acc, metric, "aligned_lens", "tuned_lens")
    return {s: intermediate_gain(on_aligned[s], on_standard[s]) for s in seeds}


def c10_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Mean over the first half of the layers (1..floor(L/2)) of uniform minus linear weights'
    test metric."""
    uniform, linear, seeds = _paired_curves(acc, metric, "aligned_uniform", "aligned")
    return {s: float((uniform[s] - linear[s])[:max(1, len(linear[s]) // 2)].mean())
            for s in seeds}


def c11_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> PerSeed:
    """Linear minus uniform weights' test metric at the last layer."""
    uniform, linear, seeds = _paired_curves(acc, metric, "aligned_uniform", "aligned")
    return {s: float(linear[s][-1] - uniform[s][-1]) for s in seeds}


def _gaps_to_last(sim: pd.DataFrame) -> PerSeed:
    method = reference_method(sim)
    cos, cka = similarity_matrices(sim, method, "cos"), similarity_matrices(sim, method, CKA)
    return {s: cka_cos_gap(cka[s][:, -1], cos[s][:, -1])
            for s in paired(cos, cka, "COS and CKA")}


def c8_per_seed(sim_without: pd.DataFrame, sim_with: pd.DataFrame) -> PerSeed:
    """Mean over layers 1..L-1 of CKA(l, L) - COS(l, L), without residual connections minus
    with them: how much more CKA than COS says an intermediate layer resembles the last."""
    without, with_ = _gaps_to_last(sim_without), _gaps_to_last(sim_with)
    return {s: without[s] - with_[s]
            for s in paired(without, with_, "the experiments without and with residuals")}


def _c8_on_pair(pair: tuple[ExperimentData, ExperimentData], thresholds: dict) -> PerSeed:
    without, with_ = pair
    return c8_per_seed(needs(without.similarity, f"no similarity of {without.name}"),
                       needs(with_.similarity, f"no similarity of {with_.name}"))


# --- the same statistics on the paper's digitized numbers ------------------------------------
def _no_paper_value(values: dict, early_fraction_: float) -> None:
    """C1: the paper shows COS and CKA agreeing only by eye; C6-FLOPs: the paper matches by
    speed-up alone; C10, C11: Fig 15 is not digitized; C12-C14: the paper has no tuned lens."""
    return None


def _fig4_test_acc(values: dict) -> dict:
    """Fig 4: DeiT-S on ImageNet, the paper's layer-wise accuracy for C3-C5."""
    return values["fig4_deit_s_imagenet"]["test_acc"]


def _paper_exit_gap(values: dict, early_fraction_: float) -> float:
    """Fig 7 gives one operating point each, at different speed-ups (1.42x vs 1.36x)."""
    points = {p["method"]: p for p in values["fig7_imagenet_early_exit"]}
    return (points["multi_exit_classifiers"]["top1"] - points["aligned"]["top1"]) / 100


def _paper_early_saturation_gain(values: dict, early_fraction_: float) -> float:
    """Fig 1c counts saturated samples of 10000 cumulatively by layer."""
    counts = values["fig1_deit_s_pretrained_finetuned_cifar10"]["cumulative_saturation_of_10000"]
    layer = early_layer(len(counts["aligned"]), early_fraction_)
    return (counts["aligned"][layer - 1] - counts["standard"][layer - 1]) / 10000


def _paper_cos_regularized_gap(values: dict, early_fraction_: float) -> float:
    """Fig 4's aligned curve against Fig 14's cosine-regularized one (both DeiT-S, ImageNet)."""
    return intermediate_gain(_fig4_test_acc(values)["aligned"],
                             values["fig14_deit_s_imagenet_cos_regularization"]["test_acc"]
                             ["cos_regularized"])


def _paper_cka_cos_gap_difference(values: dict, early_fraction_: float) -> float:
    """Fig 12: the 9-layer MLP's curves against the last layer, without and with residuals."""
    fig12 = values["fig12_mlp9_mnist"]
    return (cka_cos_gap(fig12["no_residual"]["cka"], fig12["no_residual"]["cos"])
            - cka_cos_gap(fig12["residual"]["cka"], fig12["residual"]["cos"]))


# --- the registry ----------------------------------------------------------------------------
CLAIMS: dict[str, Claim] = {claim.id: claim for claim in (
    Claim(
        "C1", "COS agrees with CKA across layer pairs",
        "Spearman ρ of COS vs linear CKA over layer pairs (standard)",
        ">=", "min_cos_cka_spearman", EXPERIMENT,
        compute=lambda data, _: c1_per_seed(
            data.table("agreement"), reference_method(data.table("agreement"))),
        paper=_no_paper_value),
    Claim(
        "C2", "similarity rises as layers get closer",
        "fraction of steps towards the diagonal where COS does not fall (standard)",
        ">=", "min_closeness_fraction", EXPERIMENT,
        compute=lambda data, _: c2_per_seed(
            data.table("similarity"), reference_method(data.table("similarity"))),
        paper=lambda values, _: closeness_fraction(
            values["fig2_deit_s_scratch_standard"]["cifar10_pairwise_cos"])),
    Claim(
        "C3", "aligned training raises intermediate-layer accuracy far above standard training",
        "mean over layers 1..L-1 of aligned − standard test {metric}",
        ">=", "min_intermediate_gain", EXPERIMENT,
        compute=lambda data, _: c3_per_seed(data.table("accuracy"), data.metric),
        paper=lambda values, _: intermediate_gain(
            _fig4_test_acc(values)["aligned"], _fig4_test_acc(values)["standard"])),
    Claim(
        "C4", "aligned layer-wise accuracy rises (nearly) monotonically with depth",
        "largest drop of aligned test {metric} below an earlier layer",
        "<=", "max_layerwise_drop", EXPERIMENT,
        compute=lambda data, _: c4_per_seed(data.table("accuracy"), data.metric),
        paper=lambda values, _: largest_drop(_fig4_test_acc(values)["aligned"])),
    Claim(
        "C5", "aligned final-layer accuracy stays close to standard",
        "standard − aligned test {metric} at layer L",
        "<=", "max_final_gap", EXPERIMENT,
        compute=lambda data, _: c5_per_seed(data.table("accuracy"), data.metric),
        paper=lambda values, _: float(
            _fig4_test_acc(values)["standard"][-1] - _fig4_test_acc(values)["aligned"][-1])),
    Claim(
        "C6", "the single-classifier multi-exit model is on par with the multi-classifier "
              "baseline at matched speed-up",
        "multi-exit − aligned test accuracy, the aligned threshold matching the multi-exit "
        "operating point's speed-up on validation ({policy} exit)",
        "|≤|", "max_exit_gap", EXPERIMENT,
        compute=lambda data, thresholds: matched_exit_gap(
            data.table("sweep"), data.table("points"), thresholds["exit_policy"]),
        paper=_paper_exit_gap),
    Claim(
        "C6-FLOPs", "the same at matched compute (ours; the paper matches by speed-up)",
        "multi-exit − aligned test accuracy, the aligned threshold matching the multi-exit "
        "operating point's FLOPs on validation, every exit evaluated counted ({policy} exit)",
        "|≤|", "max_exit_gap", EXPERIMENT,
        compute=lambda data, thresholds: matched_exit_gap(
            data.table("sweep"), data.table("points"), thresholds["exit_policy"],
            by="flops_ratio"),
        paper=_no_paper_value),
    Claim(
        "C7", "aligned training gives more early saturation events",
        "aligned − standard fraction of test samples saturated by layer {early}",
        ">=", "min_early_saturation_gain", EXPERIMENT,
        compute=lambda data, thresholds: c7_per_seed(
            data.table("saturation"), data.num_layers or 0, thresholds["early_fraction"]),
        paper=_paper_early_saturation_gain),
    Claim(
        "C8", "without residual connections CKA overstates similarity; COS does not",
        "mean CKA(l,L) − COS(l,L) over l < L, without minus with residual connections",
        ">=", "min_cka_cos_gap_difference", ABLATION,
        compute=_c8_on_pair,
        paper=_paper_cka_cos_gap_difference),
    Claim(
        "C9", "cosine regularization lifts intermediate layers much less than aligned training",
        "mean over layers 1..L-1 of aligned − cos-regularized test {metric}",
        ">=", "min_aligned_over_cos_regularized", EXPERIMENT,
        compute=lambda data, _: c9_per_seed(data.table("accuracy"), data.metric),
        paper=_paper_cos_regularized_gap),
    Claim(
        "C10", "uniform loss weights give better shallow layers than linear weights",
        "mean over layers 1..L/2 of uniform − linear weights' test {metric} (aligned)",
        ">=", "min_uniform_shallow_gain", EXPERIMENT,
        compute=lambda data, _: c10_per_seed(data.table("accuracy"), data.metric),
        paper=_no_paper_value),
    Claim(
        "C11", "uniform loss weights give a worse last layer than linear weights",
        "linear − uniform weights' test {metric} at layer L (aligned)",
        ">=", "min_uniform_final_cost", EXPERIMENT,
        compute=lambda data, _: c11_per_seed(data.table("accuracy"), data.metric),
        paper=_no_paper_value),
    # Beyond the paper: the post-hoc baseline it does not compare with (the tuned lens).
    Claim(
        "C12", "aligned training lifts intermediate layers above a tuned lens on the standard "
               "model",
        "mean over layers 1..L-1 of aligned − tuned-lens test {metric}",
        ">=", "min_aligned_over_tuned_lens", EXPERIMENT,
        compute=lambda data, _: c12_per_seed(data.table("accuracy"), data.metric),
        paper=_no_paper_value),
    Claim(
        "C13", "the aligned model exits as well as a tuned lens on the standard model at "
               "matched compute",
        "tuned-lens − aligned test accuracy, the aligned threshold matching the tuned lens' "
        "operating point's FLOPs on validation, every exit evaluated counted ({policy} exit)",
        "<=", "max_lens_exit_advantage", EXPERIMENT,
        compute=lambda data, thresholds: matched_exit_gap(
            data.table("sweep"), data.table("points"), thresholds["exit_policy"],
            "tuned_lens", by="flops_ratio"),
        paper=_no_paper_value),
    Claim(
        "C14", "a tuned lens reads the aligned model's intermediate layers better than the "
               "standard model's",
        "mean over layers 1..L-1 of lens-on-aligned − lens-on-standard test {metric}",
        ">=", "min_lens_on_aligned_gain", EXPERIMENT,
        compute=lambda data, _: c14_per_seed(data.table("accuracy"), data.metric),
        paper=_no_paper_value),
)}
