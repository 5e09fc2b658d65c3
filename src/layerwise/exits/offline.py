"""Early exit on stored per-layer outputs: the threshold sweep, the choice of an operating point,
and the speed-up and FLOPs of an exit pattern (docs/method.md §6).

Everything here reads the exits of layers 1..L (each layer's own head in a multi-exit model, the
shared head otherwise) as `LayerExits`: every layer's prediction and each policy's score, plus
the loss of the target for a language model. A classification run builds them from the (L, N, K)
logits extraction stores; a language model's are reduced batch by batch as tokens leave the model
(`layerwise.hidden.tokens`), since its vocabulary-wide logits of every token cannot be kept.
Real early-exit inference on a model is in `layerwise.exits.online`. A sample exits at the first
layer whose test passes and at layer L at the latest. What a policy scores, how a score passes and
which thresholds are swept is its record in `layerwise.exits.policies`; the functions here take
its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch

from layerwise.exits.policies import POLICIES, lookup


@dataclass(frozen=True)
class LayerExits:
    """What early exit reads of the exits at layers 1..L for N samples."""

    predictions: torch.Tensor            # (L, N) each layer's predicted class
    labels: torch.Tensor                 # (N,)
    scores: dict[str, torch.Tensor] = field(default_factory=dict)  # policy -> (L, N)
    nll: torch.Tensor | None = None      # (L, N) -log p(label), reported as cross-entropy

    @classmethod
    def from_logits(cls, logits: torch.Tensor, labels: torch.Tensor,
                    policies: Sequence[str] = tuple(POLICIES), nll: bool = False
                    ) -> "LayerExits":
        """The exits of (L, N, K) logits: predictions, each policy's scores and (with `nll`)
        the negative log-likelihood of every label."""
        loss = None
        if nll:
            loss = -logits.float().log_softmax(-1).gather(
                -1, labels.expand(logits.shape[0], -1)[..., None])[..., 0]
        return cls(logits.argmax(-1), labels,
                   {name: lookup(name).score(logits) for name in policies}, loss)

    @classmethod
    def concat(cls, parts: Iterable["LayerExits"]) -> "LayerExits":
        """The samples of several batches' exits, in order."""
        parts = list(parts)
        nll = None if parts[0].nll is None else torch.cat([p.nll for p in parts], dim=1)
        return cls(torch.cat([p.predictions for p in parts], dim=1),
                   torch.cat([p.labels for p in parts]),
                   {name: torch.cat([p.scores[name] for p in parts], dim=1)
                    for name in parts[0].scores}, nll)

    @property
    def num_layers(self) -> int:
        return self.predictions.shape[0]

    def score(self, policy: str) -> torch.Tensor:
        if policy not in self.scores:
            raise ValueError(f"no {policy!r} scores among these exits: {sorted(self.scores)}")
        return self.scores[policy]


def as_exits(data, policy: str) -> LayerExits:
    """`data` as LayerExits: as is, or from a (logits, labels) pair scored for `policy`."""
    if isinstance(data, LayerExits):
        return data
    logits, labels = data
    return LayerExits.from_logits(logits, labels, (policy,))


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


