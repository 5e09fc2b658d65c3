"""Train one run (experiment x method x seed) and write its weights, log and provenance."""

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from layerwise import cli
from layerwise.data import load_split
from layerwise.io import save_tensors, write_csv, write_json
from layerwise.models import build_model
from layerwise.provenance import config_hash, provenance
from layerwise.seeding import seed_everything
from layerwise.training import TrainSpec, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="the run spec, as JSON")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--checkpoint", required=True, help="resumable checkpoint file")
    parser.add_argument("--model", required=True, help="final weights (safetensors)")
    parser.add_argument("--log", required=True, help="training log (CSV)")
    parser.add_argument("--provenance", required=True, help="provenance (JSON)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    spec = json.loads(args.spec)
    spec_hash = config_hash(spec)
    cli.set_threads(args.threads)
    started = time.time()
    seed_everything(spec["seed"])
    data = {split: load_split(args.data, split)[:2] for split in ("train", "val")}
    info = load_split(args.data, "val")[2]
    model = build_model(spec["model"], info)
    train_spec = TrainSpec.from_config(spec["method"], spec["seed"], spec["train"],
                                       spec.get("aligned", {"weights": "linear",
                                                            "alternate": False}))
    log = train(model, data, train_spec, Path(args.checkpoint), spec_hash)

    save_tensors(args.model, model.state_dict(), {"spec_hash": spec_hash,
                                                  "spec": json.dumps(spec, sort_keys=True)})
    write_csv(args.log, pd.DataFrame(log))
    write_json(args.provenance, provenance(spec=spec, spec_hash=spec_hash, seed=spec["seed"],
                                           wall_seconds=round(time.time() - started, 2),
                                           final_val_accuracy=log[-1]["val_accuracy"]))


if __name__ == "__main__":
    cli.run(main)
