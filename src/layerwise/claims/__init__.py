"""The paper's claims (docs/method.md §8), checked on a run's own results.

Every claim is one record of the registry (claims.registry.CLAIMS): its statement, its
statistic, the threshold it must pass and how to compute the statistic on the study's results
and on the paper's digitized numbers (layerwise.reference). The statistic is computed once per
seed, summarised as mean ± sd over seeds and compared with a threshold from the config
(`claims` in the schema, where each threshold says why it has its value); a claim holds when
the mean and every seed pass its threshold, fails when none do, and is mixed otherwise. A
claim whose inputs the study does not produce (a method, an exit policy, a CKA estimator or
the residual ablation the config leaves out) is reported as "not evaluated" with the reason; no claim is ever dropped from the table.

statistics: the statistics on plain arrays; inputs: reading an experiment's tables;
registry: the claims; evaluation: the rows; table: the CSV and display frames.
"""

from layerwise.claims.evaluation import (FAILS, HOLDS, MIXED, NOT_EVALUATED, NO_SUBJECT,
                                         ClaimResult, decide, evaluate, not_evaluated, passes,
                                         paper_statistics, result)
from layerwise.claims.inputs import (CKA, ExperimentData, NotEvaluated, accuracy_curves,
                                     reference_method, similarity_matrices)
from layerwise.claims.registry import (ABLATION, CLAIMS, EXPERIMENT, Claim, c1_per_seed,
                                       c2_per_seed, c3_per_seed, c4_per_seed, c5_per_seed,
                                       c7_per_seed, c8_per_seed, c9_per_seed, c10_per_seed,
                                       c11_per_seed, c14_per_seed, matched_exit_gap,
                                       matched_threshold)
from layerwise.claims.statistics import (cka_cos_gap, closeness_fraction, early_fraction,
                                         early_layer, intermediate_gain, largest_drop)
from layerwise.claims.table import claims_frame, format_claims, ours_text, verdict_text

__all__ = [
    "ABLATION", "CKA", "CLAIMS", "EXPERIMENT", "FAILS", "HOLDS", "MIXED", "NO_SUBJECT",
    "NOT_EVALUATED", "Claim", "ClaimResult", "ExperimentData", "NotEvaluated", "accuracy_curves",
    "c10_per_seed", "c11_per_seed", "c14_per_seed", "c1_per_seed", "c2_per_seed", "c3_per_seed", "c4_per_seed",
    "c5_per_seed", "c7_per_seed", "c8_per_seed", "c9_per_seed", "cka_cos_gap",
    "claims_frame", "closeness_fraction", "decide", "early_fraction", "early_layer", "evaluate",
    "format_claims", "intermediate_gain", "largest_drop", "matched_exit_gap", "matched_threshold",
    "not_evaluated", "ours_text", "paper_statistics", "passes", "reference_method", "result", "similarity_matrices",
    "verdict_text",
]
