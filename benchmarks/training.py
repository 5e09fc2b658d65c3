"""Seconds per training epoch of each method, side by side in one process.

    python -m benchmarks.training [--config config/config.yaml] [--experiment NAME]
                                  [--repeats 5] [--threads 1]

Builds the experiment's model and data (nothing is trained beyond the timed epochs), runs one
warm-up epoch per method, then times `repeats` epochs per method (standard, aligned and
multi_exit), interleaved so that all see the same machine load. Prints one JSON object as its
last line: median seconds per epoch per method and each method's ratio to standard.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from benchmarks import experiment_split
from layerwise import cli
from layerwise.train.runs import build_run_model
from layerwise.seeding import seed_everything
from layerwise.train.loop import TrainSpec, make_optimizer, run_epoch
from layerwise.train.methods import METHODS, layer_weights


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", help="experiment name (default: the first)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    exp, x, y, info = experiment_split(args.config, args.experiment, "train")

    runners = {}
    for method in METHODS:
        seed_everything(0)
        model = build_run_model({"method": method, "model": exp["model"]}, info)
        spec = TrainSpec.from_config(method, 0, exp["train"], exp.get(method))
        optimizer, scheduler = make_optimizer(model, spec, math.ceil(len(y) / spec.batch_size))
        weights = layer_weights(model.num_layers, spec.weighting)
        runners[method] = (model, optimizer, scheduler, spec, weights)

    def epoch(method: str, index: int) -> float:
        model, optimizer, scheduler, spec, weights = runners[method]
        started = time.perf_counter()
        run_epoch(model, optimizer, scheduler, x, y, spec, index, weights)
        return time.perf_counter() - started

    for method in METHODS:
        epoch(method, 0)  # warm-up
    times = {method: [] for method in METHODS}
    for index in range(1, args.repeats + 1):
        for method in METHODS:
            times[method].append(epoch(method, index))
            print(f"{method:10s} epoch {index}: {times[method][-1]:.3f} s", flush=True)

    seconds = {m: statistics.median(t) for m, t in times.items()}
    result = {
        "experiment": exp["name"], "train_samples": len(y), "threads": args.threads,
        "depth": exp["model"]["depth"], "width": exp["model"]["width"],
        "batch_size": exp["train"]["batch_size"], "repeats": args.repeats,
        "seconds_per_epoch": {m: round(s, 4) for m, s in seconds.items()},
        "ratio_to_standard": {m: round(s / seconds["standard"], 3) for m, s in seconds.items()
                              if m != "standard"},
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    cli.run(main)  # a bad config or artifact: one line, no traceback
