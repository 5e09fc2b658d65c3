"""Similarity between the layers of one run, as tidy frames: COS, CKA and their agreement.

Reads representations (from a hidden-state file), never the model; the numerics are in
`layerwise.similarity.engine`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # plotting jobs import this module for its frame helpers: they start faster
    import torch   # without torch, which only the functions given tensors need


def matrix_frame(matrix: np.ndarray, measure: str, first_layer: int = 0) -> pd.DataFrame:
    """A (layers x layers) matrix as tidy rows: measure, layer_a, layer_b, value."""
    a, b = np.meshgrid(np.arange(matrix.shape[0]), np.arange(matrix.shape[1]), indexing="ij")
    a, b = a + first_layer, b + first_layer
    return pd.DataFrame({"measure": measure, "layer_a": a.ravel(), "layer_b": b.ravel(),
                         "value": np.asarray(matrix, dtype=np.float64).ravel()})


def frame_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Inverse of `matrix_frame` for one measure (averaging duplicates, e.g. over seeds)."""
    table = frame.pivot_table(index="layer_a", columns="layer_b", values="value", aggfunc="mean")
    return table.sort_index().sort_index(axis=1).to_numpy()


@dataclass(frozen=True)
class Measure:
    """One similarity between layers: a `measure` value of similarity.csv."""

    name: str
    label: str                 # how an axis or a colour bar names it
    # (layers 1..L of representations, settings) -> the (L, L) matrix of every pair of layers
    matrix: Callable[[torch.Tensor, dict], np.ndarray]
    estimator: str | None = None   # its name in analysis.cka_estimators; None: always computed
    short: str | None = None       # its heatmap figure <short>_heatmaps; the paper's curve key
    curve: str | None = None       # its curve against the last layer, "{last}" for L
    agreement: bool = False        # ranked against COS in agreement.csv
    # the same matrix from the running sums of a StreamingSimilarity (a language model's
    # tokens); None: it needs every sample at once (a kernel's Gram matrix)
    streamed: Callable[[Any], np.ndarray] | None = None


def _cos(center: bool):
    def matrix(blocks, settings):
        from layerwise.similarity.engine import cos_matrix

        return cos_matrix(blocks, center=center)
    return matrix


def _cka(kernel: str, estimator: str, minibatch: bool = False):
    """`minibatch`: analysis.cka_batch_size makes it a minibatch CKA (unbiased HSIC summed over
    batches, Nguyen et al. 2021)."""
    def matrix(blocks, settings):
        from layerwise.similarity.engine import cka_matrix

        options = {"kernel": kernel, "estimator": estimator,
                   "rbf_threshold": settings.get("rbf_threshold", 1.0)}
        if minibatch and settings.get("batch_size") is not None:
            options["batch_size"] = settings["batch_size"]
        return cka_matrix(blocks, **options)
    return matrix


#: Every similarity measure, in the order similarity.csv holds them. Adding one is a record here:
#: the analysis computes it, and its heatmap, curve and agreement follow from its fields.
MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("cos", "COS (centered)", _cos(center=True), short="cos",
            curve="COS(l, {last}) (centered)", streamed=lambda acc: acc.cos(center=True)),
    Measure("cos_raw", "COS (uncentered)", _cos(center=False),
            streamed=lambda acc: acc.cos(center=False)),
    Measure("cka_linear_biased", "linear CKA", _cka("linear", "biased"),
            estimator="linear_biased", short="cka", curve="CKA(l, {last}) (linear)",
            agreement=True, streamed=lambda acc: acc.cka("biased")),
    Measure("cka_linear_unbiased", "linear CKA (debiased)", _cka("linear", "unbiased", True),
            estimator="linear_unbiased", agreement=True,
            streamed=lambda acc: acc.cka("unbiased")),
    Measure("cka_rbf", "RBF CKA", _cka("rbf", "biased"), estimator="rbf", agreement=True),
)}
#: analysis.cka_estimators name -> measure
CKA_ESTIMATORS = {m.estimator: m for m in MEASURES.values() if m.estimator}
#: heatmap figure stem -> measure
HEATMAPS = {m.short: m for m in MEASURES.values() if m.short}


def similarity_frame(reps: torch.Tensor, cka: tuple[str, ...] = ("linear_biased",),
                     rbf_threshold: float = 1.0, batch_size: int | None = None) -> pd.DataFrame:
    """Every measure that is always computed, then the chosen CKA estimators (`cka`, names of
    analysis.cka_estimators), between every pair of layers 1..L.

    `reps` holds layers 0..L. Layer 0, the embedding output, is left out as in the paper: a
    ViT's [CLS] token there is the same vector for every input, so its centered similarity
    to anything is undefined.
    """
    blocks = reps[1:]
    settings = {"rbf_threshold": rbf_threshold, "batch_size": batch_size}
    chosen = [m for m in MEASURES.values() if m.estimator is None]
    chosen += [CKA_ESTIMATORS[name] for name in cka]
    return pd.concat([matrix_frame(m.matrix(blocks, settings), m.name, first_layer=1)
                      for m in chosen], ignore_index=True)


