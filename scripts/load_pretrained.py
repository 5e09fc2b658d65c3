"""Write the run of a pretrained checkpoint as published (method `pretrained`): the weights
`model.pretrained` names, with no step of training, where a training run writes its own, so
that every analysis reads it as one more method. Its log holds one row, the validation accuracy
of the head the checkpoint came with (a language model's next-token accuracy, CLIP's
zero-shot accuracy)."""

import json
import time

import pandas as pd
import torch

from layerwise import cli
from layerwise.data.prepared import load_split
from layerwise.io import save_tensors, write_csv, write_json
from layerwise.provenance import config_hash, provenance
from layerwise.seeding import seed_everything
from layerwise.train.loop import accuracy
from layerwise.train.runs import build_run_model

# samples scored at once: a language model's logits are (batch, tokens, vocabulary)
BATCH_SIZE = 16


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the run spec: the experiment, dataset, model and seed")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    cli.add_run_outputs(parser, "one-row log")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    spec = cli.read_spec(args.spec, ("experiment", "dataset", "method", "seed", "model"))
    spec_hash = config_hash(spec)
    cli.set_threads(args.threads)
    started = time.time()
    seed_everything(spec["seed"])
    x, y, info = load_split(args.data, "val")
    model = build_run_model(spec, info)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    val_accuracy = accuracy(model, x, y, batch_size=BATCH_SIZE)
    save_tensors(args.model, model.state_dict(),
                 {"spec_hash": spec_hash, "spec": json.dumps(spec, sort_keys=True)})
    write_csv(args.log, pd.DataFrame([{"epoch": 0, "val_accuracy": val_accuracy}]))
    write_json(args.provenance, provenance(spec=spec, spec_hash=spec_hash, seed=spec["seed"],
                                           wall_seconds=round(time.time() - started, 2),
                                           final_val_accuracy=val_accuracy,
                                           checkpoint=spec["model"]["pretrained"]))


if __name__ == "__main__":
    cli.run(main)
