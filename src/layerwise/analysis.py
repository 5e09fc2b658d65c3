"""Per-run analysis of extracted hidden states: layer-wise accuracy and similarity matrices.

Analysis reads only the hidden-state files written by extraction, never the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from layerwise.io import ArtifactError, load_tensors

if TYPE_CHECKING:  # plotting jobs import this module for its frame helpers: they start faster
    import torch   # without torch, which only the functions given tensors need


def read_hidden(path, spec_hash: str | None = None) -> dict[str, torch.Tensor]:
    """Representations (L+1, N, d), logits (L+1, N, K) and labels (N,), with shapes checked."""
    tensors, _ = load_tensors(path, keys=("representations", "logits", "labels"),
                              metadata={"spec_hash": spec_hash} if spec_hash else None)
    reps, logits, labels = tensors["representations"], tensors["logits"], tensors["labels"]
    if reps.ndim != 3 or logits.ndim != 3 or labels.ndim != 1:
        raise ArtifactError(f"{path}: expected representations (L+1, N, d), logits (L+1, N, K) "
                            f"and labels (N,); got {tuple(reps.shape)}, {tuple(logits.shape)}, "
                            f"{tuple(labels.shape)}")
    if reps.shape[:2] != logits.shape[:2] or reps.shape[1] != labels.shape[0]:
        raise ArtifactError(f"{path}: layer or sample counts disagree: representations "
                            f"{tuple(reps.shape)}, logits {tuple(logits.shape)}, labels "
                            f"{tuple(labels.shape)}")
    return tensors


def layer_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Accuracy of argmax logits at every layer: (L+1,)."""
    return (logits.argmax(-1) == labels).double().mean(dim=1).numpy()


def layer_f1(logits: torch.Tensor, labels: torch.Tensor, positive: int = 1) -> np.ndarray:
    """F1 of class `positive` of argmax logits at every layer: (L+1,), as GLUE scores MRPC and
    QQP. A layer that never predicts the class (nor has it) scores 0, as the paper plots it."""
    predicted = logits.argmax(-1) == positive
    actual = (labels == positive).expand_as(predicted)
    true_pos = (predicted & actual).sum(dim=1).double().numpy()
    wrong = (predicted ^ actual).sum(dim=1).double().numpy()  # false positives + negatives
    denominator = 2 * true_pos + wrong
    return np.where(denominator > 0, 2 * true_pos / np.maximum(denominator, 1), 0.0)


LAYER_METRICS = {"accuracy": layer_accuracy, "f1": layer_f1}


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


CKA_ESTIMATORS = {  # measure name -> cka_matrix options
    "linear_biased": {"kernel": "linear", "estimator": "biased"},
    "linear_unbiased": {"kernel": "linear", "estimator": "unbiased"},
    "rbf": {"kernel": "rbf", "estimator": "biased"},
}


def similarity_frame(reps: torch.Tensor, cka: tuple[str, ...] = ("linear_biased",),
                     rbf_threshold: float = 1.0, batch_size: int | None = None) -> pd.DataFrame:
    """COS (centered and raw) and the chosen CKA estimators between every pair of layers 1..L.

    `reps` holds layers 0..L. Layer 0, the embedding output, is left out as in the paper: a
    ViT's [CLS] token there is the same vector for every input, so its centered similarity
    to anything is undefined. `batch_size` makes the unbiased linear CKA a minibatch CKA
    (unbiased HSIC summed over batches of that size, Nguyen et al. 2021).
    """
    from layerwise.similarity import cka_matrix, cos_matrix

    blocks = reps[1:]
    frames = [matrix_frame(cos_matrix(blocks, center=True), "cos", first_layer=1),
              matrix_frame(cos_matrix(blocks, center=False), "cos_raw", first_layer=1)]
    for name in cka:
        options = dict(CKA_ESTIMATORS[name], rbf_threshold=rbf_threshold)
        if batch_size is not None and name == "linear_unbiased":
            options["batch_size"] = batch_size
        frames.append(matrix_frame(cka_matrix(blocks, **options), f"cka_{name}", first_layer=1))
    return pd.concat(frames, ignore_index=True)


def cos_to_last_frame(reps: torch.Tensor) -> pd.DataFrame:
    """Per-sample centered COS of every layer 1..L with the last layer: layer, sample, cos."""
    from layerwise.similarity import cos_per_sample

    values = cos_per_sample(reps[1:], ref_layer=-1, center=True)
    layers, samples = np.meshgrid(np.arange(1, values.shape[0] + 1),
                                  np.arange(values.shape[1]), indexing="ij")
    return pd.DataFrame({"layer": layers.ravel(), "sample": samples.ravel(),
                         "cos": values.ravel()})


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
    for measure in sorted(m for m in similarity["measure"].unique() if m.startswith("cka_")):
        cka = frame_matrix(similarity[similarity["measure"] == measure])
        rows.append({"measure": measure, "scope": "pairs",
                     "spearman": spearmanr(cos[upper], cka[upper]).statistic})
        rows.append({"measure": measure, "scope": "to_last",
                     "spearman": spearmanr(cos[:-1, -1], cka[:-1, -1]).statistic})
    return pd.DataFrame(rows, columns=["measure", "scope", "spearman"])
