"""Saturation events and effective depth (docs/method.md §7).

The saturation layer of a sample is the smallest layer l such that the prediction at l equals
the prediction at every later layer up to L: the layer from which the model's own final
prediction (not the label) is already settled. The epsilon-effective depth of a model is the
smallest layer whose accuracy reaches a bar (else L).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the figures read effective depths without importing torch
    import torch


def saturation_layers(predictions: torch.Tensor) -> torch.Tensor:
    """(N,) saturation layer in 1..L from (L, N) predictions of layers 1..L."""
    differs = predictions != predictions[-1]
    num_layers = predictions.shape[0]
    # The last layer that disagrees with the final prediction, counted from the end: flip and
    # take the first True. A sample that never disagrees saturates at layer 1.
    from_end = differs.flip(0).int().argmax(0)
    last_differing = num_layers - from_end  # 1-based layer of the last disagreement
    return (last_differing + 1).where(differs.any(0), 1)


def layer_histogram(layers: torch.Tensor, num_layers: int) -> np.ndarray:
    """(L,) how many samples have each layer 1..L."""
    return (layers - 1).bincount(minlength=num_layers)[:num_layers].numpy()


def effective_depth(accuracy, epsilon: float, relative: bool = False) -> int:
    """The smallest layer l (1-based) with accuracy[l-1] >= 1 - epsilon, else L.

    With `relative`, the bar is (1 - epsilon) times the last layer's accuracy instead, so a
    model that never reaches 1 - epsilon still has a depth at which it is nearly done.
    """
    accuracy = np.asarray(accuracy, dtype=float)
    bar = (1 - epsilon) * (accuracy[-1] if relative else 1.0)
    reached = np.flatnonzero(accuracy >= bar - 1e-12)
    return int(reached[0]) + 1 if reached.size else len(accuracy)


def effective_depths(accuracy: pd.DataFrame, epsilon: float) -> pd.DataFrame:
    """Absolute and relative effective depth of every run, seed and split.

    `accuracy` has columns run, seed, split, layer, accuracy (layer 0, the embedding, is
    ignored); the result has run, seed, split, depth (L), effective_depth, relative_depth.
    """
    rows = []
    for (run, seed, split), group in accuracy[accuracy["layer"] >= 1].groupby(
            ["run", "seed", "split"], sort=False):
        curve = group.sort_values("layer")["accuracy"].to_numpy()
        rows.append({"run": run, "seed": seed, "split": split, "depth": len(curve),
                     "effective_depth": effective_depth(curve, epsilon),
                     "relative_depth": effective_depth(curve, epsilon, relative=True)})
    return pd.DataFrame(rows)
