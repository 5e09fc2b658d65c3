"""Training, read top to bottom: the step's loss, the schedule, the loop, checkpoint and resume.

The methods themselves (their losses, weights and alternating schedule) are
`layerwise.train.methods`.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from layerwise.train.augment import AugmentSpec
from layerwise.train.batches import TrainBatches, eval_batches
from layerwise.train.distributed import Shard, all_sum, current_shard
from layerwise.devices import autocast
from layerwise.errors import ArtifactError, TrainingError
from layerwise.io import atomic_path, load_tensors, remove_stale_temporaries
from layerwise.models.base import LayeredClassifier
from layerwise.train.methods import (METHODS, correct_and_counted, layer_weights,
                                     method_loss)


@dataclass
class TrainSpec:
    method: str
    seed: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    grad_clip: float | None = None   # max global gradient norm; None: no clipping
    steps_per_epoch: int | None = None   # train.steps_per_epoch; None: a pass over the split
    settings: object = None         # the method's own, as its record's settings_class
    augment: dict | None = None     # train.augment: crop_padding, flip, rotation_degrees
    group_by_length: bool = False   # train.group_by_length: batches of similar length
    compile: bool = False           # train.compile: torch.compile the training step
    micro_batch_size: int | None = None   # train.micro_batch_size; None: a step in one pass

    @classmethod
    def from_config(cls, method: str, seed: int, train: dict, settings: dict | None = None
                    ) -> "TrainSpec":
        """From a run spec's `train` section and the method's own section (`settings`)."""
        return cls(method=method, seed=seed, epochs=train["epochs"],
                   batch_size=train["batch_size"], lr=train["lr"],
                   weight_decay=train["weight_decay"], schedule=train["schedule"],
                   milestones=tuple(train["milestones"]), gamma=train["gamma"],
                   warmup_epochs=train["warmup_epochs"],
                   label_smoothing=train["label_smoothing"],
                   grad_clip=train.get("grad_clip"),
                   steps_per_epoch=train.get("steps_per_epoch"),
                   settings=METHODS[method].parse_settings(settings),
                   augment=train.get("augment"), compile=train.get("compile", False),
                   group_by_length=train.get("group_by_length", False),
                   micro_batch_size=train.get("micro_batch_size"))

    @property
    def alternate(self) -> bool:
        """Whether every other step (the even ones) is plain last-layer cross-entropy: the
        method's `alternate` setting; never for a method without."""
        return getattr(self.settings, "alternate", False)

    @property
    def weighting(self) -> str:
        """How the method weighs its per-layer terms (its `weights` setting; linear for a method
        without, whose loss has none)."""
        return getattr(self.settings, "weights", "linear")

# --- the step's loss ----------------------------------------------------------------------
def training_loss(model: LayeredClassifier, x, y, spec: TrainSpec, step: int,
                  weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The method's loss for one batch, and the last layer's logits (for train accuracy)."""
    return method_loss(model, x, y, spec.method, spec.settings, weights, spec.label_smoothing,
                       plain=spec.alternate and step % 2 == 0)


class StepLoss(torch.nn.Module):
    """One step's `training_loss` as a module's forward: DistributedDataParallel synchronises
    the gradients of what runs through the forward of the module it wraps, and torch.compile
    compiles a forward. Only the step's parity reaches it (all the loss depends on), so a
    compiled step is not recompiled for every step number."""

    def __init__(self, model: LayeredClassifier, spec: TrainSpec, weights: torch.Tensor):
        super().__init__()
        self.model, self.spec, self.weights = model, spec, weights

    def forward(self, x, y, parity: int):
        return training_loss(self.model, x, y, self.spec, parity, self.weights)


def accumulating(step_loss: torch.nn.Module):
    """Where a backward only adds to the gradients: DistributedDataParallel's no_sync (also
    under torch.compile), so that the processes average them once, at the step's last pass."""
    ddp = getattr(step_loss, "_orig_mod", step_loss)  # what torch.compile wrapped
    if isinstance(ddp, torch.nn.parallel.DistributedDataParallel):
        return ddp.no_sync()
    return nullcontext()


