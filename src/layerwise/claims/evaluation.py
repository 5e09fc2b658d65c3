"""Every claim of a registry evaluated on the study's experiments, one row per claim and subject
(an experiment, or the residual-ablation pair), and each claim's statistic on the paper's
numbers. A claim whose inputs are missing becomes a 'not evaluated' row with the reason, so no
claim is ever dropped from the table."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from layerwise.claims.inputs import ExperimentData, NotEvaluated
from layerwise.claims.registry import ABLATION, CLAIMS, EXPERIMENT, Claim
from layerwise.claims.statistics import early_layer

HOLDS, MIXED, FAILS, NOT_EVALUATED = "holds", "mixed", "fails", "not evaluated"

#: Why a claim of each scope has no subject at all.
NO_SUBJECT = {
    EXPERIMENT: "the config has no transformer experiment",
    ABLATION: "analysis.residual_ablation is not set (it names the experiments without and "
              "with residuals)",
}


@dataclass
class ClaimResult:
    """One row of the claims table."""

    claim: str
    statement: str
    experiment: str
    statistic: str
    comparison: str
    threshold: float
    status: str
    per_seed: dict[str, float] = field(default_factory=dict)
    mean: float | None = None
    sd: float | None = None
    n: int = 0
    passing: int = 0               # seeds whose value passes the threshold
    clear: bool | None = None      # whether the mean passes (or fails) by more than one sd
    paper: float | None = None
    reason: str = ""
    detail: str = ""

    def to_dict(self) -> dict:
        """JSON-ready: undefined per-seed values (NaN) become null."""
        row = asdict(self)
        row["per_seed"] = {seed: value if math.isfinite(value) else None
                           for seed, value in self.per_seed.items()}
        return row


def paper_statistics(values: dict, early_fraction: float = 0.5,
                     registry: dict[str, Claim] = CLAIMS) -> dict[str, float | None]:
    """{claim: its statistic on the paper's numbers (reference.paper_values()) or None}, each
    claim on its own, so a missing or malformed reference value blanks only the claims that
    read it."""
    return {claim.id: _paper_value(claim, values, early_fraction)
            for claim in registry.values()}


def _paper_value(claim: Claim, values: dict, early_fraction: float) -> float | None:
    try:
        return claim.paper(values, early_fraction)
    except (KeyError, TypeError, IndexError, ValueError):
        return None


def passes(value, comparison: str, threshold: float):
    """Whether a value (or an array of them) passes a threshold the claim's way."""
    if comparison == ">=":
        return value >= threshold
    if comparison == "<=":
        return value <= threshold
    return np.abs(value) <= threshold


def _margin(mean: float, comparison: str, threshold: float) -> float:
    """How far the mean is on the passing side of the threshold (negative: the failing side)."""
    if comparison == ">=":
        return mean - threshold
    if comparison == "<=":
        return threshold - mean
    return threshold - abs(mean)


@dataclass(frozen=True)
class Verdict:
    status: str            # holds: the mean and every seed pass; fails: none do; else mixed
    mean: float | None
    sd: float | None
    passing: int           # seeds that pass
    clear: bool | None     # the mean is more than one sd from the threshold (None: one seed)
    reason: str = ""


def decide(per_seed: dict[int, float], comparison: str, threshold: float) -> Verdict:
    """The verdict on per-seed values: how many seeds pass, whether the mean passes, and
    whether it passes (or fails) by more than its spread over seeds."""
    values = np.array(list(per_seed.values()), dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        return Verdict(NOT_EVALUATED, None, None, 0, None,
                       "the statistic is undefined (no finite value)")
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else None
    passing = int(np.sum(passes(values, comparison, threshold)))
    mean_passes = bool(passes(mean, comparison, threshold))
    if mean_passes and passing == values.size:
        status = HOLDS
    elif not mean_passes and passing == 0:
        status = FAILS
    else:
        status = MIXED
    clear = None if sd is None else abs(_margin(mean, comparison, threshold)) > sd
    return Verdict(status, mean, sd, passing, clear)


def _statistic_text(claim: Claim, metric: str, thresholds: dict, num_layers: int | None) -> str:
    early = (early_layer(num_layers, thresholds["early_fraction"]) if num_layers
             else f"{thresholds['early_fraction']:g}·L")
    return claim.statistic.format(metric=metric, policy=thresholds["exit_policy"], early=early)


def result(claim: Claim | str, experiment: str, thresholds: dict, compute,
           metric: str = "accuracy", num_layers: int | None = None,
           paper: float | None = None) -> ClaimResult:
    """Run `compute()` -> per-seed values (or (values, detail)) of a claim (a record, or its id
    in CLAIMS); a NotEvaluated becomes a 'not evaluated' row with its reason."""
    claim = CLAIMS[claim] if isinstance(claim, str) else claim
    row = ClaimResult(claim=claim.id, statement=claim.statement, experiment=experiment,
                      comparison=claim.comparison,
                      threshold=float(thresholds[claim.threshold_key]), status=NOT_EVALUATED,
                      paper=paper, statistic=_statistic_text(claim, metric, thresholds,
                                                             num_layers))
    try:
        out = compute()
    except NotEvaluated as reason:
        row.reason = str(reason)
        return row
    per_seed, row.detail = out if isinstance(out, tuple) else (out, "")
    row.per_seed = {str(s): float(v) for s, v in sorted(per_seed.items())}
    row.n = len(per_seed)
    verdict = decide(per_seed, claim.comparison, row.threshold)
    row.status, row.mean, row.sd, row.reason = (verdict.status, verdict.mean, verdict.sd,
                                                verdict.reason)
    row.passing, row.clear = verdict.passing, verdict.clear
    return row


def not_evaluated(claim: Claim | str, experiment: str, thresholds: dict, reason: str,
                  paper: float | None = None, metric: str = "accuracy") -> ClaimResult:
    def missing():
        raise NotEvaluated(reason)

    return result(claim, experiment, thresholds, missing, metric, paper=paper)


def _claim_rows(claim: Claim, experiments: list[ExperimentData], thresholds: dict,
                ablation: tuple[ExperimentData, ExperimentData] | None,
                paper: float | None) -> list[ClaimResult]:
    """One claim's rows: one per experiment, or one on the ablation pair, by its scope."""
    if claim.scope == EXPERIMENT and experiments:
        return [result(claim, data.name, thresholds,
                       lambda data=data: claim.compute(data, thresholds),
                       data.metric, data.num_layers, paper) for data in experiments]
    if claim.scope == ABLATION and ablation is not None:
        without, with_ = ablation
        return [result(claim, f"{without.name} vs {with_.name}", thresholds,
                       lambda: claim.compute(ablation, thresholds), paper=paper)]
    return [not_evaluated(claim, "–", thresholds, NO_SUBJECT[claim.scope], paper)]


def evaluate(experiments: list[ExperimentData], thresholds: dict,
             ablation: tuple[ExperimentData, ExperimentData] | None,
             paper: dict | None = None, registry: dict[str, Claim] = CLAIMS
             ) -> list[ClaimResult]:
    """Every claim of the registry, in its order: an experiment claim on each transformer
    experiment (in their order), an ablation claim on the residual-ablation pair; one 'not
    evaluated' row where the study has no such subject. `paper` maps claim ids to the paper's
    statistic (paper_statistics)."""
    paper = paper or {}
    return [row for claim in registry.values()
            for row in _claim_rows(claim, experiments, thresholds, ablation,
                                   paper.get(claim.id))]
