"""The paper's claims (BRIEF section 8, C1-C8), checked on a run's own results.

Every claim is reduced to one statistic, computed once per seed (pairing runs of the same seed
where a claim compares two methods or two experiments), summarised as mean ± sd over seeds and
compared with a threshold from the config (`claims` in the schema, where each threshold says why
it has its value). A claim holds when the mean over seeds passes its threshold. The same
statistic is computed on the paper's digitized numbers (layerwise.reference) where the paper
gives what it needs, so each row can be read against the paper.

A claim whose inputs the study does not produce (a method, an exit policy, a CKA estimator or
the residual ablation the config leaves out) is reported as "not evaluated" with the reason;
no claim is ever dropped from the table.

The statistics (all on fractions in [0, 1]):

C1  Spearman rank correlation between centered COS and linear CKA (biased, the paper's) over
    the off-diagonal layer pairs, standard training (the agreement.csv of analyze_run).
C2  Of all steps one layer towards the diagonal in the COS matrix (row l, from l' to l' ± 1
    towards l), the fraction along which COS does not fall, standard training.
C3  Mean over the intermediate layers 1..L-1 of aligned minus standard test accuracy.
C4  Largest drop of aligned test accuracy below the best earlier layer (0 for a monotone curve).
C5  Standard minus aligned test accuracy at the last layer.
C6  Multi-exit accuracy at its operating point minus single-classifier (aligned) accuracy at the
    same speed-up, read off the aligned model's test sweep of the same exit policy.
C7  Aligned minus standard fraction of test samples that saturate early (saturation layer at or
    below early_fraction * L).
C8  Mean over layers 1..L-1 of CKA(l, L) - COS(l, L), without residual connections minus with
    them: how much more CKA than COS says an intermediate layer resembles the last.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

HOLDS, FAILS, NOT_EVALUATED = "holds", "fails", "not evaluated"

#: The claims as BRIEF section 8 states them.
STATEMENTS = {
    "C1": "COS agrees with CKA across layer pairs",
    "C2": "similarity rises as layers get closer",
    "C3": "aligned training raises intermediate-layer accuracy far above standard training",
    "C4": "aligned layer-wise accuracy rises (nearly) monotonically with depth",
    "C5": "aligned final-layer accuracy stays close to standard",
    "C6": "the single-classifier multi-exit model is on par with the multi-classifier baseline "
          "at matched speed-up",
    "C7": "aligned training gives more early saturation events",
    "C8": "without residual connections CKA overstates similarity; COS does not",
}

#: What each claim's statistic is, in words (the `statistic` column of the table).
STATISTICS = {
    "C1": "Spearman ρ of COS vs linear CKA over layer pairs (standard)",
    "C2": "fraction of steps towards the diagonal where COS does not fall (standard)",
    "C3": "mean over layers 1..L-1 of aligned − standard test {metric}",
    "C4": "largest drop of aligned test {metric} below an earlier layer",
    "C5": "standard − aligned test {metric} at layer L",
    "C6": "multi-exit − aligned test accuracy at the multi-exit operating point's speed-up "
          "({policy} exit)",
    "C7": "aligned − standard fraction of test samples saturated by layer {early}",
    "C8": "mean CKA(l,L) − COS(l,L) over l < L, without minus with residual connections",
}

#: Which way each statistic must pass its threshold, and the config key of the threshold.
RULES = {
    "C1": (">=", "min_cos_cka_spearman"),
    "C2": (">=", "min_closeness_fraction"),
    "C3": (">=", "min_intermediate_gain"),
    "C4": ("<=", "max_layerwise_drop"),
    "C5": ("<=", "max_final_gap"),
    "C6": ("<=", "max_exit_gap"),
    "C7": (">=", "min_early_saturation_gain"),
    "C8": (">=", "min_cka_cos_gap_difference"),
}

CLAIMS = tuple(STATEMENTS)
CKA = "cka_linear_biased"  # the paper's estimator


@dataclass
class ClaimResult:
    """One row of the claims table."""

    claim: str
    experiment: str
    statistic: str
    comparison: str
    threshold: float
    status: str
    per_seed: dict[str, float] = field(default_factory=dict)
    mean: float | None = None
    sd: float | None = None
    n: int = 0
    paper: float | None = None
    reason: str = ""
    detail: str = ""

    @property
    def statement(self) -> str:
        return STATEMENTS[self.claim]

    def to_dict(self) -> dict:
        """JSON-ready: undefined per-seed values (NaN) become null."""
        row = {"claim": self.claim, "statement": self.statement, **asdict(self)}
        row["per_seed"] = {seed: value if math.isfinite(value) else None
                           for seed, value in self.per_seed.items()}
        return row


class NotEvaluated(Exception):
    """A claim's inputs are not produced by the study; the message says what is missing."""