# --- schedule -----------------------------------------------------------------------------
def lr_factor(step: int, steps_per_epoch: int, spec: TrainSpec) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (linear warm-up first)."""
    warmup = spec.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    total = spec.epochs * steps_per_epoch
    if spec.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    if spec.schedule == "linear":  # to zero at the last step, as transformers' linear schedule
        return max(0.0, (total - step) / max(1, total - warmup))
    if spec.schedule == "multistep":
        epoch = step // steps_per_epoch
        return spec.gamma ** sum(epoch >= m for m in spec.milestones)
    if spec.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {spec.schedule!r}")


# --- evaluation ---------------------------------------------------------------------------
@torch.no_grad()
def accuracy(model: LayeredClassifier, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 512, shard: Shard | None = None, workers: int = 0) -> float:
    """Accuracy of the model's own output; with a shard, each process scores its share."""
    model.eval()
    device = next(model.parameters()).device
    shard = shard or Shard()
    correct = counted = 0
    for inputs, labels in eval_batches(x, y, batch_size, device, shard, workers):
        with autocast(device):
            logits = model(inputs)
        right, count = correct_and_counted(logits.cpu(), labels.cpu())
        correct, counted = correct + right, counted + count
    correct, counted = all_sum([correct, counted], shard, device)
    return correct / counted


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset, or the process's peak resident memory."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- checkpoints --------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic: a checkpoint killed mid-write leaves the previous one in place."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(state, handle)  # through a Python file, a full disk surfaces as an OSError


def remove_checkpoint(path: Path) -> None:
    """Delete a finished run's checkpoint: its final weights are written, so nothing resumes
    from it, and a study's checkpoints would otherwise stay on disk after every run ended."""
    path.unlink(missing_ok=True)


