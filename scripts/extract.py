"""Extract every layer's representation and shared-head logits for the evaluation splits."""

import argparse
import json

from layerwise import cli
from layerwise.data import load_split
from layerwise.io import load_tensors, save_tensors
from layerwise.models import build_model
from layerwise.provenance import config_hash
from layerwise.training import predict_layers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="the run spec, as JSON")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    parser.add_argument("--split", action="append", nargs=2, metavar=("SPLIT", "OUT"),
                        required=True, help="a split to extract and its output file")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    spec = json.loads(args.spec)
    spec_hash = config_hash(spec)
    cli.set_threads(args.threads)
    weights, _ = load_tensors(args.model, metadata={"spec_hash": spec_hash})
    model = None
    for split, out in args.split:
        x, y, info = load_split(args.data, split)
        if model is None:
            model = build_model(spec["model"], info)
            model.load_state_dict(weights)
        reps, logits = predict_layers(model, x)
        save_tensors(out, {"representations": reps, "logits": logits, "labels": y},
                     {"spec_hash": spec_hash, "split": split})


if __name__ == "__main__":
    cli.run(main)
