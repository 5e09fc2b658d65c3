"""scikit-learn's bundled 8x8 digits (the default study's vision data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from layerwise.data.prepared import stratified_split, write_prepared


def prepare_sklearn_digits(spec: dict, out_dir: Path, cache_dir: Path | None = None) -> None:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1] and standardized with train statistics."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    index = stratified_split(labels, spec["val_fraction"], spec["test_fraction"],
                             spec["split_seed"])
    train = images[index["train"]]
    mean, std = float(train.mean()), float(train.std())
    arrays = {split: (torch.from_numpy((images[idx] - mean) / std)[:, None],
                      torch.from_numpy(labels[idx])) for split, idx in index.items()}
    write_prepared(out_dir, arrays, {
        "source": "sklearn_digits", "kind": "image", "num_classes": 10,
        "input_shape": [1, 8, 8], "normalization": {"mean": mean, "std": std},
        "spec": spec,
    })
