"""Wall-clock speed-up of real early exit against full-depth inference of the same model.

    python -m benchmarks.exits [--config config/config.yaml] [--experiment NAME]
                               [--method aligned] [--model RUN/model.safetensors]
                               [--threshold T | --target-speedup 2.0] [--batch-size 256]
                               [--single-samples 64] [--repeats 20] [--threads 1]
                               [--device cpu|cuda]

Trains nothing. Builds the experiment's model (with exit heads for --method multi_exit) or,
with --model, loads trained weights and their run spec. Runs the confidence policy with
compaction and full-depth inference on the same test batch, interleaved, after a warm-up, at
batch size 1 (the first --single-samples samples, one by one) and at --batch-size. An untrained
model is rarely confident, so unless --threshold is given the threshold is the quantile of the
model's own confidences at layers 1..L-1 on the batch whose exit pattern gives the speed-up
L/E[k] closest to --target-speedup. Prints one JSON object as its last line: E[k], L/E[k], the
measured speed-ups and their ratio to L/E[k] (goal: >= 0.85 at the large batch), and the
FLOPs speed-up (embedding and every exit head counted) for comparison.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from benchmarks import experiment_split
from layerwise import cli
from layerwise.exits.online import early_exit, flop_profile, wall_clock
from layerwise.exits.offline import exit_layers, exit_predictions, policy_scores, speedup
from layerwise.io import load_tensors
from layerwise.train.runs import build_run_model
from layerwise.seeding import seed_everything

GOAL = 0.85


def quantile_threshold(logits: torch.Tensor, target: float) -> tuple[float, float]:
    """(threshold, quantile level): the quantile of the confidences at layers 1..L-1 whose
    offline exit pattern gives L/E[k] closest to `target`."""
    scores = policy_scores("confidence", logits[:-1]).flatten().double().numpy()
    best = None
    for level in np.linspace(0.0, 1.0, 401):
        threshold = float(np.quantile(scores, level))
        gap = abs(speedup(exit_layers("confidence", logits, threshold), len(logits)) - target)
        if best is None or gap < best[0]:
            best = (gap, threshold, float(level))
    return best[1], best[2]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", help="experiment name (default: the first)")
    parser.add_argument("--method", default="aligned", help="decides the exit heads")
    parser.add_argument("--model", help="trained weights of a run (its spec is read from them)")
    parser.add_argument("--threshold", type=float, help="fixed confidence threshold")
    parser.add_argument("--target-speedup", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--single-samples", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    exp, x, _, info = experiment_split(args.config, args.experiment, "test")
    spec = {"method": args.method, "model": exp["model"]}
    weights = None
    if args.model:
        weights, meta = load_tensors(args.model)
        spec = json.loads(meta["spec"])
    seed_everything(0)
    model = build_run_model(spec, info)
    if weights is not None:
        model.load_state_dict(weights)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device).eval()
    batch = x[:args.batch_size].to(device)
    depth = model.num_layers

    with torch.no_grad():
        logits = model.layer_exit_logits(model.layer_representations(batch))[1:]
    if args.threshold is None:
        threshold, level = quantile_threshold(logits, args.target_speedup)
        rule = (f"quantile {level:.4f} of the model's own max-softmax at layers 1..L-1 on the "
                f"batch, chosen so that L/E[k] is closest to {args.target_speedup:g}")
    else:
        threshold, rule = args.threshold, "given"
    offline = exit_layers("confidence", logits, threshold)
    predictions, layers = early_exit(model, batch, "confidence", threshold)
    single = batch[:args.single_samples]
    exits = {"early_exit": ("confidence", threshold)}
    seconds = {"batch": wall_clock(model, batch, len(batch), exits, args.warmup, args.repeats),
               "single": wall_clock(model, single, 1, exits, 1, max(1, args.repeats // 4))}

    theory = speedup(layers.cpu(), depth)
    flops = flop_profile(model, batch[:1])  # the compute view: embedding and heads included
    flops_speedup = flops.full_depth / flops.exit_cost(layers.cpu()).mean().item()
    theory_single = speedup(layers[:len(single)].cpu(), depth)
    measured = {k: s["full_depth"] / s["early_exit"] for k, s in seconds.items()}
    result = {
        "experiment": exp["name"], "method": spec["method"], "trained": weights is not None,
        "device": device.type, "threads": args.threads, "depth": depth,
        "width": spec["model"].get("width"), "policy": "confidence", "threshold": threshold,
        "threshold_rule": rule,
        "exits_match_offline": bool(torch.equal(layers, offline)) and bool(torch.equal(
            predictions, exit_predictions(logits, offline))),
        "batch_size": len(batch), "mean_exit_layer": layers.double().mean().item(),
        "theoretical_speedup": theory,
        "seconds_full_depth_batch": seconds["batch"]["full_depth"],
        "seconds_early_exit_batch": seconds["batch"]["early_exit"],
        f"wall_speedup_b{len(batch)}": measured["batch"],
        f"ratio_to_theoretical_b{len(batch)}": measured["batch"] / theory,
        "flops_speedup": flops_speedup,
        f"ratio_to_flops_speedup_b{len(batch)}": measured["batch"] / flops_speedup,
        "single_samples": len(single),
        "mean_exit_layer_single": layers[:len(single)].double().mean().item(),
        "theoretical_speedup_single": theory_single,
        "wall_speedup_b1": measured["single"],
        "ratio_to_theoretical_b1": measured["single"] / theory_single,
        "goal_ratio_b_large": GOAL,
        "goal_met": measured["batch"] / theory >= GOAL,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cli.run(main)  # a bad config or artifact: one line, no traceback
