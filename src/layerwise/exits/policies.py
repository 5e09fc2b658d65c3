"""The exit policies: one record per policy, read by the offline sweep, real early exit, the
figures and tables, and the config (for the names).

A policy scores every layer and sample from exit logits stacked as (L, N, K), and a sample exits
at the first layer whose score passes the threshold (at layer L at the latest):

- confidence: max softmax probability >= threshold (the paper's);
- entropy:    softmax entropy <= threshold (DeeBERT);
- patience:   the prediction equals those of the `threshold` layers before it, i.e. it stayed
  unchanged for `threshold` consecutive layers (PABEE); the earliest exit is layer threshold + 1;
- margin:     top-1 minus top-2 softmax probability >= threshold (CALM's softmax response).

Importing this module does not import torch (the config and the Snakefile read the names): the
score functions use tensor methods only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor


# --- what each policy looks at ------------------------------------------------------------
def confidence(logits: Tensor) -> Tensor:
    """Max softmax probability over the last axis."""
    return logits.float().softmax(-1).amax(-1)


def entropy(logits: Tensor) -> Tensor:
    """Entropy (nats) of the softmax over the last axis."""
    log_p = logits.float().log_softmax(-1)
    return -(log_p.exp() * log_p).sum(-1)


def margin(logits: Tensor) -> Tensor:
    """Top-1 minus top-2 softmax probability over the last axis."""
    top = logits.float().softmax(-1).topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def extend_run(run: Tensor, previous: Tensor, predictions: Tensor) -> Tensor:
    """Run lengths one layer on: one longer where the prediction held, zero where it changed.
    Shared by the offline scores and the online rule, so both count runs alike."""
    return (run + 1).masked_fill(predictions != previous, 0)


def agreement_run(predictions: Tensor) -> Tensor:
    """(L, N): for each layer, how many layers in a row before it predicted the same class."""
    run = predictions.new_zeros(predictions.shape)
    for layer in range(1, len(predictions)):
        run[layer] = extend_run(run[layer - 1], predictions[layer - 1], predictions[layer])
    return run


def prediction_run(logits: Tensor) -> Tensor:
    """(L, N) patience scores: the agreement run of each layer's prediction."""
    return agreement_run(logits.argmax(-1))


# --- threshold candidates -----------------------------------------------------------------
def quantile_thresholds(policy: Policy, val_scores: Tensor, points: int) -> list[float]:
    """`points` evenly spaced quantiles of the (L, N) validation scores at layers 1..L-1 (where
    an exit decision is made), plus one that never exits early."""
    scores = val_scores[:-1].double().flatten().numpy()
    quantiles = np.unique(np.quantile(scores, np.linspace(0, 1, points))) if scores.size else []
    never = math.inf if policy.higher_passes else -math.inf
    return [float(q) for q in quantiles] + [never]


def count_thresholds(policy: Policy, val_scores: Tensor, points: int) -> list[float]:
    """Every run length 0..L; L never exits early (a run of L equal predictions needs L + 1
    layers)."""
    return [float(t) for t in range(val_scores.shape[0] + 1)]


# --- online rules: one per batch of real early exit ---------------------------------------
class OnlineRule(Protocol):
    """Decides layer by layer for the samples still in the batch."""

    def decide(self, logits: Tensor) -> Tensor:
        """(n,) whether each running sample exits, from its (n, K) logits at this layer."""

    def keep(self, index: Tensor) -> None:
        """Keep only the state of the samples at `index`, those that stay in the batch."""


class ScoreRule:
    """A policy whose score needs only the current layer: nothing to remember."""

    def __init__(self, policy: Policy, threshold: float):
        self.policy, self.threshold = policy, threshold

    def decide(self, logits: Tensor) -> Tensor:
        return self.policy.passes(self.policy.score(logits), self.threshold)

    def keep(self, index: Tensor) -> None:
        pass


class PatienceRule:
    """Patience remembers each sample's last prediction and how long it has held."""

    def __init__(self, policy: Policy, threshold: float):
        self.policy, self.threshold = policy, threshold
        self.previous: Tensor | None = None
        self.run: Tensor | None = None

    def decide(self, logits: Tensor) -> Tensor:
        predictions = logits.argmax(-1)
        if self.previous is None:
            self.run = predictions.new_zeros(predictions.shape)
        else:
            self.run = extend_run(self.run, self.previous, predictions)
        self.previous = predictions
        return self.policy.passes(self.run, self.threshold)

    def keep(self, index: Tensor) -> None:
        self.previous, self.run = self.previous[index], self.run[index]


# --- the records --------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """Everything that differs between exit policies.

    `score` maps (L, N, K) logits to (L, N) scores (and, for the policies that look at one layer
    only, (n, K) to (n,)); `higher_passes` says whether a score passes a threshold by being at
    least (else at most) it; `thresholds(policy, val_scores, points)` gives the candidates of
    the sweep, the last never exiting early; `online(policy, threshold)` starts the rule of one
    batch of real early exit.
    """

    name: str
    label: str
    score: Callable[[Tensor], Tensor]
    higher_passes: bool
    thresholds: Callable[[Policy, Tensor, int], list[float]] = quantile_thresholds
    online: Callable[[Policy, float], OnlineRule] = ScoreRule

    def passes(self, scores: Tensor, threshold: float) -> Tensor:
        """Whether each score lets its sample exit."""
        return scores >= threshold if self.higher_passes else scores <= threshold

    def caution(self, threshold: Any) -> Any:
        """A key that grows as a threshold (a float or a Series of them) lets fewer samples
        exit: the "more cautious" tie-break of the operating point."""
        return threshold if self.higher_passes else -threshold

    def candidates(self, val_scores: Tensor, points: int) -> list[float]:
        """Thresholds to sweep, from the (L, N) validation scores only."""
        return self.thresholds(self, val_scores, points)

    def rule(self, threshold: float) -> OnlineRule:
        """A fresh online rule for one batch."""
        return self.online(self, threshold)


POLICIES: dict[str, Policy] = {policy.name: policy for policy in (
    Policy("confidence", "max-softmax confidence (paper)", confidence, higher_passes=True),
    Policy("entropy", "entropy (DeeBERT)", entropy, higher_passes=False),
    Policy("patience", "patience (PABEE)", prediction_run, higher_passes=True,
           thresholds=count_thresholds, online=PatienceRule),
    Policy("margin", "top-1 − top-2 margin (CALM)", margin, higher_passes=True),
)}


def lookup(name: str) -> Policy:
    """The record of a policy name; an unknown name is an error that lists the known ones."""
    if name not in POLICIES:
        raise ValueError(f"unknown exit policy {name!r}; known: {', '.join(POLICIES)}")
    return POLICIES[name]
