"""The paper's image datasets: CIFAR-10 and CIFAR-100 (binary version), MNIST (idx files), and
ImageNet-1K from a local ImageFolder tree (streamed from disk, never copied).

CIFAR and MNIST are downloaded with torchvision's download utility, checked against the md5
their publishers print, and read with numpy from the archive's members (CIFAR's binary version:
fixed-size records of label byte(s) and 3072 pixel bytes; MNIST's idx files): nothing is
unpickled. Their pixels are stored as uint8 in splits.safetensors and turned into normalized
float32 by `load_split` (per-channel mean and std of our training split, in info.json).

ImageNet is too large for one in-memory file: its prepared folder holds only the index, the
relative path of every image (UTF-8, newline-separated, as the uint8 tensor `{split}_x`) and its
label (`{split}_y`); `load_split` returns an `ImageFolderSplit` for the inputs, which decodes
images on demand (a DataLoader's workers during training, see layerwise/train/batches.py). How
the stored inputs are read back is data/image_storage.py.

Splits: the official test set (ImageNet: the official validation set, as the paper reports) is
our `test`; our `val`, for model selection and early-exit calibration, is a stratified
`val_fraction` of the official training set; `test_fraction` is unused.
"""

from __future__ import annotations

import gzip
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from layerwise.data.downloads import DownloadError
from layerwise.data.image_storage import DatasetError, encode_paths
from layerwise.data.prepared import write_prepared


# --- downloads ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Remote:
    filename: str
    md5: str
    urls: tuple[str, ...]  # mirrors, tried in order


def fetch(remote: Remote, cache_dir: Path) -> Path:
    """The file in `cache_dir`: kept if its md5 matches, else downloaded (torchvision's
    `download_url` checks the md5 after the download)."""
    from torchvision.datasets.utils import check_integrity, download_url

    path = Path(cache_dir) / remote.filename
    if check_integrity(str(path), remote.md5):
        return path
    errors = []
    for url in remote.urls:
        try:
            download_url(url, str(cache_dir), remote.filename, remote.md5)
            return path
        except Exception as err:  # noqa: BLE001 (network, HTTP and integrity errors alike)
            errors.append(f"{url}: {err}")
    raise DownloadError(f"could not download {remote.filename} with md5 {remote.md5} "
                        f"({'; '.join(errors)}); on a machine without internet, place the file "
                        f"at {path}")


# --- CIFAR (binary version) -------------------------------------------------------------------
@dataclass(frozen=True)
class CifarLayout:
    remote: Remote
    folder: str                   # the archive's top folder
    train_members: tuple[str, ...]
    test_members: tuple[str, ...]
    label_bytes: int              # label bytes before the 3072 pixel bytes of a record
    label_index: int              # which label byte is the class (CIFAR-100: the fine label)
    num_classes: int
    names_member: str             # class names, one a line


_TORONTO = "https://www.cs.toronto.edu/~kriz/"
CIFAR = {
    "cifar10": CifarLayout(
        Remote("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
               (_TORONTO + "cifar-10-binary.tar.gz",)),
        "cifar-10-batches-bin", tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        ("test_batch.bin",), 1, 0, 10, "batches.meta.txt"),
    "cifar100": CifarLayout(
        Remote("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8",
               (_TORONTO + "cifar-100-binary.tar.gz",)),
        "cifar-100-binary", ("train.bin",), ("test.bin",), 2, 1, 100, "fine_label_names.txt"),
}
CIFAR_PIXELS = 3 * 32 * 32


def _member_bytes(tar: tarfile.TarFile, archive: Path, name: str) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise DatasetError(f"{archive}: no member {name}; not the expected archive") from None
    if not member.isfile():
        raise DatasetError(f"{archive}: member {name} is not a regular file")
    return tar.extractfile(member).read()


