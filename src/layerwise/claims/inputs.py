"""What the claims read of an experiment: its tidy tables, and the curves and matrices drawn
from them. A table or method the study does not produce raises NotEvaluated, whose message
becomes the reason in the claims table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CKA = "cka_linear_biased"  # the paper's estimator


class NotEvaluated(Exception):
    """A claim's inputs are not produced by the study; the message says what is missing."""


NO_EXITS = "the experiment has no early-exit results (it needs an aligned or multi_exit method)"

#: Why a claim cannot read an experiment's table when the study does not write it.
MISSING_TABLE = {"accuracy": "no layer_accuracy.csv", "similarity": "no similarity.csv",
                 "agreement": "no agreement.csv", "saturation": NO_EXITS, "sweep": NO_EXITS,
                 "points": NO_EXITS}


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

    def table(self, name: str) -> pd.DataFrame:
        """One of the tables (a field name), or NotEvaluated where the study does not write it."""
        return needs(getattr(self, name), MISSING_TABLE[name])


def needs(frame: pd.DataFrame | None, reason: str) -> pd.DataFrame:
    """The frame, or NotEvaluated(reason) where the study does not write it."""
    if frame is None:
        raise NotEvaluated(reason)
    return frame


def require_methods(frame: pd.DataFrame, methods, what: str) -> None:
    present = set(frame["method"]) if "method" in frame else set()
    missing = [m for m in methods if m not in present]
    if missing:
        raise NotEvaluated(f"needs method{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing)} in the experiment ({what} has "
                           f"{', '.join(sorted(present)) or 'none'})")


def paired(a: dict, b: dict, what: str) -> list[int]:
    """The seeds both per-seed mappings have, so a claim compares runs of the same seed."""
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


def accuracy_curves(acc: pd.DataFrame, method: str, metric: str = "accuracy",
                    split: str = "test") -> dict[int, np.ndarray]:
    """{seed: metric at layers 1..L} of one method."""
    require_methods(acc, [method], "layer_accuracy.csv")
    rows = acc[(acc["method"] == method) & (acc["split"] == split) & (acc["layer"] >= 1)]
    if rows.empty:
        raise NotEvaluated(f"no {split} rows of method {method} in layer_accuracy.csv")
    return {int(seed): group.sort_values("layer")[metric].to_numpy(dtype=float)
            for seed, group in rows.groupby("seed")}


def similarity_matrices(sim: pd.DataFrame, method: str, measure: str) -> dict[int, np.ndarray]:
    """{seed: (L x L) matrix of layers 1..L} of one method and measure."""
    require_methods(sim, [method], "similarity.csv")
    rows = sim[(sim["method"] == method) & (sim["measure"] == measure)
               & (sim["layer_a"] >= 1) & (sim["layer_b"] >= 1)]
    if rows.empty:
        raise NotEvaluated(f"no {measure} similarity of method {method} (analysis.cka_estimators "
                           "must include linear_biased)" if measure == CKA else
                           f"no {measure} similarity of method {method}")
    return {int(seed): group.pivot_table(index="layer_a", columns="layer_b", values="value",
                                         aggfunc="mean").sort_index().sort_index(axis=1)
            .to_numpy(dtype=float) for seed, group in rows.groupby("seed")}
