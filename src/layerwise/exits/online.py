"""Real early exit on a model, its FLOP profile, and wall-clock timing against full depth.

The backbone runs layer by layer through the `LayeredClassifier` interface; after each block the
exit decides for the samples still running, and those that exit leave the batch (compaction), so
their remaining blocks are never computed. The decisions are the online rule of the policy's
record in `layerwise.exits.policies`, which scores as the offline analysis does, so both give the
same exit layers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pandas as pd
import torch

from layerwise.exits.offline import FlopProfile, speedup
from layerwise.exits.policies import lookup
from layerwise.models.base import LayeredClassifier


@torch.inference_mode()
def early_exit(model: LayeredClassifier, inputs: torch.Tensor, policy: str, threshold: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) predictions and (N,) exit layers in 1..L of real early exit with compaction."""
    hidden = model.embed(inputs)
    batch, device, last = hidden.shape[0], hidden.device, model.num_layers
    remaining = torch.arange(batch, device=device)  # original index of each running sample
    predictions = torch.empty(batch, dtype=torch.long, device=device)
    layers = torch.empty(batch, dtype=torch.long, device=device)
    rule = lookup(policy).rule(threshold)
    for layer in range(1, last + 1):
        hidden = model.block(layer - 1, hidden)
        logits = model.exit_logits(model.pool(hidden), layer)
        if layer == last:
            predictions[remaining], layers[remaining] = logits.argmax(-1), last
            break
        out = rule.decide(logits)
        leaving = int(out.sum())
        if leaving == 0:  # nobody leaves: nothing to copy
            continue
        if leaving == len(remaining):  # everybody leaves: nothing left to compute
            predictions[remaining], layers[remaining] = logits.argmax(-1), layer
            break
        done = remaining[out]
        predictions[done], layers[done] = logits[out].argmax(-1), layer
        stay = (~out).nonzero().squeeze(1)
        remaining, hidden = remaining[stay], hidden[stay]
        rule.keep(stay)
    return predictions, layers


@torch.inference_mode()
def full_depth(model: LayeredClassifier, inputs: torch.Tensor) -> torch.Tensor:
    """(N,) predictions of plain inference through all L blocks."""
    return model(inputs).argmax(-1)


@torch.no_grad()
def flop_profile(model: LayeredClassifier, example: torch.Tensor) -> FlopProfile:
    """FLOPs per sample of the embedding, each block and each exit, counted by torch's
    FlopCounterMode on one sample (matrix products, convolutions and attention; norms and
    activations are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query_shape, key_shape, value_shape, *args, **kwargs):
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    # torch counts the CUDA attention kernels but not the CPU one; count it the same way.
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}

    def count(fn: Callable, *args):
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            out = fn(*args)
        return float(counter.get_total_flops()), out

    model.eval()
    embed, hidden = count(model.embed, example[:1])
    blocks, heads = [], []
    for layer in range(1, model.num_layers + 1):
        flops, hidden = count(model.block, layer - 1, hidden)
        blocks.append(flops)
        heads.append(count(model.exit_logits, model.pool(hidden), layer)[0])
    return FlopProfile(embed, tuple(blocks), tuple(heads))


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it measures that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pass(run: Callable, items, device: torch.device) -> float:
    """Wall-clock seconds of `run` on every item in turn, the device synchronized around it."""
    synchronize(device)
    started = time.perf_counter()
    for item in items:
        run(item)
    synchronize(device)
    return time.perf_counter() - started


@torch.no_grad()
def wall_clock(model: LayeredClassifier, inputs: torch.Tensor, batch_size: int,
               exits: dict[str, tuple[str, float]], warmup: int = 1, repeats: int = 3
               ) -> dict[str, float]:
    """Median seconds of one pass over `inputs` in batches of `batch_size`, for full-depth
    inference ("full_depth") and for each named (policy, threshold) of `exits`.

    The variants are interleaved within every repeat so that they share the machine's load;
    on CUDA the device is synchronized before the clock is read.
    """
    model.eval()
    device = inputs.device
    batches = inputs.split(batch_size)
    runners: dict[str, Callable] = {"full_depth": lambda b: full_depth(model, b)}
    for name, (policy, threshold) in exits.items():
        runners[name] = lambda b, p=policy, t=threshold: early_exit(model, b, p, t)

    def one_pass(run: Callable) -> float:
        return time_pass(run, batches, device)

    for _ in range(warmup):
        for run in runners.values():
            one_pass(run)
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            seconds[name].append(one_pass(run))
    return {name: statistics.median(values) for name, values in seconds.items()}


def time_operating_points(model: LayeredClassifier, inputs: torch.Tensor,
                          exits: dict[str, tuple[str, float]], batch_sizes, warmup: int = 1,
                          repeats: int = 3) -> pd.DataFrame:
    """Wall-clock of each named (policy, threshold) against full depth at every batch size.

    One row per exit and batch size: median seconds of both, the measured speed-up, and the
    mean exit layer and paper speed-up L/E[k] of the timed samples, the ratio the measured
    speed-up is compared with.
    """
    layers = {name: early_exit(model, inputs, *rule)[1].cpu() for name, rule in exits.items()}
    rows = []
    for batch_size in batch_sizes:
        seconds = wall_clock(model, inputs, batch_size, exits, warmup, repeats)
        for name, (policy, threshold) in exits.items():
            rows.append({"policy": policy, "threshold": threshold, "batch_size": batch_size,
                         "samples": len(inputs), "device": inputs.device.type,
                         "threads": torch.get_num_threads(),
                         "seconds_full_depth": seconds["full_depth"],
                         "seconds_early_exit": seconds[name],
                         "wall_speedup": seconds["full_depth"] / seconds[name],
                         "mean_exit_layer": layers[name].double().mean().item(),
                         "speedup": speedup(layers[name], model.num_layers)})
    return pd.DataFrame(rows)
