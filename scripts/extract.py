"""Extract every layer's representation and exit logits (shared head, or each layer's own in a
multi-exit model) for the requested splits."""

import argparse
import json

import torch

from layerwise import cli
from layerwise.train.batches import take
from layerwise.data.prepared import load_split
from layerwise.io import load_tensors, save_tensors
from layerwise.models import build_run_model
from layerwise.provenance import config_hash
from layerwise.hidden.extract import predict_layers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="the run spec, as JSON")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    parser.add_argument("--split", action="append", nargs=2, metavar=("SPLIT", "OUT"),
                        required=True, help="a split to extract and its output file")
    parser.add_argument("--train-samples", type=int,
                        help="extract only this many training samples (a fixed random subset)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads; a streamed dataset uses threads - 1 loader workers")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    spec = json.loads(args.spec)
    spec_hash = config_hash(spec)
    cli.set_threads(args.threads)
    weights, _ = load_tensors(args.model, metadata={"spec_hash": spec_hash})
    model = None
    for split, out in args.split:
        x, y, info = load_split(args.data, split)
        if split == "train" and args.train_samples and args.train_samples < len(y):
            subset = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
            subset = subset[:args.train_samples].sort().values
            x, y = take(x, subset), y[subset]
        if model is None:
            model = build_run_model(spec, info)
            model.load_state_dict(weights)
            model.to(device)
        reps, logits, targets = predict_layers(model, x, y, workers=max(0, args.threads - 1))
        save_tensors(out, {"representations": reps, "logits": logits, "labels": targets},
                     {"spec_hash": spec_hash, "split": split})


if __name__ == "__main__":
    cli.run(main)