# --- the statistics, on plain arrays and frames ---------------------------------------------
def closeness_fraction(matrix) -> float:
    """C2: of all steps one layer towards the diagonal (row l, from column l' to l' ± 1 towards
    l), the fraction along which the similarity does not fall. 1.0 when every row peaks on the
    diagonal and falls off monotonically on both sides."""
    matrix = np.asarray(matrix, dtype=float)
    size = matrix.shape[0]
    if matrix.shape != (size, size) or size < 2:
        raise ValueError(f"expected a square matrix of at least 2 layers, got {matrix.shape}")
    rises = []
    for row in range(size):
        for col in range(size):
            if col == row:
                continue
            closer = col + 1 if col < row else col - 1
            rises.append(matrix[row, closer] >= matrix[row, col] - 1e-12)
    return float(np.mean(rises))


def largest_drop(curve) -> float:
    """C4: the largest amount by which a layer falls below the best earlier layer (>= 0)."""
    curve = np.asarray(curve, dtype=float)
    if curve.size == 0:
        raise ValueError("empty curve")
    return float(np.max(np.maximum.accumulate(curve) - curve))


def intermediate_gain(better, worse) -> float:
    """C3: mean over layers 1..L-1 of better - worse (curves over layers 1..L)."""
    better, worse = np.asarray(better, dtype=float), np.asarray(worse, dtype=float)
    if better.shape != worse.shape or better.size < 2:
        raise ValueError(f"curves of different or too few layers: {better.shape}, {worse.shape}")
    return float(np.mean(better[:-1] - worse[:-1]))


def accuracy_at_speedup(speedup, accuracy, at: float) -> float:
    """C6: accuracy of a threshold sweep at speed-up `at`, interpolated linearly on the upper
    envelope of the sweep (the best accuracy reached at each speed-up), clamped at its ends."""
    frame = pd.DataFrame({"speedup": np.asarray(speedup, float),
                          "accuracy": np.asarray(accuracy, float)}).dropna()
    if frame.empty:
        raise ValueError("empty sweep")
    best = frame.groupby("speedup")["accuracy"].max().sort_index()
    return float(np.interp(at, best.index.to_numpy(), best.to_numpy()))


def early_fraction(saturation_layers, num_layers: int, fraction: float) -> float:
    """C7: fraction of samples whose saturation layer is at most max(1, floor(fraction * L))."""
    layers = np.asarray(saturation_layers)
    if layers.size == 0:
        raise ValueError("no saturation layers")
    return float(np.mean(layers <= early_layer(num_layers, fraction)))


def early_layer(num_layers: int, fraction: float) -> int:
    """The last layer that counts as early for C7."""
    return max(1, int(math.floor(fraction * num_layers + 1e-9)))


def cka_cos_gap(cka_to_last, cos_to_last) -> float:
    """C8 (one model): mean over layers 1..L-1 of CKA(l, L) - COS(l, L), from curves over
    layers 1..L against the last layer."""
    cka, cos = np.asarray(cka_to_last, float), np.asarray(cos_to_last, float)
    if cka.shape != cos.shape or cka.size < 2:
        raise ValueError(f"curves of different or too few layers: {cka.shape}, {cos.shape}")
    return float(np.mean(cka[:-1] - cos[:-1]))


