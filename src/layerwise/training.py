"""Training, read top to bottom: the losses, the schedule, the loop, checkpoint and resume.

Methods (BRIEF section 4):
- `standard`: cross-entropy of the last layer.
- `aligned`:  sum_l lambda_l CE(W h^(l) + b, y) over layers 1..L, one shared classifier; with
  `alternate`, even steps (0-based) use plain last-layer CE and odd steps the aligned loss, so
  the first step of a run is a plain one (BERxiT's alternating schedule).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from layerwise.io import atomic_path
from layerwise.models import LayeredClassifier
from layerwise.seeding import epoch_generator

METHODS = ("standard", "aligned")


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


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
    aligned_weights: str = "linear"
    alternate: bool = False

    @classmethod
    def from_config(cls, method: str, seed: int, train: dict, aligned: dict) -> "TrainSpec":
        return cls(method=method, seed=seed, epochs=train["epochs"],
                   batch_size=train["batch_size"], lr=train["lr"],
                   weight_decay=train["weight_decay"], schedule=train["schedule"],
                   milestones=tuple(train["milestones"]), gamma=train["gamma"],
                   warmup_epochs=train["warmup_epochs"],
                   label_smoothing=train["label_smoothing"],
                   aligned_weights=aligned["weights"], alternate=aligned["alternate"])


# --- losses -------------------------------------------------------------------------------
def layer_weights(num_layers: int, kind: str) -> torch.Tensor:
    """lambda_1..lambda_L: linear 2l/(L(L+1)) (sums to 1, deeper layers weigh more) or uniform."""
    layers = torch.arange(1, num_layers + 1, dtype=torch.float32)
    if kind == "linear":
        return 2 * layers / (num_layers * (num_layers + 1))
    if kind == "uniform":
        return torch.full((num_layers,), 1.0 / num_layers)
    raise ValueError(f"aligned weights must be 'linear' or 'uniform', got {kind!r}")


def aligned_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Weighted CE over layers; `logits` is (L, B, K) for layers 1..L, `weights` is (L,)."""
    num_layers, batch = logits.shape[:2]
    per_sample = F.cross_entropy(logits.flatten(0, 1).float(), labels.repeat(num_layers),
                                 reduction="none", label_smoothing=label_smoothing)
    per_layer = per_sample.view(num_layers, batch).mean(dim=1)
    return (weights.to(per_layer.device) * per_layer).sum()


def training_loss(model: LayeredClassifier, x, y, spec: TrainSpec, step: int,
                  weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The method's loss for one batch, and the last layer's logits (for train accuracy)."""
    if spec.method == "standard" or (spec.alternate and step % 2 == 0):
        logits = model(x)
        return F.cross_entropy(logits.float(), y, label_smoothing=spec.label_smoothing), logits
    if spec.method == "aligned":
        # Layer 0 (the embedding) carries no loss, so its logits are never computed.
        logits = model.layer_logits(model.layer_representations(x)[1:])
        return aligned_loss(logits, y, weights, spec.label_smoothing), logits[-1]
    raise ValueError(f"unknown training method {spec.method!r}; known: {METHODS}")


# --- schedule -----------------------------------------------------------------------------
def lr_factor(step: int, steps_per_epoch: int, spec: TrainSpec) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (linear warm-up first)."""
    warmup = spec.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    if spec.schedule == "cosine":
        total = spec.epochs * steps_per_epoch
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    if spec.schedule == "multistep":
        epoch = step // steps_per_epoch
        return spec.gamma ** sum(epoch >= m for m in spec.milestones)
    if spec.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {spec.schedule!r}")


# --- evaluation ---------------------------------------------------------------------------
def autocast(device: torch.device):
    """bf16 autocast on CUDA; full precision on CPU (where bf16 is slow and deterministic fp32 is
    what the tests compare)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def predict_layers(model: LayeredClassifier, x: torch.Tensor, batch_size: int = 512
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(L+1, N, d) representations and (L+1, N, K) shared-head logits, in float32 on CPU."""
    model.eval()
    device = next(model.parameters()).device
    reps, logits = [], []
    for start in range(0, len(x), batch_size):
        with autocast(device):
            r = model.layer_representations(x[start:start + batch_size].to(device))
            reps.append(r.float().cpu())
            logits.append(model.layer_logits(r).float().cpu())
    return torch.cat(reps, dim=1), torch.cat(logits, dim=1)


@torch.no_grad()
def accuracy(model: LayeredClassifier, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 512) -> float:
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(x), batch_size):
        with autocast(device):
            logits = model(x[start:start + batch_size].to(device))
        correct += (logits.argmax(-1).cpu() == y[start:start + batch_size]).sum().item()
    return correct / len(y)


