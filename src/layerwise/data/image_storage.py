"""How the prepared image datasets store their inputs, and how `load_split` reads them back.

CIFAR and MNIST store uint8 pixels, turned into normalized float32 by `decode_uint8`. ImageNet
stores only the index of a local image folder: the relative path of every image (UTF-8,
newline-separated, as a uint8 tensor) and its label; its split's inputs are an
`ImageFolderSplit`, which decodes images on demand. The preparers live in data/images.py; this
module is what the prepared-dataset format (data/prepared.py) needs to read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from layerwise.errors import ArtifactError


class DatasetError(ArtifactError):
    """A dataset's source files are missing, damaged or not in the expected layout."""


def decode_uint8(x: torch.Tensor, normalization: dict) -> torch.Tensor:
    """Stored uint8 pixels -> float32 inputs normalized with the dataset's channel statistics."""
    mean = torch.tensor(normalization["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"], dtype=torch.float32).view(1, -1, 1, 1)
    return (x.float().div_(255.0) - mean) / std


def encode_paths(files: list[str]) -> torch.Tensor:
    """Relative paths as one uint8 tensor (UTF-8, newline-separated), storable as safetensors."""
    data = "\n".join(files).encode("utf-8")
    array = np.frombuffer(data, dtype=np.uint8).copy() if data else np.zeros(0, dtype=np.uint8)
    return torch.from_numpy(array)


def decode_paths(paths: torch.Tensor) -> list[str]:
    data = paths.numpy().tobytes().decode("utf-8")
    return data.split("\n") if data else []


class ImageFolderSplit:
    """The inputs of a streamed split: images decoded from disk on demand.

    Indexing (an int, a slice or an index tensor) returns normalized float32 inputs on the CPU,
    so code written for an in-memory tensor (a few samples for timing, FLOP counting) works
    unchanged; bulk passes use `dataset()` in a DataLoader (uint8 images, normalized on the
    device with `normalize`).
    """

    streamed = True

    def __init__(self, root: str | Path, files: list[str], labels: torch.Tensor, info: dict):
        self.root, self.files, self.labels = Path(root), files, labels
        self.size, self.resize = info["input_shape"][-1], info["resize"]
        self.normalization = info["normalization"]
        self.shape = (len(files), *info["input_shape"])

    @classmethod
    def from_index(cls, paths: torch.Tensor, labels: torch.Tensor, info: dict) -> "ImageFolderSplit":
        files = decode_paths(paths)
        if len(files) != len(labels):
            raise ArtifactError(f"{info.get('root')}: {len(files)} paths for {len(labels)} labels")
        root = Path(info["root"])
        if not root.is_dir():
            raise DatasetError(f"dataset root {root} (from info.json) is not there any more; "
                               "mount it or prepare the dataset again")
        return cls(root, files, labels, info)

    def __len__(self) -> int:
        return len(self.files)

    def decode(self, i: int) -> torch.Tensor:
        """Image i as uint8 (3, size, size): RGB, shorter side resized, centre crop."""
        from PIL import Image, UnidentifiedImageError
        from torchvision.transforms.v2 import functional as TF

        path = self.root / self.files[i]
        try:  # PIL, as torchvision's ImageFolder reads (JPEG, PNG, ...)
            with Image.open(path) as handle:
                array = np.asarray(handle.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise DatasetError(f"{path}: cannot decode image ({err})") from None
        image = torch.from_numpy(array.copy()).permute(2, 0, 1)
        image = TF.resize(image, [self.resize], antialias=True)
        return TF.center_crop(image, [self.size, self.size])

    def subset(self, rows: torch.Tensor) -> "ImageFolderSplit":
        """The split of the samples at `rows` only (nothing is decoded)."""
        rows = torch.as_tensor(rows).reshape(-1)
        chosen = ImageFolderSplit.__new__(ImageFolderSplit)
        chosen.__dict__.update(self.__dict__)
        chosen.files = [self.files[i] for i in rows.tolist()]
        chosen.labels = self.labels[rows]
        chosen.shape = (len(chosen.files), *self.shape[1:])
        return chosen

    def dataset(self) -> "ImageFolderDataset":
        return ImageFolderDataset(self)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (on any device) -> normalized float32 inputs there."""
        mean = torch.tensor(self.normalization["mean"], device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.normalization["std"], device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255.0 - mean) / std

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            rows = range(*index.indices(len(self)))
        elif isinstance(index, int):
            return self[index:index + 1][0]
        else:
            rows = torch.as_tensor(index).reshape(-1).tolist()
        if not rows:
            return torch.empty(0, *self.shape[1:])
        return self.normalize(torch.stack([self.decode(i) for i in rows]))


class ImageFolderDataset(torch.utils.data.Dataset):
    """(uint8 image, label) pairs of an ImageFolderSplit, for a DataLoader."""

    def __init__(self, split: ImageFolderSplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        return self.split.decode(i), self.split.labels[i]