def streamed_similarity_frame(similarity, cka: tuple[str, ...] = ("linear_biased",)
                              ) -> pd.DataFrame:
    """`similarity_frame` from a finished StreamingSimilarity over layers 1..L: the measures
    that are always computed, then the chosen CKA estimators that running sums can give (a
    kernel CKA cannot be streamed and is left out)."""
    chosen = [m for m in MEASURES.values() if m.estimator is None]
    chosen += [CKA_ESTIMATORS[name] for name in cka if CKA_ESTIMATORS[name].streamed is not None]
    return pd.concat([matrix_frame(m.streamed(similarity), m.name, first_layer=1)
                      for m in chosen], ignore_index=True)


def cos_to_last_frame(reps: torch.Tensor) -> pd.DataFrame:
    """Per-sample centered COS of every layer 1..L with the last layer: layer, sample, cos."""
    from layerwise.similarity.engine import cos_per_sample

    values = cos_per_sample(reps[1:], ref_layer=-1, center=True)
    layers, samples = np.meshgrid(np.arange(1, values.shape[0] + 1),
                                  np.arange(values.shape[1]), indexing="ij")
    return pd.DataFrame({"layer": layers.ravel(), "sample": samples.ravel(),
                         "cos": values.ravel()})


def norm_ratio_frame(reps: torch.Tensor) -> pd.DataFrame:
    """Per sample, ||h^(l-1)|| / ||h^(l) - h^(l-1)|| for every block l = 1..L: the residual
    stream entering block l against the update the block adds to it (the paper's Fig 11b, its
    argument for why adjacent layers stay similar: a large ratio means little rotation). For
    a post-LN model (BERT) h^(l) - h^(l-1) includes the block's final norm, so it is the
    change of the representation rather than the block's update alone. Columns: layer,
    sample, ratio (inf where a block changes nothing)."""
    x = reps.double()
    stream = x[:-1].norm(dim=-1)
    update = (x[1:] - x[:-1]).norm(dim=-1)
    ratio = (stream / update).numpy()
    layers, samples = np.meshgrid(np.arange(1, ratio.shape[0] + 1), np.arange(ratio.shape[1]),
                                  indexing="ij")
    return pd.DataFrame({"layer": layers.ravel(), "sample": samples.ravel(),
                         "ratio": ratio.ravel()})


def cos_cka_agreement(similarity: pd.DataFrame) -> pd.DataFrame:
    """How well COS ranks layer pairs the way each CKA does (the paper shows this only by eye).

    Spearman rank correlation between the centered COS matrix and each CKA matrix over the
    off-diagonal pairs (each unordered pair once), and between their curves against the last
    layer. Rows: measure, scope ("pairs" | "to_last"), spearman.
    """
    from scipy.stats import spearmanr

    cos = frame_matrix(similarity[similarity["measure"] == "cos"])
    upper = np.triu_indices(cos.shape[0], k=1)
    rows = []
    present = set(similarity["measure"])
    for measure in (name for name, m in MEASURES.items() if m.agreement and name in present):
        cka = frame_matrix(similarity[similarity["measure"] == measure])
        rows.append({"measure": measure, "scope": "pairs",
                     "spearman": spearmanr(cos[upper], cka[upper]).statistic})
        rows.append({"measure": measure, "scope": "to_last",
                     "spearman": spearmanr(cos[:-1, -1], cka[:-1, -1]).statistic})
    return pd.DataFrame(rows, columns=["measure", "scope", "spearman"])


def similarity_to_last(sim: pd.DataFrame, measure: str, last: int) -> pd.DataFrame:
    """Rows ``seed, layer, value`` of similarity between each layer 1..L and layer `last`."""
    rows = sim[sim["measure"] == measure]
    if rows.empty:
        available = sorted(sim["measure"].unique())
        raise ValueError(f"no {measure!r} similarity rows; measures present: {available}")
    as_b = rows[rows["layer_b"] == last][["seed", "layer_a", "value"]].rename(
        columns={"layer_a": "layer"})
    as_a = rows[rows["layer_a"] == last][["seed", "layer_b", "value"]].rename(
        columns={"layer_b": "layer"})
    pairs = pd.concat([as_b, as_a], ignore_index=True)
    pairs = pairs[pairs["layer"] >= 1]
    # A pair stored in both orders counts once per seed.
    return pairs.groupby(["seed", "layer"], as_index=False)["value"].mean()