def at_exit(values: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """(N,) the value, among (L, N) per-layer ones, of the exit each sample took."""
    return values[layers - 1, torch.arange(values.shape[1])]


def exit_predictions(logits: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """(N,) the prediction of the exit each sample took, from (L, N, K) logits."""
    return at_exit(logits.argmax(-1), layers)


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

    def scaled(self, factor: float) -> "FlopProfile":
        """Every count times `factor` (e.g. a block of T tokens' FLOPs per token: 1/T)."""
        return FlopProfile(self.embed * factor, tuple(b * factor for b in self.blocks),
                           tuple(h * factor for h in self.heads))

    @property
    def full_depth(self) -> float:
        """FLOPs of plain inference: embedding, every block and one head."""
        return self.embed + sum(self.blocks) + self.heads[-1]

    def exit_cost(self, layers: torch.Tensor) -> torch.Tensor:
        """(N,) FLOPs of each sample: blocks up to its exit and every head evaluated on the way."""
        per_layer = torch.tensor(self.blocks, dtype=torch.float64) + torch.tensor(
            self.heads, dtype=torch.float64)
        return self.embed + per_layer.cumsum(0)[layers - 1]


def exit_metrics(exits: LayerExits, layers: torch.Tensor,
                 flops: FlopProfile | None = None) -> dict[str, float]:
    """Accuracy, mean exit layer E[k], the paper's speed-up, (with losses) the cross-entropy
    at the exits, and (with `flops`) the FLOPs ratio (expected FLOPs over full-depth FLOPs) of
    one exit pattern."""
    correct = at_exit(exits.predictions, layers) == exits.labels
    metrics = {"accuracy": correct.double().mean().item(),
               "mean_exit_layer": layers.double().mean().item(),
               "speedup": speedup(layers, exits.num_layers)}
    if exits.nll is not None:
        metrics["cross_entropy"] = at_exit(exits.nll, layers).double().mean().item()
    if flops is not None:
        metrics["flops_ratio"] = flops.exit_cost(layers).mean().item() / flops.full_depth
    return metrics


# --- the sweep and the operating point ----------------------------------------------------
def candidate_thresholds(policy: str, val, points: int) -> list[float]:
    """Thresholds to sweep, from the validation split only (its LayerExits or (L, N, K)
    logits); the last never exits early.

    Score policies: `points` evenly spaced quantiles of the scores at layers 1..L-1; patience:
    0..L (`layerwise.exits.policies`).
    """
    scores = val.score(policy) if isinstance(val, LayerExits) else policy_scores(policy, val)
    return lookup(policy).candidates(scores, points)


def sweep(policy: str, exits: LayerExits, thresholds,
          flops: FlopProfile | None = None) -> pd.DataFrame:
    """One row per threshold: the threshold and its `exit_metrics`."""
    scores = exits.score(policy)
    rows = []
    for threshold in thresholds:
        layers = first_passing_layer(passes(policy, scores, threshold))
        rows.append({"policy": policy, "threshold": threshold,
                     **exit_metrics(exits, layers, flops)})
    return pd.DataFrame(rows)


def full_depth_accuracy(exits: LayerExits) -> float:
    """Accuracy of the last layer's exit, i.e. of the model without early exit."""
    return (exits.predictions[-1] == exits.labels).double().mean().item()


def select_threshold(policy: str, val, max_drop: float, points: int) -> float:
    """The threshold of a run's operating point, chosen on the validation split alone (its
    LayerExits, or a (logits, labels) pair).

    Among the candidate thresholds, the fastest (smallest mean exit layer) whose validation
    accuracy is at least full-depth validation accuracy minus `max_drop`; ties go to the more
    accurate, then the more cautious threshold.
    """
    val = as_exits(val, policy)
    table = sweep(policy, val, candidate_thresholds(policy, val, points))
    # A float tolerance so that the never-exit threshold (exactly full depth) always qualifies.
    bar = full_depth_accuracy(val) - max_drop - 1e-12
    allowed = table[table["accuracy"] >= bar]
    best = allowed.assign(cautious=lookup(policy).caution(allowed["threshold"])).sort_values(
        ["mean_exit_layer", "accuracy", "cautious"], ascending=[True, False, False]).iloc[0]
    return float(best["threshold"])


def evaluate_policy(policy: str, val, test, max_drop: float, points: int,
                    flops: FlopProfile | None = None
                    ) -> tuple[pd.DataFrame, dict, torch.Tensor]:
    """Sweep a policy on both splits (each its LayerExits or a (logits, labels) pair), fix
    its operating point on validation, and report it on test.

    Returns the sweep (one row per split and threshold, the chosen one marked `selected`), the
    operating point (validation and test metrics) and the test samples' exit layers there.
    """
    val, test = as_exits(val, policy), as_exits(test, policy)
    threshold = select_threshold(policy, val, max_drop, points)  # test is never passed in
    thresholds = candidate_thresholds(policy, val, points)
    curves = pd.concat([sweep(policy, data, thresholds, flops).assign(split=split)
                        for split, data in (("val", val), ("test", test))], ignore_index=True)
    curves["selected"] = curves["threshold"] == threshold
    val_point = exit_metrics(val, first_passing_layer(passes(policy, val.score(policy),
                                                             threshold)))
    layers = first_passing_layer(passes(policy, test.score(policy), threshold))
    point = {"policy": policy, "threshold": threshold, "layers": test.num_layers,
             "val_full_depth_accuracy": full_depth_accuracy(val),
             "val_accuracy": val_point["accuracy"],
             "val_mean_exit_layer": val_point["mean_exit_layer"],
             "full_depth_accuracy": full_depth_accuracy(test)}
    if test.nll is not None:
        point["full_depth_cross_entropy"] = test.nll[-1].double().mean().item()
    point.update(exit_metrics(test, layers, flops))
    if flops is not None:
        point["flops_per_sample"] = flops.exit_cost(layers).mean().item()
        point["flops_full_depth"] = flops.full_depth
    return curves, point, layers


@dataclass(frozen=True)
class ExitStudy:
    """A run's early-exit study as the tidy frames the workflow writes."""

    sweep: pd.DataFrame             # every policy's sweep on val and test
    operating_points: pd.DataFrame  # one row per policy
    exit_counts: pd.DataFrame       # policy, layer, count at the operating point (test)
    saturation: pd.DataFrame        # split, sample, saturation_layer of every test sample

    def write(self, sweep, operating_points, exit_counts, saturation) -> None:
        """Write the four frames as CSV files (atomically) to the given paths."""
        from layerwise.io import write_csv

        for path, frame in ((sweep, self.sweep), (operating_points, self.operating_points),
                            (exit_counts, self.exit_counts), (saturation, self.saturation)):
            write_csv(path, frame)

    def exits(self) -> dict[str, tuple[str, float]]:
        """Each policy's operating point as (policy, threshold), what real early exit runs."""
        return {p: (p, float(t)) for p, t in zip(self.operating_points["policy"],
                                          self.operating_points["threshold"])}


def evaluate_policies(policies: Sequence[str], val: LayerExits, test: LayerExits,
                      max_drop: float, points: int, flops: FlopProfile | None = None
                      ) -> ExitStudy:
    """`evaluate_policy` for every policy, the exit counts of its operating point, and the
    saturation layer of every test sample."""
    from layerwise.exits.saturation import layer_histogram, saturation_layers

    curves, rows, counts = [], [], []
    for policy in policies:
        curve, point, layers = evaluate_policy(policy, val, test, max_drop, points, flops)
        curves.append(curve)
        rows.append(point)
        counts.append(pd.DataFrame({"policy": policy, "layer": range(1, test.num_layers + 1),
                                    "count": layer_histogram(layers, test.num_layers)}))
    saturation = saturation_layers(test.predictions)
    return ExitStudy(pd.concat(curves, ignore_index=True), pd.DataFrame(rows),
                     pd.concat(counts, ignore_index=True),
                     pd.DataFrame({"split": "test", "sample": range(len(saturation)),
                                   "saturation_layer": saturation}))
