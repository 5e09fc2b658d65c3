"""The hidden-state file of one run and split: every layer's representation, the exit logits
and the labels, as extraction writes them (safetensors) and analysis reads them back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from layerwise.io import ArtifactError, load_tensors

if TYPE_CHECKING:
    import torch


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