# --- reading the tidy tables of one experiment ---------------------------------------------
def _require_methods(frame: pd.DataFrame, methods, what: str) -> None:
    present = set(frame["method"]) if "method" in frame else set()
    missing = [m for m in methods if m not in present]
    if missing:
        raise NotEvaluated(f"needs method{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)} in the experiment ({what} has "
                           f"{', '.join(sorted(present)) or 'none'})")


def accuracy_curves(acc: pd.DataFrame, method: str, metric: str = "accuracy",
                    split: str = "test") -> dict[int, np.ndarray]:
    """{seed: metric at layers 1..L} of one method."""
    _require_methods(acc, [method], "layer_accuracy.csv")
    rows = acc[(acc["method"] == method) & (acc["split"] == split) & (acc["layer"] >= 1)]
    if rows.empty:
        raise NotEvaluated(f"no {split} rows of method {method} in layer_accuracy.csv")
    return {int(seed): group.sort_values("layer")[metric].to_numpy(dtype=float)
            for seed, group in rows.groupby("seed")}


def similarity_matrices(sim: pd.DataFrame, method: str, measure: str) -> dict[int, np.ndarray]:
    """{seed: (L x L) matrix of layers 1..L} of one method and measure."""
    _require_methods(sim, [method], "similarity.csv")
    rows = sim[(sim["method"] == method) & (sim["measure"] == measure)
               & (sim["layer_a"] >= 1) & (sim["layer_b"] >= 1)]
    if rows.empty:
        raise NotEvaluated(f"no {measure} similarity of method {method} (analysis.cka_estimators "
                           "must include linear_biased)" if measure == CKA else
                           f"no {measure} similarity of method {method}")
    return {int(seed): group.pivot_table(index="layer_a", columns="layer_b", values="value",
                                         aggfunc="mean").sort_index().sort_index(axis=1)
            .to_numpy(dtype=float) for seed, group in rows.groupby("seed")}


def _paired(a: dict, b: dict, what: str) -> list[int]:
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise NotEvaluated(f"no seed in common between {what}")
    return seeds


def reference_method(frame: pd.DataFrame) -> str:
    """standard if the experiment trains it (the paper's Fig 2), else its first method."""
    methods = list(dict.fromkeys(frame["method"]))
    if not methods:
        raise NotEvaluated("no runs")
    return "standard" if "standard" in methods else methods[0]


# --- one statistic per seed for each claim --------------------------------------------------
def c1_per_seed(agreement: pd.DataFrame, method: str) -> dict[int, float]:
    _require_methods(agreement, [method], "agreement.csv")
    rows = agreement[(agreement["method"] == method) & (agreement["measure"] == CKA)
                     & (agreement["scope"] == "pairs")]
    if rows.empty:
        raise NotEvaluated("no COS-vs-linear-CKA agreement (analysis.cka_estimators must "
                           "include linear_biased)")
    return {int(r.seed): float(r.spearman) for r in rows.itertuples()}


def c2_per_seed(sim: pd.DataFrame, method: str) -> dict[int, float]:
    return {seed: closeness_fraction(m) for seed, m in
            similarity_matrices(sim, method, "cos").items()}


def c3_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> dict[int, float]:
    _require_methods(acc, ["standard", "aligned"], "layer_accuracy.csv")
    aligned, standard = (accuracy_curves(acc, m, metric) for m in ("aligned", "standard"))
    return {s: intermediate_gain(aligned[s], standard[s])
            for s in _paired(aligned, standard, "aligned and standard runs")}


def c4_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> dict[int, float]:
    return {s: largest_drop(c) for s, c in accuracy_curves(acc, "aligned", metric).items()}


def c5_per_seed(acc: pd.DataFrame, metric: str = "accuracy") -> dict[int, float]:
    _require_methods(acc, ["standard", "aligned"], "layer_accuracy.csv")
    aligned, standard = (accuracy_curves(acc, m, metric) for m in ("aligned", "standard"))
    return {s: float(standard[s][-1] - aligned[s][-1])
            for s in _paired(aligned, standard, "aligned and standard runs")}