def load_checkpoint(path: Path, spec_hash: str) -> dict | None:
    """The checkpoint at `path` if it belongs to this run spec, else None (start afresh)."""
    remove_stale_temporaries(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged checkpoint must not block a fresh start
        print(f"warning: ignoring unreadable checkpoint {path}: {err}", file=sys.stderr)
        return None
    if state.get("spec_hash") != spec_hash:
        print(f"warning: checkpoint {path} belongs to another config; starting afresh",
              file=sys.stderr)
        return None
    return state


def start_from(model: LayeredClassifier, path: Path, spec_hash: str) -> None:
    """Load the weights of the run whose spec hashes to `spec_hash` (a pretraining, or the run
    a tuned lens is fitted on) into `model`; only what the run adds itself, a multi-exit model's
    own exit heads or a lens, keeps the initialisation the run gave it."""
    state = load_tensors(path, metadata={"spec_hash": spec_hash})[0]
    own = model.state_dict()
    foreign = [k for k in own if k not in state and not k.startswith(("exit_heads.", "lens."))]
    foreign += [k for k in state if k not in own or state[k].shape != own[k].shape]
    if foreign:
        raise ArtifactError(f"{path}: does not fit the run's model (differing tensors: "
                            f"{', '.join(foreign[:5])})")
    model.load_state_dict(state, strict=False)


# --- the loop -----------------------------------------------------------------------------
def run_epoch(model: LayeredClassifier, optimizer, scheduler, x_train: torch.Tensor,
              y_train: torch.Tensor, spec: TrainSpec, epoch: int, weights: torch.Tensor,
              batches: TrainBatches | None = None, step_loss: torch.nn.Module | None = None
              ) -> tuple[float, float]:
    """One epoch over the training data in its order; returns mean loss and accuracy.

    `batches` (default: `x_train`, `y_train` where they are) gives this process's part of every
    global batch; `step_loss` (default: a StepLoss of `model`) may be wrapped by
    DistributedDataParallel or torch.compile. With `spec.micro_batch_size`, a step's forward
    and backward run on one micro-batch at a time, each loss weighted by its share of the batch,
    so that the gradients added up are the whole batch's; then one update. Loss and accuracy
    are over all processes.
    """
    model.train()
    if batches is None:
        batches = TrainBatches(x_train, y_train, spec.batch_size, x_train.device, spec.seed,
                               AugmentSpec.from_config(spec.augment),
                               max_steps=spec.steps_per_epoch)
    if step_loss is None:  # not `or`: a compiled module's truth value raises (its len())
        step_loss = StepLoss(model, spec, weights)
    device, shard = batches.device, batches.shard
    total_loss, correct, counted, seen = 0.0, 0, 0, 0
    for batch, (x, y, index, _) in enumerate(batches.epoch(epoch)):
        step = epoch * batches.steps + batch   # the optimizer's step, whatever its passes
        optimizer.zero_grad(set_to_none=True)
        passes = batches.micro_batches(x, y, index, spec.micro_batch_size)
        for number, (x_part, y_part, mine, share) in enumerate(passes):
            with nullcontext() if number == len(passes) - 1 else accumulating(step_loss):
                with autocast(device):
                    loss, logits = step_loss(x_part, y_part, step % 2)
                if not torch.isfinite(loss):
                    raise TrainingError(f"loss became {loss.item()} at epoch {epoch + 1}, "
                                        f"step {step}")
                (loss if share == 1 else loss * share).backward()
            # summed over passes and processes: the batch's mean loss times its samples; `mine`
            # is 0 for a pass that only stood in (see TrainBatches)
            total_loss += loss.item() * share * len(index) / shard.world
            right, count = correct_and_counted(logits[:mine], y_part[:mine])
            correct, counted = correct + right, counted + count
            del loss, logits  # not held through the next pass (aligned: every layer's logits)
        seen += len(index)
        if spec.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
        optimizer.step()
        scheduler.step()
    total_loss, correct, counted = all_sum([total_loss, correct, counted], shard, device)
    return total_loss / max(seen, 1), correct / max(counted, 1)


def make_optimizer(model: LayeredClassifier, spec: TrainSpec, steps_per_epoch: int):
    """AdamW and its per-step schedule. `foreach` (torch's default on CUDA only) updates all
    parameters with one kernel per operation: the same arithmetic, and on the CPU a tenth less
    step time for a model of many small tensors."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay,
                                  foreach=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, spec))
    return optimizer, scheduler


def train(model: LayeredClassifier, data: dict, spec: TrainSpec, checkpoint: Path,
          spec_hash: str, device: torch.device | None = None, workers: int = 0) -> list[dict]:
    """Train `model` on data["train"], checking data["val"] each epoch; return the epoch log.

    A checkpoint is written after every epoch; a restarted run resumes from it (model,
    optimizer, schedule, log) and, since each epoch's data order is derived from (seed, epoch),
    ends with exactly the weights an uninterrupted run would have.

    Inputs are tensors (moved to the device whole) or a streamed split (decoded by `workers`
    DataLoader processes); see train/batches.py. Started by torchrun, every process runs
    this same function on its shard of each global batch, gradients are averaged by
    DistributedDataParallel, and only rank 0 writes the checkpoint (train/distributed.py).
    """
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shard = current_shard()
    model.to(device)
    if device.type == "cuda":  # convolution weights (a ViT's patch embedding) in cuDNN's layout
        model.to(memory_format=torch.channels_last)
    lengths = model.sample_lengths(data["train"][0]) if spec.group_by_length else None
    batches = TrainBatches(*data["train"], spec.batch_size, device, spec.seed,
                           AugmentSpec.from_config(spec.augment), shard, workers, lengths,
                           spec.steps_per_epoch)
    x_val, y_val = data["val"]
    steps_per_epoch = batches.steps
    weights = layer_weights(model.num_layers, spec.weighting).to(device)
    optimizer, scheduler = make_optimizer(model, spec, steps_per_epoch)

    log: list[dict] = []
    state = load_checkpoint(checkpoint, spec_hash)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        log = state["log"]
        if shard.is_main:
            print(f"resuming from {checkpoint} after epoch {len(log)}", file=sys.stderr)

    step_loss = StepLoss(model, spec, weights)
    if shard.distributed:  # after loading: DDP starts every process from rank 0's weights
        from torch.nn.parallel import DistributedDataParallel

        step_loss = DistributedDataParallel(
            step_loss, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=model.exit_heads is not None)  # plain steps skip exit heads
    if spec.compile:
        step_loss = torch.compile(step_loss)

    bar = tqdm(range(len(log), spec.epochs), initial=len(log), total=spec.epochs,
               desc=f"{spec.method} seed {spec.seed}", unit="epoch", file=sys.stderr,
               disable=not shard.is_main)
    for epoch in bar:
        started = time.perf_counter()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            loss, train_accuracy = run_epoch(model, optimizer, scheduler, None, None, spec,
                                             epoch, weights, batches, step_loss)
        except TrainingError as err:
            raise TrainingError(f"{err}; the last good checkpoint is kept at {checkpoint}. "
                                "Lower the learning rate or check the inputs.") from None
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        trained = time.perf_counter() - started
        log.append({
            "epoch": epoch + 1,
            "loss": loss,
            "train_accuracy": train_accuracy,
            "val_accuracy": accuracy(model, x_val, y_val, shard=shard, workers=workers),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
            # throughput of the training pass (all processes) and this process's peak memory
            "samples_per_second": len(batches) / trained,
            "peak_memory_mb": peak_memory_mb(device),
        })
        bar.set_postfix(loss=f"{loss:.4f}", val=f"{log[-1]['val_accuracy']:.4f}")
        if shard.is_main:
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                "log": log, "spec_hash": spec_hash})
    return log
