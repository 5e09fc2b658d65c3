"""Train one run (experiment x method x seed) and write its weights, log and provenance.

With --processes N > 1 the script starts itself N times as torchrun would (one process per
GPU; gloo on CPU); every process trains its shard of each global batch and rank 0 writes the
checkpoint and the outputs. `torchrun --nproc_per_node N scripts/train.py ...` works as well.
"""

import json
import sys
import time
from pathlib import Path

import pandas as pd

from layerwise import cli
from layerwise.train import distributed
from layerwise.data.prepared import load_split
from layerwise.io import save_tensors, write_csv, write_json
from layerwise.train.runs import build_run_model
from layerwise.provenance import config_hash, provenance
from layerwise.seeding import seed_everything
from layerwise.train.loop import TrainSpec, remove_checkpoint, start_from, train
from layerwise.train.methods import METHODS

#: A run spec (StudyPlan.run_spec): what determines the run's weights, hashed into them.
RUN_KEYS = ("experiment", "dataset", "method", "seed", "model", "train")


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the run spec: everything that determines its weights")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--checkpoint", required=True, help="resumable checkpoint file")
    cli.add_run_outputs(parser, "training log")
    parser.add_argument("--init", nargs="?", help="weights of the pretraining run the spec's "
                                                  "`init` names (required with it): the run "
                                                  "fine-tunes them; a bare --init names none")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads; a streamed dataset uses threads - 1 loader workers")
    parser.add_argument("--processes", type=int, default=1,
                        help="training processes (GPUs) of one distributed run, via torchrun")
    args = parser.parse_args(argv)

    if args.processes > 1 and not distributed.launched_by_torchrun():
        # this process becomes the launcher (torchrun's agent) and waits for the workers
        distributed.launch(args.processes, str(Path(__file__).resolve()),
                           list(sys.argv[1:] if argv is None else argv))
        return

    spec = cli.read_spec(args.spec, RUN_KEYS, optional=("init", *METHODS))
    spec_hash = config_hash(spec)
    cli.set_threads(args.threads)
    started = time.time()
    seed_everything(spec["seed"])
    data = {split: load_split(args.data, split)[:2] for split in ("train", "val")}
    info = load_split(args.data, "val")[2]
    model = build_run_model(spec, info)
    if spec.get("init") is not None:
        if args.init is None:
            raise SystemExit("error: the run spec starts from a pretraining run: give its "
                             "weights with --init")
        start_from(model, Path(args.init), config_hash(spec["init"]))
    train_spec = TrainSpec.from_config(spec["method"], spec["seed"], spec["train"],
                                       spec.get(spec["method"]))
    shard, device = distributed.init_from_env()
    try:
        log = train(model, data, train_spec, Path(args.checkpoint), spec_hash, device,
                    workers=max(0, args.threads - 1))
        if not shard.is_main:
            return
        save_tensors(args.model, model.state_dict(), {"spec_hash": spec_hash,
                                                      "spec": json.dumps(spec, sort_keys=True)})
        write_csv(args.log, pd.DataFrame(log))
        write_json(args.provenance, provenance(spec=spec, spec_hash=spec_hash, seed=spec["seed"],
                                               wall_seconds=round(time.time() - started, 2),
                                               final_val_accuracy=log[-1]["val_accuracy"],
                                               processes=shard.world))
        # The run is complete: its resumable state is no longer needed (a job killed before
        # this point keeps it and resumes from it).
        remove_checkpoint(Path(args.checkpoint))
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    cli.run(main)
