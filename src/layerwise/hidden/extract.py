"""Extraction: every layer's representation and exit logits of a trained model, for one split."""

from __future__ import annotations

import torch

from layerwise.devices import autocast
from layerwise.models.base import LayeredClassifier
from layerwise.train.batches import eval_batches
from layerwise.data import IGNORE


@torch.no_grad()
def predict_layers(model: LayeredClassifier, x: torch.Tensor, y: torch.Tensor,
                   batch_size: int = 512, workers: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L+1, N, d) representations, (L+1, N, K) exit logits and (N,) targets, float32 on CPU.

    Exit logits are the shared head's, or each layer's own head's in a multi-exit model, or the
    shared head's on a tuned lens' translated states, so everything downstream reads one
    `logits` tensor whatever the method; the representations are those the exits read (a lens
    model's translated ones). A backbone with a
    representation per token gives one sample per position that has a target (N counts
    tokens; positions whose target is IGNORE, such as padding, are left out).
    """
    model.eval()
    device = next(model.parameters()).device
    reps, logits, targets = [], [], []
    for inputs, labels in eval_batches(x, y, batch_size, device, workers=workers):
        with autocast(device):
            raw = model.layer_representations(inputs)
            out = model.layer_exit_logits(raw)
            r = model.exit_representations(raw)  # a tuned lens' translated states
        if r.ndim == 4:  # (L+1, B, T, d): keep the positions that have a target
            keep = labels != IGNORE
            r, out, labels = r[:, keep], out[:, keep], labels[keep]
        reps.append(r.float().cpu())
        logits.append(out.float().cpu())
        targets.append(labels.cpu())
    return torch.cat(reps, dim=1), torch.cat(logits, dim=1), torch.cat(targets)
