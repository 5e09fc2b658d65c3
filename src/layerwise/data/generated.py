"""Generated images of a declared shape: CIFAR's or MNIST's layout without their download.

A `generated` dataset has `image_size`, and under `generated:` its channels, classes and the
number of official training and test images. Each class is a fixed random pattern; an image is
its class's pattern blended with fresh noise, so the classes can be learned and a model's
accuracy means something, if little. Stored exactly as CIFAR and MNIST are (uint8, a stratified
val_fraction of the training images as val), so everything after preparation runs the same code
at the same shapes: this is how the paper's experiments are run at their model shapes offline
(benchmarks/paper_shapes.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from layerwise.data.images import write_uint8_dataset

PATTERN_SHARE = 0.5   # of each pixel's value; the rest is noise


def generated_images(size: int, channels: int, num_classes: int, count: int,
                     generator: np.random.Generator, patterns: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(count, channels, size, size) uint8 images of balanced random classes, and the labels."""
    labels = generator.permutation(np.arange(count) % num_classes).astype(np.int64)
    noise = generator.integers(0, 256, (count, channels, size, size))
    images = PATTERN_SHARE * patterns[labels] + (1 - PATTERN_SHARE) * noise
    return images.round().astype(np.uint8), labels


def prepare_generated(spec: dict, out_dir: Path, cache_dir: Path | None = None) -> None:
    shape = spec["generated"]
    size, channels, classes = spec["image_size"], shape["channels"], shape["num_classes"]
    generator = np.random.default_rng(spec["split_seed"])
    patterns = generator.integers(0, 256, (classes, channels, size, size))
    parts = {part: generated_images(size, channels, classes, shape[f"{part}_samples"],
                                    generator, patterns) for part in ("train", "test")}
    parts["classes"] = [f"class_{k}" for k in range(classes)]
    write_uint8_dataset(spec, out_dir, parts, "generated", classes)
