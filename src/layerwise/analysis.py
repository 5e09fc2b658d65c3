"""Per-run analysis of extracted hidden states: layer-wise accuracy and similarity matrices.

Analysis reads only the hidden-state files written by extraction, never the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from layerwise.io import ArtifactError, load_tensors


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


def similarity_frame(reps: torch.Tensor) -> pd.DataFrame:
    """COS (centered and raw) and linear CKA (biased) between every pair of layers 1..L.

    `reps` holds layers 0..L. Layer 0, the embedding output, is left out as in the paper: a
    ViT's [CLS] token there is the same vector for every input, so its centered similarity
    to anything is undefined.
    """
    from layerwise.similarity import cka_matrix, cos_matrix

    blocks = reps[1:]
    return pd.concat([
        matrix_frame(cos_matrix(blocks, center=True), "cos", first_layer=1),
        matrix_frame(cos_matrix(blocks, center=False), "cos_raw", first_layer=1),
        matrix_frame(cka_matrix(blocks, kernel="linear", estimator="biased"),
                     "cka_linear_biased", first_layer=1),
    ], ignore_index=True)
