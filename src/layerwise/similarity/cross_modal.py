"""Cosine similarity within and across the modalities of a CLIP model, layer by layer (the
paper's Appendix D, Figs 22-23).

Both sides are features in CLIP's joint space: `reps` (L+1, N, D), each image layer's [CLS]
token through the vision tower's post_layernorm and projection (what the pipeline extracts
from `layerwise.models.clip.CLIPClassifier`), and `text` (M+1, K, D), each text layer's EOS
state of the K class prompts through the text tower's final norm and projection
(`CLIPClassifier.text_layer_features`). An image is compared with the prompt of its own class,
so cross-modal similarity needs the labels.

The cosines here are uncentered: a text layer holds one vector per class, so it has no sample
mean comparable to an image layer's, and centering one side only would put the two on
different scales. Image-image pairs use the project's own COS (`engine.cos_matrix`, uncentered
by default for the same scale; `center=True` gives the centered COS of similarity.csv, under
which layer 0, the same [CLS] vector for every image, is all zeros). As there, a zero vector's
cosine with anything is 0. Everything is computed in float64 and returned on the CPU.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

COLUMNS = ("modality_a", "layer_a", "modality_b", "layer_b", "cos")


def _units(x: torch.Tensor) -> torch.Tensor:
    """Unit vectors along the last axis, in float64 (zero vectors stay zero)."""
    return F.normalize(x.detach().to(torch.float64), dim=-1)


def _check(reps: torch.Tensor, labels: torch.Tensor, text: torch.Tensor) -> None:
    if reps.ndim != 3 or text.ndim != 3 or reps.shape[-1] != text.shape[-1]:
        raise ValueError(f"reps (L+1, N, D) and text (M+1, K, D) must share D; got "
                         f"{tuple(reps.shape)} and {tuple(text.shape)}")
    if labels.shape != (reps.shape[1],):
        raise ValueError(f"labels must be (N,) = ({reps.shape[1]},), got {tuple(labels.shape)}")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < text.shape[1]:
        raise ValueError(f"labels must index the {text.shape[1]} prompts of text")


def text_cos(text: torch.Tensor) -> torch.Tensor:
    """(M+1, M+1): entry (i, j) the mean over the K prompts of cos(text[i, k], text[j, k])."""
    units = _units(text)
    return torch.einsum("ikd,jkd->ij", units, units).cpu() / text.shape[1]


def cross_modal_cos(reps: torch.Tensor, labels: torch.Tensor, text: torch.Tensor
                    ) -> torch.Tensor:
    """(L+1, M+1): entry (i, j) the mean over samples n of cos(reps[i, n], text[j, labels[n]]).

    Summed class by class (the unit image vectors of each class, then one product with the
    text), so no (M+1, N, D) copy of the text is made; one image layer at a time in float64.
    """
    _check(reps, labels, text)
    labels = labels.to(reps.device)
    sums = torch.zeros(len(reps), text.shape[1], text.shape[2], dtype=torch.float64,
                       device=reps.device)
    for layer, h in enumerate(reps):
        sums[layer].index_add_(0, labels, _units(h))
    return torch.einsum("ikd,jkd->ij", sums, _units(text).to(reps.device)).cpu() / reps.shape[1]


def _rows(matrix, a: str, b: str) -> pd.DataFrame:
    matrix = np.asarray(matrix, dtype=np.float64)
    layer_a, layer_b = np.meshgrid(np.arange(matrix.shape[0]), np.arange(matrix.shape[1]),
                                   indexing="ij")
    return pd.DataFrame({"modality_a": a, "layer_a": layer_a.ravel(), "modality_b": b,
                         "layer_b": layer_b.ravel(), "cos": matrix.ravel()})


def cross_modal_frame(reps: torch.Tensor, labels: torch.Tensor, text: torch.Tensor,
                      center: bool = False) -> pd.DataFrame:
    """One tidy frame (columns `COLUMNS`) of every pair of layers: image-image (the project's
    sample-wise COS, `center` as in `engine.cos_matrix`), text-text (`text_cos`) and
    image-text (`cross_modal_cos`; modality_a is always image, as the matrix is not symmetric
    and its transpose would repeat it). Layers count from 0, the embedding output, on both
    sides; the curves of Figs 22-23 are the rows whose layer_b is the last layer."""
    from layerwise.similarity.engine import cos_matrix

    _check(reps, labels, text)
    return pd.concat([_rows(cos_matrix(reps, center=center), "image", "image"),
                      _rows(text_cos(text), "text", "text"),
                      _rows(cross_modal_cos(reps, labels, text), "image", "text")],
                     ignore_index=True)


__all__ = ["COLUMNS", "cross_modal_cos", "cross_modal_frame", "text_cos"]
