"""GPU check: the paper's CIFAR-10 DeiT-S trained for a few hundred steps, with the data resident
on the device and augmented there, bf16 autocast, channels-last inputs (optionally compiled).

    python -m benchmarks.gpu_smoke                               # on the GPU, 300 steps
    python -m benchmarks.gpu_smoke --device cpu --steps 5 --width 64   # a CPU check of the script

Uses the prepared CIFAR-10 (results/data/cifar10, from `snakemake --configfile config/paper.yaml
results/data/cifar10/info.json`) when it is there, else synthetic CIFAR-shaped data (50,000
images whose class shifts their mean, so the loss has something to learn). Trains with the
library's own pieces (TrainBatches, StepLoss, the AdamW schedule, autocast) and the paper's
settings (batch 256, aligned loss with the alternating schedule, crop/flip/rotation). Prints one
JSON line last: samples/s after warm-up, peak memory, the loss of every step.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from layerwise import cli
from layerwise.train.augment import AugmentSpec
from layerwise.train.batches import TrainBatches
from layerwise.models import build_model
from layerwise.seeding import seed_everything
from layerwise.devices import autocast
from layerwise.train.loop import StepLoss, TrainSpec, make_optimizer, peak_memory_mb
from layerwise.train.methods import METHODS, layer_weights

PAPER_AUGMENT = {"crop_padding": 4, "flip": True, "rotation_degrees": 15}


def cifar_data(path: Path | None, samples: int):
    """(x, y, source): the prepared CIFAR-10 training split, or synthetic data of its shape."""
    if path is not None and (path / "info.json").exists():
        from layerwise.data.prepared import load_split

        x, y, _ = load_split(path, "train")
        return x[:samples], y[:samples], "cifar10"
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (samples,), generator=g)
    centres = torch.randn(10, 3, 1, 1, generator=g)
    x = torch.randn(samples, 3, 32, 32, generator=g) * 0.8 + centres[y]
    return x, y, "synthetic"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=384, help="DeiT-S: 384")
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--method", default="aligned", choices=("standard", "aligned"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the step")
    parser.add_argument("--data", type=Path, default=Path("results/data/cifar10"))
    parser.add_argument("--samples", type=int, default=50_000)
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    seed_everything(0)
    x, y, source = cifar_data(args.data, min(args.samples, args.steps * args.batch_size))
    model_spec = dict(arch="vit", depth=args.depth, width=args.width,
                      heads=max(1, args.width // 64), patch_size=4, mlp_ratio=4.0,
                      head_input="final_norm")
    model = build_model(model_spec, {"input_shape": [3, 32, 32], "num_classes": 10}).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    spec = TrainSpec(method=args.method, seed=0, epochs=math.ceil(args.steps * args.batch_size
                                                                  / len(y)),
                     batch_size=args.batch_size, lr=2.5e-4, weight_decay=1e-4,
                     schedule="constant",
                     settings=METHODS[args.method].parse_settings({"alternate": True}),
                     augment=PAPER_AUGMENT, compile=args.compile)
    batches = TrainBatches(x, y, spec.batch_size, device, spec.seed,
                           AugmentSpec.from_config(spec.augment))  # resident on the device
    weights = layer_weights(model.num_layers, spec.weighting).to(device)
    optimizer, scheduler = make_optimizer(model, spec, batches.steps)
    step_loss = StepLoss(model, spec, weights)
    if args.compile:
        step_loss = torch.compile(step_loss)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    losses, warmup = [], min(20, max(1, args.steps // 5))
    model.train()
    step, started = 0, None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for epoch in range(spec.epochs):
        for inputs, labels, _, _ in batches.epoch(epoch):
            if step == warmup:
                sync()
                started = time.perf_counter()
            with autocast(device):
                loss, _ = step_loss(inputs, labels, step % 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
            step += 1
            if step == args.steps:
                break
        if step == args.steps:
            break
    sync()
    timed = max(1, step - warmup)
    seconds = time.perf_counter() - started if started is not None else float("nan")
    result = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "data": source, "steps": step, "batch_size": args.batch_size, "width": args.width,
        "depth": args.depth, "method": args.method, "bf16_autocast": device.type == "cuda",
        "compile": args.compile, "warmup_steps": warmup,
        "samples_per_second": round(timed * args.batch_size / seconds, 1)
        if started is not None else None,
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "loss_curve": [round(v, 4) for v in torch.stack(losses).float().tolist()],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cli.run(main)  # a bad config or artifact: one line, no traceback
