"""Projected GPU-hours of every paper experiment, from the FLOPs its models take at its shapes.

    python -m benchmarks.paper_cost --out /tmp/paper_shapes [--utilization 0.3]
                                    [--peak-tflops 989]

Reads the prepared stand-in datasets and the private hub cache of `benchmarks.paper_shapes`
(run it first with the same --out), builds every trained run of config/paper.yaml at its shapes
(each method's exit heads and lenses included) and counts, with torch's FlopCounterMode, the
floating-point operations of one training step per sample (forward and backward of the method's
loss; an alternating method's two kinds of step averaged) and of one forward pass through every
layer's exit per sample (evaluation and analysis). A run's total is

    train FLOPs/sample x training samples x epochs
      + forward FLOPs/sample x (validation samples x epochs + every split's samples once)

at the full datasets' sizes (below), and its GPU-hours, for each of its seeds, that total over the GPU's dense bf16
peak times an assumed utilization (`--utilization`, 0.3 by default: a stated guess, not a
measurement; a GPU run of benchmarks.gpu_smoke measures it). A tuned lens is fitted for
`tuned_lens.steps` steps of its batch with the model frozen (forward of the model, forward and
backward of the translators); a checkpoint analysed as published (`pretrained`)
costs its forward passes alone. Prints a Markdown table and one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Official split sizes of the paper's datasets (train, official test) and, for WikiText-103,
# articles; CIFAR, MNIST, ImageNet-1K and GLUE as published.
FULL_SIZES = {
    "cifar10": (50_000, 10_000), "mnist": (60_000, 10_000), "imagenet": (1_281_167, 50_000),
    "glue_sst2": (67_349, 872), "glue_mrpc": (3_668, 408), "glue_qnli": (104_743, 5_463),
    "glue_mnli": (392_702, 9_815), "glue_rte": (2_490, 277), "glue_qqp": (363_846, 40_430),
    "wikitext103": (28_475, 60),
}
H100_BF16_DENSE_TFLOPS = 989.0


def flops_of(function) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def run_flops(plan, experiment: str, run: str, info: dict, x, y) -> dict:
    """{"train": per-sample FLOPs of a training step, "forward": of an all-exit forward}."""
    import torch

    from layerwise.train.loop import TrainSpec, training_loss
    from layerwise.train.methods import layer_weights, method
    from layerwise.train.runs import build_run_model

    spec = plan.run_spec(experiment, run, 0)
    model = build_run_model(spec, info)
    samples = len(y)
    # a lens is fitted post hoc (counted by the caller from its forward); a checkpoint
    # analysed as published takes no step
    train_flops = 0
    record = method(spec["method"])
    if not (record.lens or record.as_loaded):
        train = TrainSpec.from_config(spec["method"], 0, spec["train"], spec.get(spec["method"]))
        weights = layer_weights(model.num_layers, train.weighting)

        def step(parity: int):
            loss, _ = training_loss(model, x, y, train, parity, weights)
            loss.backward()

        train_flops = sum(flops_of(lambda p=p: step(p)) for p in (0, 1)) / 2 / samples
    with torch.no_grad():
        forward = flops_of(lambda: model.layer_exit_logits(model.layer_representations(x)))
    return {"train": train_flops, "forward": forward / samples}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="the working folder of benchmarks.paper_shapes")
    parser.add_argument("--utilization", type=float, default=0.3)
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS)
    parser.add_argument("--samples", type=int, default=2, help="samples per counted batch")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    os.environ.update(HF_HOME=str(out / "hf"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

    import torch
    import yaml

    from layerwise.data.prepared import load_split
    from layerwise.study.config import validate_config
    from layerwise.study.plan import StudyPlan
    from layerwise.train.methods import METHODS
    from layerwise.train.runs import split_run_name

    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    config.update(yaml.safe_load((root / "config" / "paper.yaml").read_text()))
    plan = StudyPlan(validate_config(config))
    data = out / "project" / "results" / "data"
    rows = []
    for exp in plan.config["experiments"]:
        name, dataset = exp["name"], exp["dataset"]
        if not (data / dataset / "info.json").exists():
            print(f"skipped {name}: {dataset} not prepared in {data}", file=sys.stderr)
            continue
        x, y, info = load_split(data / dataset, "test")
        x, y = x[:args.samples], y[:args.samples]
        if hasattr(x, "materialize"):   # ImageNet's streamed images
            x = x.materialize()
        train_n, test_n = FULL_SIZES[dataset]
        val_n = round(train_n * plan.dataset_spec(dataset).get("val_fraction", 0))
        if plan.dataset_spec(dataset)["source"] == "wikitext":
            val_n = 60
        for run in plan.trained_runs(name) + [m for m in exp["methods"]
                                              if m not in plan.trained_runs(name)]:
            torch.manual_seed(0)
            counted = run_flops(plan, name, run, info, x, y)
            as_loaded = METHODS[split_run_name(run)[0]].as_loaded
            epochs = 0 if as_loaded else exp["train"]["epochs"]
            if counted["train"]:
                train_flops = counted["train"] * (train_n - val_n) * epochs
            elif as_loaded:   # a checkpoint as published: its validation score once
                train_flops = counted["forward"] * val_n
            else:   # a lens: steps of the frozen model's forward and the translators' step
                lens = plan.run_spec(name, run, 0)[run]
                batch = lens.get("batch_size") or exp["train"]["batch_size"]
                train_flops = 3 * counted["forward"] * lens["steps"] * batch
            total = train_flops + counted["forward"] * (val_n * epochs + train_n + test_n)
            hours = len(exp["seeds"]) * total / (args.peak_tflops * 1e12 * args.utilization
                                                 ) / 3600
            rows.append({"experiment": name, "run": run,
                         "train_gflops_per_sample": counted["train"] / 1e9,
                         "forward_gflops_per_sample": counted["forward"] / 1e9,
                         "epochs": epochs, "train_samples": train_n - val_n,
                         "seeds": len(exp["seeds"]),
                         "total_pflops": total / 1e15, "gpu_hours": hours})
            print(f"{name} {run}: {hours:.2f} GPU-h", file=sys.stderr)
    print("| experiment | run | train GFLOPs / sample | forward GFLOPs / sample | epochs | "
          "seeds | GPU-hours |\n|" + " --- |" * 7)
    for r in rows:
        print(f"| {r['experiment']} | {r['run']} | {r['train_gflops_per_sample']:,.1f} | "
              f"{r['forward_gflops_per_sample']:,.1f} | {r['epochs']} | {r['seeds']} | "
              f"{r['gpu_hours']:,.1f} |")
    total = sum(r["gpu_hours"] for r in rows)
    print(f"\nTotal: {total:,.0f} GPU-hours at {args.utilization:.0%} of "
          f"{args.peak_tflops:,.0f} TFLOP/s, every seed of every run")
    print(json.dumps({"utilization": args.utilization, "peak_tflops": args.peak_tflops,
                      "rows": rows, "gpu_hours": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
