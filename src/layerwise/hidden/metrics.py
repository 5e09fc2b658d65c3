"""Layer-wise metrics of stored exit logits: accuracy, and F1 for the tasks scored by it.

Torch tensors in, numpy arrays out; the functions only call tensor methods, so importing this
module does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


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
