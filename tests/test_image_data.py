"""The paper's image datasets, offline, from small files in their real on-disk formats: CIFAR
binary records in a tar.gz with the real member names, MNIST gzipped idx files, an ImageFolder
tree of PNGs standing in for ImageNet. The published md5s are swapped for those of the small
files; everything after the download (integrity check, reading, splitting, normalizing,
streaming) runs as it would on the real data."""

import dataclasses
import gzip
import hashlib
import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from layerwise.study.config import ConfigError, validate_config
from layerwise.data import images
from layerwise.data.prepared import load_split
from layerwise.data.sources import prepare_dataset
from layerwise.data.image_storage import DatasetError, ImageFolderSplit
from layerwise.data.downloads import DownloadError

OFFLINE = ("file:///nonexistent/layerwise-test-download",)  # fails at once, never the network


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cifar_bytes(labels: np.ndarray, pixels: np.ndarray, coarse: np.ndarray | None = None) -> bytes:
    """Records of [coarse label,] label, 3072 pixel bytes (R, G, B planes, row-major)."""
    head = labels[:, None] if coarse is None else np.stack([coarse, labels], axis=1)
    return np.concatenate([head.astype(np.uint8), pixels.reshape(len(labels), -1)], axis=1).tobytes()


def write_tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def fake_images(rng, n):
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def pixels_of(x: torch.Tensor, info: dict) -> np.ndarray:
    """Normalized inputs back to the stored bytes."""
    mean = torch.tensor(info["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(info["normalization"]["std"]).view(1, -1, 1, 1)
    return torch.round((x * std + mean) * 255).to(torch.uint8).numpy()


@pytest.fixture
def cifar10(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    members, train_parts = {}, []
    for i in range(1, 6):  # five training batches of 20 records (2 per class), one test batch
        labels = np.tile(np.arange(10), 2)
        pix = fake_images(rng, 20)
        train_parts.append((labels, pix))
        members[f"cifar-10-batches-bin/data_batch_{i}.bin"] = cifar_bytes(labels, pix)
    test_labels, test_pix = np.arange(10), fake_images(rng, 10)
    members["cifar-10-batches-bin/test_batch.bin"] = cifar_bytes(test_labels, test_pix)
    members["cifar-10-batches-bin/batches.meta.txt"] = "\n".join(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"]).encode() + b"\n\n"
    cache = tmp_path / "downloads"
    cache.mkdir()
    archive = cache / "cifar-10-binary.tar.gz"
    write_tar(archive, members)
    layout = images.CIFAR["cifar10"]
    remote = dataclasses.replace(layout.remote, md5=md5(archive), urls=OFFLINE)
    monkeypatch.setitem(images.CIFAR, "cifar10", dataclasses.replace(layout, remote=remote))
    return cache, train_parts, (test_labels, test_pix)


def test_cifar10_binary_records_become_normalized_splits(cifar10, tmp_path):
    cache, train_parts, (test_labels, test_pix) = cifar10
    spec = {"source": "cifar10", "val_fraction": 0.2, "test_fraction": 0.25, "split_seed": 0}
    prepare_dataset(spec, tmp_path / "out", cache)
    x, y, info = load_split(tmp_path / "out", "test")
    assert info["sizes"] == {"train": 80, "val": 20, "test": 10}
    assert info["input_shape"] == [3, 32, 32] and info["num_classes"] == 10
    assert info["classes"][0] == "airplane" and len(info["classes"]) == 10
    assert x.dtype == torch.float32 and x.shape == (10, 3, 32, 32)
    assert torch.equal(y, torch.from_numpy(test_labels))
    assert np.array_equal(pixels_of(x, info), test_pix)  # channel planes in the right order
    train_x, train_y, _ = load_split(tmp_path / "out", "train")
    assert abs(train_x.mean().item()) < 0.05 and abs(train_x.std().item() - 1) < 0.05
    assert torch.bincount(train_y).tolist() == [8] * 10  # stratified: 2 of 10 per class to val
    all_train = np.concatenate([p for _, p in train_parts])
    val_x, _, _ = load_split(tmp_path / "out", "val")
    seen = {r.tobytes() for r in np.concatenate([pixels_of(train_x, info), pixels_of(val_x, info)])}
    assert seen == {r.tobytes() for r in all_train}  # train + val is the official training set


def test_cifar100_uses_the_fine_label(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    fine = np.tile(np.arange(100), 3)
    coarse = fine // 5
    test_fine = np.arange(100)
    members = {
        "cifar-100-binary/train.bin": cifar_bytes(fine, fake_images(rng, 300), coarse),
        "cifar-100-binary/test.bin": cifar_bytes(test_fine, fake_images(rng, 100), test_fine // 5),
        "cifar-100-binary/fine_label_names.txt": "\n".join(f"c{i}" for i in range(100)).encode(),
    }
    archive = tmp_path / "cifar-100-binary.tar.gz"
    write_tar(archive, members)
    layout = images.CIFAR["cifar100"]
    monkeypatch.setitem(images.CIFAR, "cifar100", dataclasses.replace(
        layout, remote=dataclasses.replace(layout.remote, md5=md5(archive), urls=OFFLINE)))
    spec = {"source": "cifar100", "val_fraction": 1 / 3, "test_fraction": 0.25, "split_seed": 0}
    prepare_dataset(spec, tmp_path / "out", tmp_path)
    _, y, info = load_split(tmp_path / "out", "test")
    assert info["num_classes"] == 100 and torch.equal(y, torch.from_numpy(test_fine))
    assert info["sizes"]["train"] == 200


def test_an_archive_with_the_wrong_md5_is_refused_by_name(cifar10, tmp_path):
    cache, _, _ = cifar10
    archive = cache / "cifar-10-binary.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-10])  # truncated: md5 no longer matches
    spec = {"source": "cifar10", "val_fraction": 0.2, "test_fraction": 0.25, "split_seed": 0}
    with pytest.raises(DownloadError, match="cifar-10-binary.tar.gz.*place the file at"):
        prepare_dataset(spec, tmp_path / "out", cache)


def test_records_that_do_not_fill_whole_records_are_refused():
    with pytest.raises(DatasetError, match="whole number of 3073-byte records"):
        images.cifar_records(b"\0" * 3000, images.CIFAR["cifar10"], "x.bin")


def idx_bytes(array: np.ndarray) -> bytes:
    return (bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(np.uint8).tobytes())


def test_mnist_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    arrays = {"train_images": rng.integers(0, 256, (40, 28, 28)),
              "train_labels": np.tile(np.arange(10), 4),
              "test_images": rng.integers(0, 256, (10, 28, 28)), "test_labels": np.arange(10)}
    table = {}
    for key, (filename, _) in images.MNIST.items():
        path = tmp_path / filename
        path.write_bytes(gzip.compress(idx_bytes(arrays[key])))
        table[key] = (filename, md5(path))
    monkeypatch.setattr(images, "MNIST", table)
    monkeypatch.setattr(images, "MNIST_MIRRORS", ("file:///nonexistent/",))
    spec = {"source": "mnist", "val_fraction": 0.25, "test_fraction": 0.25, "split_seed": 0}
    prepare_dataset(spec, tmp_path / "out", tmp_path)
    x, y, info = load_split(tmp_path / "out", "test")
    assert x.shape == (10, 1, 28, 28) and info["input_shape"] == [1, 28, 28]
    assert np.array_equal(pixels_of(x, info)[:, 0], arrays["test_images"])
    assert info["sizes"] == {"train": 30, "val": 10, "test": 10}
    with pytest.raises(DatasetError, match="not an idx file"):
        images.read_idx(b"\0\0\x0d\x01" + b"\0" * 8, "bad")


# --- ImageNet stand-in: an ImageFolder tree of PNGs ---------------------------------------------
COLOURS = {"n001": (200, 30, 30), "n002": (30, 200, 30), "n003": (30, 30, 200)}


def write_png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """train/ with 8 images per class, val/ with 2, in varied sizes; each class one colour with
    a little noise."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(3)
    for split, count in (("train", 8), ("val", 2)):
        for name, colour in COLOURS.items():
            for i in range(count):
                h, w = rng.integers(20, 40, size=2)
                array = np.clip(np.array(colour) + rng.integers(-10, 11, (h, w, 3)), 0, 255)
                write_png(root / split / name / f"{name}_{i}.png", array.astype(np.uint8))
    return root


IMAGENET_SPEC = {"source": "imagenet", "val_fraction": 0.25, "test_fraction": 0.25,
                 "split_seed": 0, "image_size": 16}


@pytest.fixture(scope="module")
def prepared_folder(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    prepare_dataset({**IMAGENET_SPEC, "root": str(image_folder)}, out)
    return out


def test_an_image_folder_split_keeps_a_sample_of_its_images(image_folder, tmp_path):
    out = tmp_path / "capped"
    prepare_dataset({**IMAGENET_SPEC, "root": str(image_folder), "max_samples": {"test": 4}}, out)
    x, y, info = load_split(out, "test")
    assert info["sizes"]["test"] == 4 and len(x) == len(y) == 4
    for path, label in zip(x.files, y.tolist()):   # each kept path with its own label
        assert Path(path).parent.name == info["classes"][label]


def test_image_folder_is_indexed_not_copied_and_streams(prepared_folder, image_folder):
    x, y, info = load_split(prepared_folder, "test")
    assert info["storage"] == "image_folder" and info["root"] == str(image_folder)
    assert info["sizes"] == {"train": 18, "val": 6, "test": 6}
    assert info["classes"] == sorted(COLOURS) and info["input_shape"] == [3, 16, 16]
    assert (prepared_folder / "splits.safetensors").stat().st_size < 10_000  # an index only
    assert isinstance(x, ImageFolderSplit) and len(x) == 6
    batch = x[0:6]
    assert batch.shape == (6, 3, 16, 16) and batch.dtype == torch.float32
    mean = torch.tensor(info["normalization"]["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(info["normalization"]["std"]).view(1, 3, 1, 1)
    colours = ((batch * std + mean) * 255).mean(dim=(2, 3))
    for row, label in zip(colours, y.tolist()):
        expected = torch.tensor(COLOURS[info["classes"][label]], dtype=torch.float32)
        assert (row - expected).abs().max() < 6
    assert torch.equal(x[torch.tensor([4, 1])], torch.stack([x[4], x[1]]))


def test_a_streamed_split_trains_like_the_same_data_in_memory(prepared_folder, tmp_path):
    """The DataLoader path (workers decoding from disk, augmentation after the copy) gives the
    weights that the same images, decoded up front and kept resident, give."""
    from layerwise.models import build_model
    from layerwise.seeding import seed_everything
    from layerwise.train.loop import TrainSpec, train

    streamed = {s: load_split(prepared_folder, s)[:2] for s in ("train", "val")}
    info = load_split(prepared_folder, "val")[2]
    resident = {s: (x[0:len(x)], y) for s, (x, y) in streamed.items()}
    spec = TrainSpec(method="aligned", seed=0, epochs=2, batch_size=8, lr=1e-3, weight_decay=0.0,
                     augment={"crop_padding": 2, "flip": True, "rotation_degrees": 10})
    model_spec = dict(arch="vit", depth=2, width=16, heads=2, patch_size=4, mlp_ratio=2.0,
                      head_input="final_norm")
    states, logs = [], []
    for i, (data, workers) in enumerate([(resident, 0), (streamed, 0), (streamed, 2)]):
        seed_everything(0)
        model = build_model(model_spec, info)
        logs.append(train(model, data, spec, tmp_path / f"{i}.pt", "h", torch.device("cpu"),
                          workers=workers))
        states.append(model.state_dict())
    for state in states[1:]:
        for key, value in states[0].items():
            torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    assert {"samples_per_second", "peak_memory_mb"} <= set(logs[1][-1])
    assert logs[1][-1]["samples_per_second"] > 0 and logs[1][-1]["peak_memory_mb"] > 0


def test_extraction_of_a_streamed_subset_decodes_only_those_images(prepared_folder):
    from layerwise.train.batches import take

    x, y, _ = load_split(prepared_folder, "train")
    part = take(x, torch.tensor([3, 0, 7]))
    assert isinstance(part, ImageFolderSplit) and len(part) == 3
    assert torch.equal(part[0:3], x[torch.tensor([3, 0, 7])])
    assert torch.equal(part.labels, y[torch.tensor([3, 0, 7])])


def test_a_missing_image_folder_fails_at_prepare_time_with_the_layout(tmp_path, image_folder):
    spec = {**IMAGENET_SPEC, "root": str(tmp_path / "nowhere")}
    with pytest.raises(DatasetError, match="does not exist; it must hold train/ and val/"):
        prepare_dataset(spec, tmp_path / "out")
    (tmp_path / "half" / "train" / "n001").mkdir(parents=True)
    with pytest.raises(DatasetError, match="has no val/ folder"):
        prepare_dataset({**spec, "root": str(tmp_path / "half")}, tmp_path / "out")


@pytest.mark.parametrize("root, ok", [("/data/imagenet", True), ("data/imagenet", True),
                                      ("../imagenet", False), ("data/../../x", False)])
def test_dataset_root_is_absolute_or_inside_the_project(root, ok):
    config = {"datasets": {"inet": {"source": "imagenet", "root": root}},
              "experiments": [{"name": "x", "dataset": "inet",
                               "model": {"patch_size": 16}}]}
    if ok:
        assert validate_config(config)["datasets"]["inet"]["image_size"] == 224
    else:
        with pytest.raises(ConfigError, match="datasets.inet.root: .* expected an absolute "
                                              "path, or a path inside the project"):
            validate_config(config)


def test_image_only_keys_are_checked():
    base = {"experiments": [{"name": "x", "dataset": "d", "model": {"patch_size": 4}}]}
    with pytest.raises(ConfigError, match="required key 'root' is missing for source imagenet"):
        validate_config({**base, "datasets": {"d": {"source": "imagenet"}}})
    with pytest.raises(ConfigError, match="no root for source cifar10"):
        validate_config({**base, "datasets": {"d": {"source": "cifar10", "root": "/x"}}})
    with pytest.raises(ConfigError, match="patch_size: 5 .* divisor of the image side 32"):
        validate_config({"datasets": {"d": {"source": "cifar10"}},
                         "experiments": [{"name": "x", "dataset": "d",
                                          "model": {"patch_size": 5}}]})


GENERATED = {"source": "generated", "image_size": 12, "val_fraction": 0.25, "split_seed": 3,
             "generated": {"channels": 1, "num_classes": 4, "train_samples": 40,
                           "test_samples": 12}}


def test_generated_images_have_the_declared_shape_and_learnable_classes(tmp_path):
    prepare_dataset(GENERATED, tmp_path / "gen")
    x, y, info = load_split(tmp_path / "gen", "train")
    assert info["input_shape"] == [1, 12, 12] and info["num_classes"] == 4
    assert info["storage"] == "uint8" and len(y) == 30
    assert len(load_split(tmp_path / "gen", "val")[1]) == 10
    test_x, test_y, _ = load_split(tmp_path / "gen", "test")
    assert test_x.shape == (12, 1, 12, 12) and np.bincount(test_y.numpy()).tolist() == [3] * 4
    # the nearest class mean of the training images names each test image's class
    means = torch.stack([x[y == k].mean(0) for k in range(4)]).flatten(1)
    nearest = torch.cdist(test_x.flatten(1), means).argmin(1)
    assert (nearest == test_y).float().mean() == 1.0
    prepare_dataset(GENERATED, tmp_path / "again")   # the same images from the same seed
    assert torch.equal(load_split(tmp_path / "again", "test")[0], test_x)


def test_generated_images_declare_their_shape():
    base = {"experiments": [{"name": "x", "dataset": "d", "model": {"patch_size": 4}}]}
    spec = {key: value for key, value in GENERATED.items() if key != "generated"}
    with pytest.raises(ConfigError, match="required key 'generated' is missing"):
        validate_config({**base, "datasets": {"d": spec}})
    with pytest.raises(ConfigError, match="no generated for source cifar10"):
        validate_config({**base, "datasets": {"d": {"source": "cifar10",
                                                    "generated": GENERATED["generated"]}}})
    with pytest.raises(ConfigError, match="patch_size: 5 .* divisor of the image side 12"):
        validate_config({"datasets": {"d": GENERATED}, "experiments": [
            {"name": "x", "dataset": "d", "model": {"patch_size": 5}}]})