def c6_per_seed(sweep: pd.DataFrame, points: pd.DataFrame, policy: str
                ) -> tuple[dict[int, float], str]:
    """Per seed: multi-exit accuracy at its operating point minus aligned accuracy at the same
    speed-up; and a line describing the operating points."""
    _require_methods(points, ["aligned", "multi_exit"], "exit_operating_points.csv")
    if policy not in set(points["policy"]):
        raise NotEvaluated(f"exit policy {policy} is not among exits.policies "
                           f"({', '.join(sorted(set(points['policy'])))})")
    multi = points[(points["method"] == "multi_exit") & (points["policy"] == policy)]
    aligned_sweep = sweep[(sweep["method"] == "aligned") & (sweep["policy"] == policy)
                          & (sweep["split"] == "test")]
    curves = {int(s): g for s, g in aligned_sweep.groupby("seed")}
    operating = {int(r.seed): (float(r.speedup), float(r.accuracy)) for r in multi.itertuples()}
    values = {}
    for seed in _paired(operating, curves, "the aligned sweep and the multi-exit points"):
        speedup, accuracy = operating[seed]
        curve = curves[seed]
        values[seed] = accuracy - accuracy_at_speedup(curve["speedup"], curve["accuracy"],
                                                      speedup)
    ops = points[points["policy"] == policy].groupby("method")[["accuracy", "speedup"]].mean()
    detail = "; ".join(f"{m} operating point {ops.loc[m, 'accuracy']:.3f} at "
                       f"{ops.loc[m, 'speedup']:.2f}x" for m in ("aligned", "multi_exit")
                       if m in ops.index)
    return values, detail


def c7_per_seed(saturation: pd.DataFrame, num_layers: int, fraction: float
                ) -> dict[int, float]:
    _require_methods(saturation, ["standard", "aligned"], "saturation.csv")
    rows = saturation[saturation["split"] == "test"] if "split" in saturation else saturation
    early = {m: {int(s): early_fraction(g["saturation_layer"], num_layers, fraction)
                 for s, g in rows[rows["method"] == m].groupby("seed")}
             for m in ("aligned", "standard")}
    return {s: early["aligned"][s] - early["standard"][s]
            for s in _paired(early["aligned"], early["standard"], "aligned and standard runs")}


def _gaps_to_last(sim: pd.DataFrame) -> dict[int, float]:
    method = reference_method(sim)
    cos, cka = similarity_matrices(sim, method, "cos"), similarity_matrices(sim, method, CKA)
    return {s: cka_cos_gap(cka[s][:, -1], cos[s][:, -1])
            for s in _paired(cos, cka, "COS and CKA")}


def c8_per_seed(sim_without: pd.DataFrame, sim_with: pd.DataFrame) -> dict[int, float]:
    without, with_ = _gaps_to_last(sim_without), _gaps_to_last(sim_with)
    return {s: without[s] - with_[s]
            for s in _paired(without, with_, "the experiments without and with residuals")}


# --- the same statistics on the paper's digitized numbers ----------------------------------
def paper_statistics(values: dict, early_fraction_: float = 0.5) -> dict[str, float | None]:
    """Each claim's statistic on the paper's numbers (reference.paper_values()), or None where
    the paper gives no number for it (C1: COS and CKA agree only by eye in the paper)."""
    out: dict[str, float | None] = dict.fromkeys(CLAIMS)
    try:
        out["C2"] = closeness_fraction(values["fig2_deit_s_scratch_standard"]
                                       ["cifar10_pairwise_cos"])
        acc = values["fig4_deit_s_imagenet"]["test_acc"]
        out["C3"] = intermediate_gain(acc["aligned"], acc["standard"])
        out["C4"] = largest_drop(acc["aligned"])
        out["C5"] = float(acc["standard"][-1] - acc["aligned"][-1])
        # Fig 7 gives one operating point each, at different speed-ups (1.42x vs 1.36x).
        points = {p["method"]: p for p in values["fig7_imagenet_early_exit"]}
        out["C6"] = (points["multi_exit_classifiers"]["top1"] - points["aligned"]["top1"]) / 100
        counts = values["fig1_deit_s_pretrained_finetuned_cifar10"][
            "cumulative_saturation_of_10000"]
        layer = early_layer(len(counts["aligned"]), early_fraction_)
        out["C7"] = (counts["aligned"][layer - 1] - counts["standard"][layer - 1]) / 10000
        fig12 = values["fig12_mlp9_mnist"]
        out["C8"] = (cka_cos_gap(fig12["no_residual"]["cka"], fig12["no_residual"]["cos"])
                     - cka_cos_gap(fig12["residual"]["cka"], fig12["residual"]["cos"]))
    except (KeyError, TypeError, IndexError, ValueError):
        pass  # a value the reference file lacks stays None
    return out