# --- checkpoints --------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic: a checkpoint killed mid-write leaves the previous one in place."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, spec_hash: str) -> dict | None:
    """The checkpoint at `path` if it belongs to this run spec, else None (start afresh)."""
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


# --- the loop -----------------------------------------------------------------------------
def run_epoch(model: LayeredClassifier, optimizer, scheduler, x_train: torch.Tensor,
              y_train: torch.Tensor, spec: TrainSpec, epoch: int, weights: torch.Tensor
              ) -> tuple[float, float]:
    """One pass over the training data in the epoch's order; returns mean loss and accuracy."""
    model.train()
    device = x_train.device
    steps = math.ceil(len(y_train) / spec.batch_size)
    order = torch.randperm(len(y_train), generator=epoch_generator(spec.seed, epoch))
    total_loss, correct = 0.0, 0
    for batch in range(steps):
        index = order[batch * spec.batch_size:(batch + 1) * spec.batch_size].to(device)
        x, y = x_train[index], y_train[index]
        step = epoch * steps + batch
        with autocast(device):
            loss, logits = training_loss(model, x, y, spec, step, weights)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at epoch {epoch + 1}, step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(-1) == y).sum().item()
    return total_loss / len(y_train), correct / len(y_train)


def make_optimizer(model: LayeredClassifier, spec: TrainSpec, steps_per_epoch: int):
    """AdamW and its per-step schedule."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, spec))
    return optimizer, scheduler


def train(model: LayeredClassifier, data: dict, spec: TrainSpec, checkpoint: Path,
          spec_hash: str, device: torch.device | None = None) -> list[dict]:
    """Train `model` on data["train"], checking data["val"] each epoch; return the epoch log.

    A checkpoint is written after every epoch; a restarted run resumes from it (model,
    optimizer, schedule, log) and, since each epoch's data order is derived from (seed, epoch),
    ends with exactly the weights an uninterrupted run would have.
    """
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    x_train, y_train = (t.to(device) for t in data["train"])
    x_val, y_val = data["val"]
    steps_per_epoch = math.ceil(len(y_train) / spec.batch_size)
    weights = layer_weights(model.num_layers, spec.aligned_weights).to(device)
    optimizer, scheduler = make_optimizer(model, spec, steps_per_epoch)

    log: list[dict] = []
    state = load_checkpoint(checkpoint, spec_hash)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        log = state["log"]
        print(f"resuming from {checkpoint} after epoch {len(log)}", file=sys.stderr)

    bar = tqdm(range(len(log), spec.epochs), initial=len(log), total=spec.epochs,
               desc=f"{spec.method} seed {spec.seed}", unit="epoch", file=sys.stderr)
    for epoch in bar:
        started = time.perf_counter()
        try:
            loss, train_accuracy = run_epoch(model, optimizer, scheduler, x_train, y_train,
                                             spec, epoch, weights)
        except TrainingError as err:
            raise TrainingError(f"{err}; the last good checkpoint is kept at {checkpoint}. "
                                "Lower the learning rate or check the inputs.") from None
        log.append({
            "epoch": epoch + 1,
            "loss": loss,
            "train_accuracy": train_accuracy,
            "val_accuracy": accuracy(model, x_val, y_val),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        })
        bar.set_postfix(loss=f"{loss:.4f}", val=f"{log[-1]['val_accuracy']:.4f}")
        save_checkpoint(checkpoint, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
            "log": log, "spec_hash": spec_hash})
    return log
