"""The training methods: one record each, in the order every table, figure and path shows them.

- `standard`: cross-entropy of the last layer.
- `aligned`: sum_l lambda_l CE(W h^(l) + b, y) over layers 1..L through the model's own (shared)
  classifier, lambda_l = 2l / (L(L+1)) (`weights: linear`) or 1/L (`uniform`).
- `multi_exit`: the paper's baseline, the same weighted sum with each layer through its own exit
  head (the last layer through the model's head).

A method with settings (`weights`, `alternate`) reads them from the experiment's section of
its name; that section is part of its runs' spec, so changing it reruns only those runs. With
`alternate`, even steps (0-based) are plain last-layer cross-entropy and odd steps the method's
loss (BERxiT's alternating schedule), so the first step of a run is a plain one.

Adding a method is one record here (its loss, and whether it trains exit heads); the config
schema's list of methods, the workflow's wildcard and every table's order come from `METHODS`.
Importing this module does not import torch: the workflow reads the names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerwise.data import IGNORE

if TYPE_CHECKING:
    import torch

    from layerwise.models.base import LayeredClassifier


@dataclass(frozen=True)
class Method:
    name: str
    label: str                      # how figures and tables name it
    # (model, layers 1..L of representations) -> (L, B, K) logits its loss weighs per layer;
    # None: the method trains the last layer only.
    layer_logits: Callable[[LayeredClassifier, torch.Tensor], torch.Tensor] | None = None
    exit_heads: bool = False        # layers 1..L-1 get a classifier of their own
    settings: bool = False          # the experiment has a section of this name (weights, ...)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("standard", "standard"),
    Method("aligned", "aligned", lambda model, reps: model.layer_logits(reps), settings=True),
    Method("multi_exit", "multi-exit", lambda model, reps: model.layer_exit_logits(reps),
           exit_heads=True, settings=True),
)}


def method(name: str) -> Method:
    """The record of a method name; a ValueError naming the known ones otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def ordered(names) -> list[str]:
    """Known methods in their canonical order, then any others in order of first appearance."""
    seen = list(dict.fromkeys(names))
    return [m for m in METHODS if m in seen] + [m for m in seen if m not in METHODS]


def layer_weights(num_layers: int, kind: str) -> torch.Tensor:
    """lambda_1..lambda_L: linear 2l/(L(L+1)) (sums to 1, deeper layers weigh more) or uniform."""
    import torch

    layers = torch.arange(1, num_layers + 1, dtype=torch.float32)
    if kind == "linear":
        return 2 * layers / (num_layers * (num_layers + 1))
    if kind == "uniform":
        return torch.full((num_layers,), 1.0 / num_layers)
    raise ValueError(f"aligned weights must be 'linear' or 'uniform', got {kind!r}")



def cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean CE of (..., K) logits against (...) targets (one per sample, or one per token of a
    sequence), positions whose target is IGNORE left out."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten(),
                           ignore_index=IGNORE, label_smoothing=label_smoothing)


def aligned_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Weighted CE over layers; `logits` is (L, B, ..., K) for layers 1..L, `labels` (B, ...)
    (IGNORE where a token has no target), `weights` is (L,)."""
    import torch.nn.functional as F

    num_layers, batch = logits.shape[:2]
    targets = labels.reshape(1, -1).expand(num_layers, -1).reshape(-1)
    per_sample = F.cross_entropy(logits.flatten(0, -2).float(), targets, reduction="none",
                                 ignore_index=IGNORE, label_smoothing=label_smoothing)
    if labels.ndim == 1:  # one target per sample, none ignored
        per_layer = per_sample.view(num_layers, batch).mean(dim=1)
    else:
        counted = (targets != IGNORE).view(num_layers, -1)
        per_layer = per_sample.view(num_layers, -1).sum(dim=1) / counted.sum(dim=1).clamp(min=1)
    return (weights.to(per_layer.device) * per_layer).sum()


def correct_and_counted(logits: torch.Tensor, targets: torch.Tensor) -> tuple[int, int]:
    """How many targets the argmax of (..., K) logits gets right, and how many targets count
    (those not IGNORE)."""
    counted = targets != IGNORE
    return int(((logits.argmax(-1) == targets) & counted).sum()), int(counted.sum())


def method_loss(model: LayeredClassifier, x, y, name: str, weights: torch.Tensor,
                label_smoothing: float, plain: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's loss under method `name` (or plain last-layer CE when `plain`), and the last
    layer's logits (for train accuracy)."""
    record = method(name)
    if plain or record.layer_logits is None:
        logits = model(x)
        return cross_entropy(logits, y, label_smoothing), logits
    # Layer 0 (the embedding) carries no loss, so its logits are never computed.
    logits = record.layer_logits(model, model.layer_representations(x)[1:])
    return aligned_loss(logits, y, weights, label_smoothing), logits[-1]
