"""Fit a tuned lens (a post-hoc run: the `base` run of its spec, frozen, gets one affine
translator per layer) on the training split, and write the run's weights, log and provenance as
a training run writes them, so that every analysis reads it as one more method.

A classifier's lens is fitted on the base run's stored training-split states (only the head
path runs); a language model's on its training blocks streamed through the frozen model."""

import json
import time
from pathlib import Path

import pandas as pd
import torch

from layerwise import cli
from layerwise.data.prepared import load_split
from layerwise.hidden.files import read_hidden
from layerwise.io import save_tensors, write_csv, write_json
from layerwise.provenance import config_hash, provenance
from layerwise.seeding import seed_everything
from layerwise.train.lens import fit_lens_on_batches, fit_lens_on_states
from layerwise.train.loop import start_from
from layerwise.train.methods import METHODS
from layerwise.train.runs import build_run_model


def block_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
    """Batches of training blocks in a seeded order, a new order each pass."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        for rows in torch.randperm(len(y), generator=generator).split(batch_size):
            yield x[rows], y[rows]


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the lens run's spec, its base run's whole under `base`")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--base-model", required=True, help="weights of the spec's base run")
    parser.add_argument("--states", nargs="?",
                        help="the base run's training-split hidden states (a classifier's); "
                             "without them (or with a bare --states) the blocks are streamed")
    cli.add_run_outputs(parser, "fitting log")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    spec = cli.read_spec(args.spec, ("experiment", "dataset", "method", "seed", "model", "base"),
                         optional=tuple(METHODS))
    spec_hash = config_hash(spec)
    settings = METHODS[spec["method"]].parse_settings(spec[spec["method"]])
    cli.set_threads(args.threads)
    started = time.time()
    seed_everything(spec["seed"])
    x, y, info = load_split(args.data, "train")
    model = build_run_model(spec, info)
    start_from(model, Path(args.base_model), config_hash(spec["base"]))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    if args.states:
        reps = read_hidden(args.states, config_hash(spec["base"]))["representations"]
        log = fit_lens_on_states(model, reps, settings.steps, settings.lr, settings.batch_size)
    else:
        size = settings.batch_size or spec["base"]["train"]["batch_size"]
        log = fit_lens_on_batches(model, block_batches(x, y, size, spec["seed"]),
                                  settings.steps, settings.lr)
    save_tensors(args.model, model.state_dict(), {"spec_hash": spec_hash,
                                                  "spec": json.dumps(spec, sort_keys=True)})
    write_csv(args.log, pd.DataFrame(log))
    write_json(args.provenance, provenance(spec=spec, spec_hash=spec_hash, seed=spec["seed"],
                                           wall_seconds=round(time.time() - started, 2),
                                           final_kl=log[-1]["kl"]))


if __name__ == "__main__":
    cli.run(main)
