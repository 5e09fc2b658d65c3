"""The paper's image augmentation, applied on the device to whole batches.

The paper's vision augmentation (docs/method.md §5): random crop with padding, horizontal flip
and rotation within +/- degrees (torchvision's RandomCrop(padding), RandomHorizontalFlip,
RandomRotation, in that order). Here
the three are one affine resampling of the batch where it lives, so a dataset resident on the
GPU is augmented there and a streamed one right after its copy to the device.

The random draws (shift, flip, angle per sample) come from a CPU generator derived from
(seed, epoch, step) alone, for the whole global batch: a resumed run, and every process of a
distributed run (each takes its own samples of the global batch), sees exactly the draws of an
uninterrupted single-process run.

Decisions where the paper is silent (written in config as `train.augment`):
- padding and the corners a rotation uncovers are filled with 0 in the normalized inputs, i.e.
  the dataset's mean colour (torchvision pads raw pixels with black);
- sampling is nearest-neighbour, torchvision's default for RandomRotation; shifts and flips are
  then exact pixel copies, and a zero angle reproduces the input exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSpec:
    crop_padding: int = 0           # pixels of padding before a random crop of the input size
    flip: bool = False              # horizontal flip with probability 1/2
    rotation_degrees: float = 0.0   # rotation by an angle drawn uniformly from +/- this

    @classmethod
    def from_config(cls, augment: dict | None) -> "AugmentSpec":
        augment = augment or {}
        return cls(crop_padding=int(augment.get("crop_padding", 0)),
                   flip=bool(augment.get("flip", False)),
                   rotation_degrees=float(augment.get("rotation_degrees", 0.0)))

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip or self.rotation_degrees > 0


def augment_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """The generator of one optimizer step's draws, derived from (seed, epoch, step) alone."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_033 + step + 7)


def draw(spec: AugmentSpec, count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 4) per-sample draws on the CPU: x shift, y shift (pixels), flip (0/1), angle (rad).

    Every column is drawn whether used or not, so switching one augmentation on or off never
    changes the draws of the others.
    """
    pad = spec.crop_padding
    shifts = torch.randint(-pad, pad + 1, (count, 2), generator=generator).float()
    flips = torch.randint(0, 2, (count, 1), generator=generator).float()
    angles = (torch.rand(count, 1, generator=generator) * 2 - 1) * math.radians(
        spec.rotation_degrees)
    if not spec.flip:
        flips.zero_()
    return torch.cat([shifts, flips, angles], dim=1)


def apply(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Crop-with-padding, flip and rotate a batch (B, C, H, W) by per-sample `params` (B, 4).

    For every output pixel the input pixel it shows is found by undoing the three steps in
    reverse order (rotation about the centre, then the flip, then the crop's shift); pixels that
    fall outside the input read 0.
    """
    batch, _, height, width = x.shape
    params = params.to(device=x.device, dtype=torch.float32)
    shift_x, shift_y, flip, angle = params.unbind(1)
    rows = torch.arange(height, device=x.device, dtype=torch.float32)
    cols = torch.arange(width, device=x.device, dtype=torch.float32)
    grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")
    cy, cx = (height - 1) / 2, (width - 1) / 2
    px, py = grid_x - cx, grid_y - cy                                    # (H, W), centred
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    qx = cos * px + sin * py + cx                                        # undo the rotation
    qy = -sin * px + cos * py + cy
    flipped = flip[:, None, None] > 0.5
    qx = torch.where(flipped, (width - 1) - qx, qx)                      # undo the flip
    rx = qx + shift_x[:, None, None]                                     # undo the crop
    ry = qy + shift_y[:, None, None]
    grid = torch.stack([(2 * rx + 1) / width - 1, (2 * ry + 1) / height - 1], dim=-1)
    out = F.grid_sample(x.float(), grid, mode="nearest", padding_mode="zeros",
                        align_corners=False)
    return out.to(x.dtype)


def augment_batch(x: torch.Tensor, spec: AugmentSpec, params: torch.Tensor | None) -> torch.Tensor:
    """`x` augmented by `params` (from `draw`), or unchanged when augmentation is off."""
    if not spec.active or params is None:
        return x
    if x.dim() != 4:
        raise ValueError(f"augmentation needs image batches (B, C, H, W); got shape {tuple(x.shape)}")
    return apply(x, params)
