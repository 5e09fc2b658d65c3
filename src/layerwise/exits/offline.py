"""Early exit on stored per-layer logits: the threshold sweep, the choice of an operating point,
and the speed-up and FLOPs of an exit pattern (docs/method.md §6).

Everything here reads exit logits of layers 1..L stacked as (L, N, K), as extraction stores them
(each layer's own head in a multi-exit model, the shared head otherwise); real early-exit
inference on a model is in `layerwise.exits.online`. A sample exits at the first layer whose test
passes and at layer L at the latest. What a policy scores, how a score passes and which
thresholds are swept is its record in `layerwise.exits.policies`; the functions here take its name.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from layerwise.exits.policies import lookup


def policy_scores(policy: str, logits: torch.Tensor) -> torch.Tensor:
    """(L, N) score of every layer and sample that `passes` compares with a threshold."""
    return lookup(policy).score(logits)


def passes(policy: str, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Whether a sample may exit given its score: at least or at most the threshold, by policy."""
    return lookup(policy).passes(scores, threshold)


# --- offline exit on stored logits --------------------------------------------------------
def first_passing_layer(passed: torch.Tensor) -> torch.Tensor:
    """(N,) exit layers in 1..L from (L, N) pass flags; the last layer always lets a sample out."""
    passed = passed.clone()
    passed[-1] = True
    return passed.int().argmax(0) + 1  # argmax returns the first maximum


def exit_layers(policy: str, logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N,) layer in 1..L at which each sample exits; `logits` is (L, N, K) for layers 1..L."""
    return first_passing_layer(passes(policy, policy_scores(policy, logits), threshold))


def exit_predictions(logits: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """(N,) the prediction of the exit each sample took."""
    at_exit = logits[layers - 1, torch.arange(logits.shape[1])]
    return at_exit.argmax(-1)


# --- cost of an exit pattern --------------------------------------------------------------
def speedup(layers: torch.Tensor, num_layers: int) -> float:
    """The paper's speed-up L * N / sum_i k_i (= L / E[k])."""
    return num_layers * len(layers) / float(layers.sum())


@dataclass(frozen=True)
class FlopProfile:
    """FLOPs per sample of each piece of a model's layer-by-layer forward pass.

    `heads[l-1]` is the exit evaluated at layer l (the shared head path or the layer's own
    head); `heads[-1]` is also the head of full-depth inference.
    """

    embed: float
    blocks: tuple[float, ...]
    heads: tuple[float, ...]

    @property
    def full_depth(self) -> float:
        """FLOPs of plain inference: embedding, every block and one head."""
        return self.embed + sum(self.blocks) + self.heads[-1]

    def exit_cost(self, layers: torch.Tensor) -> torch.Tensor:
        """(N,) FLOPs of each sample: blocks up to its exit and every head evaluated on the way."""
        per_layer = torch.tensor(self.blocks, dtype=torch.float64) + torch.tensor(
            self.heads, dtype=torch.float64)
        return self.embed + per_layer.cumsum(0)[layers - 1]


def exit_metrics(logits: torch.Tensor, labels: torch.Tensor, layers: torch.Tensor,
                 flops: FlopProfile | None = None) -> dict[str, float]:
    """Accuracy, mean exit layer E[k], the paper's speed-up and (with `flops`) the FLOPs ratio
    (expected FLOPs over full-depth FLOPs) of one exit pattern."""
    correct = exit_predictions(logits, layers) == labels
    metrics = {"accuracy": correct.double().mean().item(),
               "mean_exit_layer": layers.double().mean().item(),
               "speedup": speedup(layers, logits.shape[0])}
    if flops is not None:
        metrics["flops_ratio"] = flops.exit_cost(layers).mean().item() / flops.full_depth
    return metrics


# --- the sweep and the operating point ----------------------------------------------------
def candidate_thresholds(policy: str, val_logits: torch.Tensor, points: int) -> list[float]:
    """Thresholds to sweep, from the validation split only; the last never exits early.

    Score policies: `points` evenly spaced quantiles of the scores at layers 1..L-1; patience:
    0..L (`layerwise.exits.policies`).
    """
    return lookup(policy).candidates(val_logits, points)


def sweep(policy: str, logits: torch.Tensor, labels: torch.Tensor, thresholds,
          flops: FlopProfile | None = None) -> pd.DataFrame:
    """One row per threshold: the threshold and its `exit_metrics`."""
    scores = policy_scores(policy, logits)
    rows = []
    for threshold in thresholds:
        layers = first_passing_layer(passes(policy, scores, threshold))
        rows.append({"policy": policy, "threshold": threshold,
                     **exit_metrics(logits, labels, layers, flops)})
    return pd.DataFrame(rows)


def full_depth_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of the last layer's exit, i.e. of the model without early exit."""
    return (logits[-1].argmax(-1) == labels).double().mean().item()


def select_threshold(policy: str, val_logits: torch.Tensor, val_labels: torch.Tensor,
                     max_drop: float, points: int) -> float:
    """The threshold of a run's operating point, chosen on the validation split alone.

    Among the candidate thresholds, the fastest (smallest mean exit layer) whose validation
    accuracy is at least full-depth validation accuracy minus `max_drop`; ties go to the more
    accurate, then the more cautious threshold.
    """
    table = sweep(policy, val_logits, val_labels,
                  candidate_thresholds(policy, val_logits, points))
    # A float tolerance so that the never-exit threshold (exactly full depth) always qualifies.
    bar = full_depth_accuracy(val_logits, val_labels) - max_drop - 1e-12
    allowed = table[table["accuracy"] >= bar]
    best = allowed.assign(cautious=lookup(policy).caution(allowed["threshold"])).sort_values(
        ["mean_exit_layer", "accuracy", "cautious"], ascending=[True, False, False]).iloc[0]
    return float(best["threshold"])


def evaluate_policy(policy: str, val: tuple[torch.Tensor, torch.Tensor],
                    test: tuple[torch.Tensor, torch.Tensor], max_drop: float, points: int,
                    flops: FlopProfile | None = None
                    ) -> tuple[pd.DataFrame, dict, torch.Tensor]:
    """Sweep a policy on (logits, labels) of both splits, fix its operating point on
    validation, and report it on test.

    Returns the sweep (one row per split and threshold, the chosen one marked `selected`), the
    operating point (validation and test metrics) and the test samples' exit layers there.
    """
    threshold = select_threshold(policy, *val, max_drop, points)  # test is never passed in
    thresholds = candidate_thresholds(policy, val[0], points)
    curves = pd.concat([sweep(policy, *data, thresholds, flops).assign(split=split)
                        for split, data in (("val", val), ("test", test))], ignore_index=True)
    curves["selected"] = curves["threshold"] == threshold
    val_point = exit_metrics(*val, exit_layers(policy, val[0], threshold))
    layers = exit_layers(policy, test[0], threshold)
    point = {"policy": policy, "threshold": threshold, "layers": test[0].shape[0],
             "val_full_depth_accuracy": full_depth_accuracy(*val),
             "val_accuracy": val_point["accuracy"],
             "val_mean_exit_layer": val_point["mean_exit_layer"],
             "full_depth_accuracy": full_depth_accuracy(*test),
             **exit_metrics(*test, layers, flops)}
    if flops is not None:
        point["flops_per_sample"] = flops.exit_cost(layers).mean().item()
        point["flops_full_depth"] = flops.full_depth
    return curves, point, layers
