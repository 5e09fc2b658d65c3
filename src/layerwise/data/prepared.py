"""The prepared-dataset format: a folder of safetensors splits plus a JSON description.

A prepared dataset is a folder holding `splits.safetensors` (tensors `{split}_x`, `{split}_y` for
train, val and test) and `info.json` (source, shapes, class counts, sizes and hashes). A text
dataset (data/text.py) also holds the `tokenizer.json` that made its (N, 2, T) token inputs.
The paper's image datasets (data/images.py) store uint8 pixels (CIFAR, MNIST) or, for ImageNet,
only the index of a local image folder whose images are streamed from disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from layerwise.data import IGNORE
from layerwise.data.image_storage import ImageFolderSplit, decode_paths, decode_uint8, encode_paths
from layerwise.io import ArtifactError, load_tensors, read_json, save_tensors, write_json

SPLITS = ("train", "val", "test")


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int) -> dict[str, np.ndarray]:
    """Deterministic stratified train/val/test indices (sorted within each split)."""
    from sklearn.model_selection import train_test_split  # only data preparation needs it

    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=labels,
                                  random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=labels[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def write_prepared(out_dir: Path, arrays: dict[str, tuple[torch.Tensor, torch.Tensor]],
                   info: dict) -> None:
    """Write splits and their description; `arrays` maps split -> (inputs, labels).

    A split longer than the spec's `max_samples` for it keeps a fixed sample of that many, drawn
    with the split seed and kept in order (so every run of a study reads the same samples).
    The class counts count the labels that are not IGNORE: a language model's (N, T) next-token
    targets hold IGNORE at padding, and its classes are the vocabulary."""
    spec = info.get("spec") or {}
    caps = spec.get("max_samples") or {}
    tensors, sizes, counts, hashes, targets = {}, {}, {}, {}, {}
    for split, (x, y) in arrays.items():
        cap = caps.get(split)
        if cap is not None and len(y) > cap:
            generator = torch.Generator().manual_seed(int(spec.get("split_seed", 0)))
            rows = torch.randperm(len(y), generator=generator)[:cap].sort().values
            if info.get("storage") == "image_folder":   # x is the paths' bytes, not a row each
                paths = decode_paths(x)
                x = encode_paths([paths[i] for i in rows.tolist()])
            else:
                x = x[rows]
            y = y[rows]
        tensors[f"{split}_x"], tensors[f"{split}_y"] = x, y
        sizes[split] = len(y)
        targets[split] = int((y != IGNORE).sum())
        counts[split] = torch.bincount(y[y != IGNORE], minlength=info["num_classes"]).tolist()
        hashes[split] = {"x": _sha256(x), "y": _sha256(y)}
    save_tensors(out_dir / "splits.safetensors", tensors, {"source": info["source"]})
    extra = {}
    if info.get("kind") == "lm":  # a language model's samples are its targets
        extra = {"tokens": targets}
    write_json(out_dir / "info.json", {**info, "sizes": sizes, "class_counts": counts,
                                       "sha256": hashes, **extra})


def subset_order(n: int) -> torch.Tensor:
    """The order a split's fixed random subsets are drawn in (analysis.train_samples): one
    permutation of its n samples, the same for every run of a dataset; a subset of k is the
    first k, ascending."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))


def load_split(data_dir: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Inputs, labels and the dataset description of one split, checked against info.json."""
    data_dir = Path(data_dir)
    info = read_json(data_dir / "info.json")
    tensors, _ = load_tensors(data_dir / "splits.safetensors", keys=(f"{split}_x", f"{split}_y"))
    x, y = tensors[f"{split}_x"], tensors[f"{split}_y"]
    if len(y) != info["sizes"][split] or _sha256(y) != info["sha256"][split]["y"]:
        raise ArtifactError(f"{data_dir}: {split} split does not match info.json; prepare it again")
    # Image sources (data/images.py) store uint8 pixels, normalized here, or, for a dataset too
    # large for memory, the index of an image folder, whose inputs are then decoded on demand.
    if info.get("storage") == "uint8":
        x = decode_uint8(x, info["normalization"])
    elif info.get("storage") == "image_folder":
        x = ImageFolderSplit.from_index(x, y, info)
    return x, y, info
