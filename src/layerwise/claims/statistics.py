"""The claims' statistics on plain arrays, free of any table layout, so the same function reads
the study's curves and the paper's digitized ones."""

from __future__ import annotations

import math

import numpy as np


def closeness_fraction(matrix) -> float:
    """C2: of all steps one layer towards the diagonal (row l, from column l' to l' ± 1 towards
    l), the fraction along which the similarity does not fall. 1.0 when every row peaks on the
    diagonal and falls off monotonically on both sides."""
    matrix = np.asarray(matrix, dtype=float)
    size = matrix.shape[0]
    if matrix.shape != (size, size) or size < 2:
        raise ValueError(f"expected a square matrix of at least 2 layers, got {matrix.shape}")
    rises = []
    for row in range(size):
        for col in range(size):
            if col == row:
                continue
            closer = col + 1 if col < row else col - 1
            rises.append(matrix[row, closer] >= matrix[row, col] - 1e-12)
    return float(np.mean(rises))


def largest_drop(curve) -> float:
    """C4: the largest amount by which a layer falls below the best earlier layer (>= 0)."""
    curve = np.asarray(curve, dtype=float)
    if curve.size == 0:
        raise ValueError("empty curve")
    return float(np.max(np.maximum.accumulate(curve) - curve))


def intermediate_gain(better, worse) -> float:
    """C3: mean over layers 1..L-1 of better - worse (curves over layers 1..L)."""
    better, worse = np.asarray(better, dtype=float), np.asarray(worse, dtype=float)
    if better.shape != worse.shape or better.size < 2:
        raise ValueError(f"curves of different or too few layers: {better.shape}, {worse.shape}")
    return float(np.mean(better[:-1] - worse[:-1]))


def early_fraction(saturation_layers, num_layers: int, fraction: float) -> float:
    """C7: fraction of samples whose saturation layer is at most max(1, floor(fraction * L))."""
    layers = np.asarray(saturation_layers)
    if layers.size == 0:
        raise ValueError("no saturation layers")
    return float(np.mean(layers <= early_layer(num_layers, fraction)))


def early_layer(num_layers: int, fraction: float) -> int:
    """The last layer that counts as early for C7."""
    return max(1, int(math.floor(fraction * num_layers + 1e-9)))


def cka_cos_gap(cka_to_last, cos_to_last) -> float:
    """C8 (one model): mean over layers 1..L-1 of CKA(l, L) - COS(l, L), from curves over
    layers 1..L against the last layer."""
    cka, cos = np.asarray(cka_to_last, float), np.asarray(cos_to_last, float)
    if cka.shape != cos.shape or cka.size < 2:
        raise ValueError(f"curves of different or too few layers: {cka.shape}, {cos.shape}")
    return float(np.mean(cka[:-1] - cos[:-1]))