# --- evaluating every claim ----------------------------------------------------------------
def decide(per_seed: dict[int, float], comparison: str, threshold: float
           ) -> tuple[str, float | None, float | None, str]:
    """(status, mean, sd, reason) of per-seed values against a threshold; the mean decides."""
    values = np.array(list(per_seed.values()), dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        return NOT_EVALUATED, None, None, "the statistic is undefined (no finite value)"
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else None
    ok = mean >= threshold if comparison == ">=" else mean <= threshold
    return (HOLDS if ok else FAILS), mean, sd, ""


def _statistic_text(claim: str, metric: str, thresholds: dict, num_layers: int | None) -> str:
    early = (early_layer(num_layers, thresholds["early_fraction"]) if num_layers
             else f"{thresholds['early_fraction']:g}·L")
    return STATISTICS[claim].format(metric=metric, policy=thresholds["exit_policy"], early=early)


def result(claim: str, experiment: str, thresholds: dict, compute, metric: str = "accuracy",
           num_layers: int | None = None, paper: float | None = None) -> ClaimResult:
    """Run `compute()` -> per-seed values (or (values, detail)); a NotEvaluated becomes a
    'not evaluated' row with its reason."""
    comparison, key = RULES[claim]
    row = ClaimResult(claim=claim, experiment=experiment, comparison=comparison,
                      threshold=float(thresholds[key]), status=NOT_EVALUATED, paper=paper,
                      statistic=_statistic_text(claim, metric, thresholds, num_layers))
    try:
        out = compute()
    except NotEvaluated as reason:
        row.reason = str(reason)
        return row
    per_seed, row.detail = out if isinstance(out, tuple) else (out, "")
    row.per_seed = {str(s): float(v) for s, v in sorted(per_seed.items())}
    row.n = len(per_seed)
    row.status, row.mean, row.sd, row.reason = decide(per_seed, comparison, row.threshold)
    return row


def not_evaluated(claim: str, experiment: str, thresholds: dict, reason: str,
                  paper: float | None = None, metric: str = "accuracy") -> ClaimResult:
    def missing():
        raise NotEvaluated(reason)

    return result(claim, experiment, thresholds, missing, metric, paper=paper)


@dataclass
class ExperimentData:
    """What the claims read of one experiment; None where the study does not produce it."""

    name: str
    metric: str = "accuracy"
    accuracy: pd.DataFrame | None = None
    similarity: pd.DataFrame | None = None
    agreement: pd.DataFrame | None = None
    saturation: pd.DataFrame | None = None
    sweep: pd.DataFrame | None = None
    points: pd.DataFrame | None = None

    @property
    def num_layers(self) -> int | None:
        if self.accuracy is None or self.accuracy.empty:
            return None
        return int(self.accuracy["layer"].max())


def _needs(frame, reason: str):
    if frame is None:
        raise NotEvaluated(reason)
    return frame


NO_EXITS = "the experiment has no early-exit results (it needs an aligned or multi_exit method)"


def experiment_claims(data: ExperimentData, thresholds: dict, paper: dict) -> list[ClaimResult]:
    """C1-C7 on one transformer experiment."""
    name, metric, layers = data.name, data.metric, data.num_layers

    def run(claim, compute):
        return result(claim, name, thresholds, compute, metric, layers, paper.get(claim))

    def reference(frame):
        return reference_method(_needs(frame, "no runs"))

    return [
        run("C1", lambda: c1_per_seed(_needs(data.agreement, "no agreement.csv"),
                                      reference(data.agreement))),
        run("C2", lambda: c2_per_seed(_needs(data.similarity, "no similarity.csv"),
                                      reference(data.similarity))),
        run("C3", lambda: c3_per_seed(_needs(data.accuracy, "no layer_accuracy.csv"), metric)),
        run("C4", lambda: c4_per_seed(_needs(data.accuracy, "no layer_accuracy.csv"), metric)),
        run("C5", lambda: c5_per_seed(_needs(data.accuracy, "no layer_accuracy.csv"), metric)),
        run("C6", lambda: c6_per_seed(_needs(data.sweep, NO_EXITS), _needs(data.points, NO_EXITS),
                                      thresholds["exit_policy"])),
        run("C7", lambda: c7_per_seed(_needs(data.saturation, NO_EXITS), layers or 0,
                                      thresholds["early_fraction"])),
    ]


def evaluate(experiments: list[ExperimentData], thresholds: dict,
             ablation: tuple[ExperimentData, ExperimentData] | None,
             paper: dict | None = None) -> list[ClaimResult]:
    """Every claim: C1-C7 for each transformer experiment (or one 'not evaluated' row each when
    there is none), then C8 on the residual ablation pair (or 'not evaluated')."""
    paper = paper or {}
    rows = [row for data in experiments for row in experiment_claims(data, thresholds, paper)]
    if not experiments:
        rows = [not_evaluated(c, "–", thresholds, "the config has no transformer experiment",
                              paper.get(c)) for c in CLAIMS[:-1]]
    if ablation is None:
        rows.append(not_evaluated("C8", "–", thresholds, "analysis.residual_ablation is not set "
                                  "(it names the experiments without and with residuals)",
                                  paper.get("C8")))
    else:
        without, with_ = ablation
        rows.append(result(
            "C8", f"{without.name} vs {with_.name}", thresholds,
            lambda: c8_per_seed(_needs(without.similarity, f"no similarity of {without.name}"),
                                _needs(with_.similarity, f"no similarity of {with_.name}")),
            paper=paper.get("C8")))
    order = {c: i for i, c in enumerate(CLAIMS)}
    return sorted(rows, key=lambda r: order[r.claim])  # stable: experiments keep their order


# --- the table --------------------------------------------------------------------------------
def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def ours_text(row: ClaimResult) -> str:
    if row.mean is None:
        return "–"
    sd = f" ± {row.sd:.3f}" if row.sd is not None else ""
    return f"{row.mean:.3f}{sd} (n={row.n})"


def verdict_text(row: ClaimResult) -> str:
    return f"{row.status}: {row.reason}" if row.reason else row.status


def claims_frame(rows: list[ClaimResult]) -> pd.DataFrame:
    """The numeric table (CSV): one row per claim and experiment."""
    return pd.DataFrame([{
        "claim": r.claim, "experiment": r.experiment, "statistic": r.statistic,
        "mean": r.mean, "sd": r.sd, "n": r.n, "comparison": r.comparison,
        "threshold": r.threshold, "paper": r.paper, "status": r.status, "reason": r.reason,
        "detail": r.detail} for r in rows])


def format_claims(rows: list[ClaimResult]) -> pd.DataFrame:
    """The display table (Markdown, LaTeX)."""
    return pd.DataFrame([{
        "claim": f"{r.claim} {r.statement}", "experiment": r.experiment,
        "statistic": r.statistic, "ours (mean ± sd over seeds)": ours_text(r),
        "threshold": f"{r.comparison} {r.threshold:g}", "paper": _number(r.paper),
        "verdict": verdict_text(r)} for r in rows])
