import json

import numpy as np
import pytest
import torch

from layerwise.data.prepared import load_split, stratified_split
from layerwise.data.sources import prepare_dataset
from layerwise.io import ArtifactError, save_tensors

SPEC = {"source": "sklearn_digits", "val_fraction": 0.15, "test_fraction": 0.25, "split_seed": 0}


def test_split_is_deterministic_disjoint_complete_and_stratified():
    labels = np.repeat(np.arange(5), 40)
    a = stratified_split(labels, 0.2, 0.25, seed=3)
    b = stratified_split(labels, 0.2, 0.25, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    joined = np.concatenate(list(a.values()))
    assert sorted(joined.tolist()) == list(range(200))
    assert len(a["test"]) == 50 and len(a["val"]) == 40
    for part in a.values():  # every class equally represented
        assert len(set(np.bincount(labels[part]).tolist())) == 1
    c = stratified_split(labels, 0.2, 0.25, seed=4)
    assert not np.array_equal(a["test"], c["test"])


@pytest.fixture
def digits(tmp_path):
    prepare_dataset(SPEC, tmp_path)
    return tmp_path


def test_prepared_digits_are_described_and_standardized(digits):
    info = json.loads((digits / "info.json").read_text())
    assert sum(info["sizes"].values()) == 1797
    assert info["input_shape"] == [1, 8, 8] and info["num_classes"] == 10
    x, y, _ = load_split(digits, "train")
    assert x.shape == (info["sizes"]["train"], 1, 8, 8) and x.dtype == torch.float32
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-2
    assert torch.bincount(y, minlength=10).tolist() == info["class_counts"]["train"]


def test_preparing_twice_gives_identical_files(digits, tmp_path_factory):
    other = tmp_path_factory.mktemp("again")
    prepare_dataset(SPEC, other)
    assert (digits / "splits.safetensors").read_bytes() == (other / "splits.safetensors").read_bytes()


def test_split_that_does_not_match_its_description_is_refused(digits):
    x, y, _ = load_split(digits, "test")
    tensors = {f"{s}_{k}": t for s in ("train", "val", "test")
               for k, t in zip("xy", load_split(digits, s)[:2])}
    tensors["test_y"] = torch.roll(y, 1)
    save_tensors(digits / "splits.safetensors", tensors, {"source": "sklearn_digits"})
    with pytest.raises(ArtifactError, match="does not match info.json"):
        load_split(digits, "test")


def test_truncated_split_file_is_reported_by_name(digits):
    path = digits / "splits.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="splits.safetensors"):
        load_split(digits, "train")