def cifar_records(data: bytes, layout: CifarLayout, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 images and (N,) int64 labels of a CIFAR binary file."""
    record = layout.label_bytes + CIFAR_PIXELS
    if not data or len(data) % record:
        raise DatasetError(f"{where}: {len(data)} bytes is not a whole number of "
                           f"{record}-byte records")
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, layout.label_index].astype(np.int64)
    if labels.max() >= layout.num_classes:
        raise DatasetError(f"{where}: label {labels.max()} >= {layout.num_classes} classes")
    return rows[:, layout.label_bytes:].reshape(-1, 3, 32, 32).copy(), labels


def read_cifar(archive: Path, layout: CifarLayout) -> dict:
    """{"train": (images, labels), "test": (...), "classes": [...]} from the binary tar.gz."""
    out = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for part, members in (("train", layout.train_members), ("test", layout.test_members)):
                chunks = [cifar_records(_member_bytes(tar, archive, f"{layout.folder}/{m}"),
                                        layout, f"{archive}:{m}") for m in members]
                out[part] = (np.concatenate([c[0] for c in chunks]),
                             np.concatenate([c[1] for c in chunks]))
            names = _member_bytes(tar, archive, f"{layout.folder}/{layout.names_member}")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DatasetError(f"{archive}: not a readable tar.gz ({err})") from None
    out["classes"] = [n.strip() for n in names.decode("utf-8").splitlines() if n.strip()]
    return out


# --- MNIST (idx files) ------------------------------------------------------------------------
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
MNIST = {  # file -> published md5 (the gzipped idx files)
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}


def read_idx(data: bytes, where: str) -> np.ndarray:
    """An idx array of unsigned bytes (magic 0x00 0x00 0x08 <dims>, big-endian sizes)."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DatasetError(f"{where}: not an idx file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != int(np.prod(dims)):
        raise DatasetError(f"{where}: {len(data) - header} data bytes, expected {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_mnist(cache_dir: Path) -> dict:
    arrays = {}
    for key, (filename, md5) in MNIST.items():
        path = fetch(Remote(filename, md5, tuple(m + filename for m in MNIST_MIRRORS)), cache_dir)
        try:
            arrays[key] = read_idx(gzip.decompress(path.read_bytes()), str(path))
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise DatasetError(f"{path}: not a readable gzip file ({err})") from None
    out = {}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"].astype(np.int64)
        if images.ndim != 3 or len(images) != len(labels):
            raise DatasetError(f"MNIST {part}: {images.shape} images for {labels.shape} labels")
        out[part] = (images[:, None], labels)
    out["classes"] = [str(d) for d in range(10)]
    return out


# --- writing small image datasets -----------------------------------------------------------
def _val_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) indices: a stratified val_fraction of the official training set."""
    from sklearn.model_selection import train_test_split  # only data preparation needs it

    index = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train, val = train_test_split(index, test_size=val_fraction, stratify=stratify,
                                  random_state=seed)
    return np.sort(train), np.sort(val)


def channel_statistics(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) on the [0, 1] scale."""
    scaled = images.astype(np.float64) / 255.0
    return (scaled.mean(axis=(0, 2, 3)).tolist(), scaled.std(axis=(0, 2, 3)).tolist())


def write_uint8_dataset(spec: dict, out_dir: Path, parts: dict, source: str,
                        num_classes: int) -> None:
    train_x, train_y = parts["train"]
    train, val = _val_split(train_y, spec["val_fraction"], spec["split_seed"])
    mean, std = channel_statistics(train_x[train])
    arrays = {"train": (train_x[train], train_y[train]), "val": (train_x[val], train_y[val]),
              "test": parts["test"]}
    arrays = {s: (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))
              for s, (x, y) in arrays.items()}
    write_prepared(Path(out_dir), arrays, {
        "source": source, "kind": "image", "num_classes": num_classes,
        "input_shape": list(train_x.shape[1:]), "storage": "uint8",
        "normalization": {"mean": mean, "std": std}, "classes": parts["classes"],
        "test_is": "the official test set", "spec": spec,
    })


def prepare_cifar(spec: dict, out_dir: Path, cache_dir: Path | None = None) -> None:
    layout = CIFAR[spec["source"]]
    archive = fetch(layout.remote, Path(cache_dir or Path(out_dir) / "downloads"))
    write_uint8_dataset(spec, out_dir, read_cifar(archive, layout), spec["source"],
                        layout.num_classes)


def prepare_mnist(spec: dict, out_dir: Path, cache_dir: Path | None = None) -> None:
    parts = read_mnist(Path(cache_dir or Path(out_dir) / "downloads"))
    write_uint8_dataset(spec, out_dir, parts, "mnist", 10)


# --- ImageNet: an ImageFolder tree, streamed ----------------------------------------------------
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # timm's IMAGENET_DEFAULT_MEAN / _STD, as DeiT uses
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875                  # resize the shorter side to size / 0.875, crop the centre


def resolve_root(root: str) -> Path:
    """The folder a dataset's `root` names: absolute, or relative to the working directory
    (the project, when Snakemake runs the job)."""
    return Path(root).expanduser().resolve()


def _image_folder(folder: Path, class_to_idx: dict | None = None):
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    classes, found = find_classes(str(folder))
    samples = make_dataset(str(folder), class_to_idx or found, extensions=IMG_EXTENSIONS)
    return classes, found, samples


def prepare_imagenet(spec: dict, out_dir: Path, cache_dir: Path | None = None) -> None:
    """Index an ImageFolder tree `root` with train/<class>/<image> and val/<class>/<image>."""
    root = resolve_root(spec["root"])
    layout = ("it must hold train/ and val/ in ImageFolder layout (<split>/<class>/<image>; "
              "ImageNet's validation images sorted into class folders)")
    if not root.is_dir():
        raise DatasetError(f"dataset root {spec['root']} ({root}) does not exist; {layout}")
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise DatasetError(f"dataset root {root} has no {part}/ folder; {layout}")
    try:
        classes, class_to_idx, train_samples = _image_folder(root / "train")
        val_classes, _, _ = _image_folder(root / "val")
        _, _, test_samples = _image_folder(root / "val", class_to_idx)
    except (FileNotFoundError, OSError) as err:
        raise DatasetError(f"dataset root {root}: {err}; {layout}") from None
    if val_classes != classes:
        extra = sorted(set(val_classes) ^ set(classes))[:5]
        raise DatasetError(f"dataset root {root}: val/ and train/ have different classes "
                           f"(e.g. {', '.join(extra)})")

    def relative(samples):
        files = [str(Path(path).relative_to(root)) for path, _ in samples]
        if any("\n" in name for name in files):
            raise DatasetError(f"dataset root {root}: a file name contains a newline")
        return files, np.asarray([label for _, label in samples], dtype=np.int64)

    train_files, train_y = relative(train_samples)
    test_files, test_y = relative(test_samples)
    train, val = _val_split(train_y, spec["val_fraction"], spec["split_seed"])
    arrays = {"train": (encode_paths([train_files[i] for i in train]), train_y[train]),
              "val": (encode_paths([train_files[i] for i in val]), train_y[val]),
              "test": (encode_paths(test_files), test_y)}
    arrays = {s: (x, torch.from_numpy(y)) for s, (x, y) in arrays.items()}
    size = spec["image_size"]
    write_prepared(Path(out_dir), arrays, {
        "source": spec["source"], "kind": "image", "num_classes": len(classes),
        "input_shape": [3, size, size], "storage": "image_folder", "root": str(root),
        "resize": round(size / CROP_FRACTION),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "classes": classes, "test_is": "the official validation set (val/)", "spec": spec,
    })
