"""Where training and evaluation batches come from, and how they reach the device.

Two kinds of inputs sit behind the same training entry point:

- resident: a tensor (the prepared small datasets). It is moved to the device once, whole; every
  batch is indexed there and augmented there, so a GPU run never copies a batch from the host.
- streamed: an `ImageFolderSplit` (ImageNet). A DataLoader's workers decode uint8 images from
  disk; batches land in pinned memory, are copied to the device without blocking, and are
  normalized and augmented there.

Either way the order is the epoch's permutation (derived from the seed and the epoch), each
process of a distributed run takes its share of every global batch (layerwise.train.distributed),
and augmentation draws are made for the global batch, so the result does not depend on the
number of processes. A step's batch may be run in micro-batches (`micro_batches`); each part's
loss is weighted by its share of the targets the batch's loss averages over, so the gradients
added up are the whole batch's.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch

from layerwise.data import IGNORE
from layerwise.train.augment import AugmentSpec, augment_batch, augment_generator, draw
from layerwise.train.distributed import Shard
from layerwise.seeding import epoch_generator


def is_streamed(x) -> bool:
    return getattr(x, "streamed", False)


def take(x, rows: torch.Tensor):
    """The inputs at `rows`: a tensor's rows, or a streamed split of those samples only."""
    return x.subset(rows) if is_streamed(x) else x[rows]


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to the device without blocking (from pinned memory this overlaps with compute);
    image batches go channels-last on CUDA, the layout cuDNN's convolutions prefer (a ViT's
    patch embedding)."""
    x = x.to(device, non_blocking=True)
    if device.type == "cuda" and x.dim() == 4 and x.is_floating_point():
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# Length-grouped batches sort each run of this many batches of the epoch's order by length.
LENGTH_GROUP_BATCHES = 50


class TrainBatches:
    """This process's batches of each epoch: (inputs, labels, global batch size) on the device.

    With `lengths` (one per sample), each epoch's batches hold samples of similar length, so a
    model that trims a batch to its longest sample (BERT) computes little padding: the epoch's
    order is cut into runs of LENGTH_GROUP_BATCHES batches, each run sorted by length and cut
    into batches, and the batches are shuffled (transformers' group_by_length does the same).
    With `max_steps`, an epoch is the first `max_steps` batches of its shuffle (a split too
    large for the steps a run is given, seen a fresh part at a time).
    """

    def __init__(self, x, y: torch.Tensor, batch_size: int, device: torch.device, seed: int,
                 augment: AugmentSpec | None = None, shard: Shard | None = None,
                 workers: int = 0, lengths: torch.Tensor | None = None,
                 max_steps: int | None = None):
        self.x, self.y, self.lengths = x, y, lengths
        self.batch_size, self.device, self.seed = batch_size, device, seed
        self.max_steps = max_steps
        self.augment = augment or AugmentSpec()
        self.shard = shard or Shard()
        self.workers = workers
        self.streamed = is_streamed(x)
        # each sample's targets that are not IGNORE (1 for a class label), what a mean loss
        # averages over; on the CPU, with the epoch's indices
        self.targets = (y != IGNORE).reshape(len(y), -1).sum(dim=1).cpu()
        if not self.streamed:  # resident: the whole split lives on the device
            self.x, self.y = x.to(device), y.to(device)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def steps(self) -> int:
        """Steps per epoch: a pass over the split, or `max_steps` batches of it if fewer."""
        steps = math.ceil(len(self.y) / self.batch_size)
        return steps if self.max_steps is None else min(steps, self.max_steps)

    def global_batches(self, epoch: int) -> list[torch.Tensor]:
        generator = epoch_generator(self.seed, epoch)
        order = torch.randperm(len(self.y), generator=generator)
        if self.lengths is not None:
            group = self.batch_size * LENGTH_GROUP_BATCHES
            order = torch.cat([run[torch.sort(self.lengths[run], descending=True, stable=True)[1]]
                               for run in order.split(group)])
        batches = list(order.split(self.batch_size))
        if self.lengths is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return batches[:self.steps]   # an epoch of max_steps: the first of a fresh shuffle

    def local_index(self, index: torch.Tensor) -> torch.Tensor:
        """This process's part of a global batch; never empty (a process left without samples
        takes the batch's first one, whose loss then weighs 0; see `share`)."""
        local = self.shard.take(index)
        return local if len(local) else index[:1]

    def share(self, index: torch.Tensor, part: torch.Tensor | None = None) -> float:
        """Weight of the mean loss over `part` of the global batch `index` (by default this
        process's part; or a micro-batch of it) so that DDP's average over processes of the
        parts' weighted gradients is the gradient of the mean loss over the global batch: the
        part's share of the batch's targets (samples, or a language model's tokens that have
        one), times the number of processes."""
        part = self.shard.take(index) if part is None else part
        total = int(self.targets[index].sum())
        return int(self.targets[part].sum()) * self.shard.world / max(total, 1)

    def micro_batches(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                      size: int | None) -> list[tuple[torch.Tensor, torch.Tensor, int, float]]:
        """This process's batch `x`, `y` of the global batch `index` as (inputs, labels, how many
        of them are this process's own samples, loss share) of each pass: the whole batch in one
        (size None, or not smaller than it), else consecutive parts of at most `size` samples. Every process
        cuts its batch into the same number of near-equal parts, so that the processes' passes
        go in step (DDP broadcasts a model's buffers in every forward); a part left without
        samples stands in with the batch's first one, whose loss weighs 0."""
        local = self.shard.take(index)
        count = 1 if size is None else math.ceil(math.ceil(len(index) / self.shard.world) / size)
        if count == 1:
            return [(x, y, len(local), self.share(index))]
        return [(xs, ys, len(own), self.share(index, own)) if len(xs) else
                (x[:1], y[:1], 0, 0.0)
                for own, xs, ys in zip(local.tensor_split(count), x.tensor_split(count),
                                       y.tensor_split(count))]

    def _augment(self, x: torch.Tensor, index: torch.Tensor, epoch: int, step: int) -> torch.Tensor:
        if not self.augment.active:
            return x
        params = draw(self.augment, len(index), augment_generator(self.seed, epoch, step))
        local = self.shard.take(torch.arange(len(index)))
        params = params[local] if len(local) else params[:1]
        return augment_batch(x, self.augment, params)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
        """(inputs, labels, global index, loss share) of every step of the epoch, in order."""
        batches = self.global_batches(epoch)
        if not self.streamed:
            for step, index in enumerate(batches):
                local = self.local_index(index).to(self.device)
                x = self._augment(self.x[local], index, epoch, step)
                yield to_device(x, self.device), self.y[local], index, self.share(index)
            return
        loader = torch.utils.data.DataLoader(
            self.x.dataset(), batch_sampler=[self.local_index(i).tolist() for i in batches],
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
            persistent_workers=False, prefetch_factor=4 if self.workers else None)
        for step, ((images, labels), index) in enumerate(zip(loader, batches)):
            x = self.x.normalize(images.to(self.device, non_blocking=True))
            x = self._augment(x, index, epoch, step)
            yield to_device(x, self.device), labels.to(self.device, non_blocking=True), index, \
                self.share(index)


def eval_batches(x, y: torch.Tensor | None, batch_size: int, device: torch.device,
                 shard: Shard | None = None, workers: int = 0
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Inputs (and labels) of a split in order, on the device; with a shard, only this process's
    samples (every world-th)."""
    shard = shard or Shard()
    rows = torch.arange(len(x))[shard.rank::shard.world]
    if is_streamed(x):
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(x.dataset(), rows.tolist()), batch_size=batch_size,
            num_workers=workers, pin_memory=device.type == "cuda")
        for images, labels in loader:
            yield to_device(x.normalize(images.to(device, non_blocking=True)), device), labels
        return
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        whole = shard.world == 1
        xb = x[start:start + batch_size] if whole else x[part]
        yb = None if y is None else (y[start:start + batch_size] if whole else y[part])
        yield to_device(xb, device), yb
