"""Early exit of one run: the threshold sweep on its stored exit logits, the operating point of
each policy (chosen on validation, reported on test), exit counts per layer, every test
sample's saturation layer, and the wall-clock time of real early exit at each operating point
against full-depth inference of the trained model."""

import argparse
import json

import pandas as pd
import torch

from layerwise import cli
from layerwise.hidden.files import read_hidden
from layerwise.data.prepared import load_split
from layerwise.exits.online import flop_profile, time_operating_points
from layerwise.exits.offline import LayerExits, evaluate_policy
from layerwise.io import load_tensors, write_csv
from layerwise.models import build_run_model
from layerwise.provenance import config_hash
from layerwise.exits.saturation import layer_histogram, saturation_layers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="the run spec, as JSON")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    parser.add_argument("--val", required=True, help="validation hidden states")
    parser.add_argument("--test", required=True, help="test hidden states")
    parser.add_argument("--policies", nargs="+", required=True)
    parser.add_argument("--sweep-points", type=int, required=True)
    parser.add_argument("--max-drop", type=float, required=True)
    parser.add_argument("--batch-sizes", type=int, nargs="+", required=True,
                        help="batch sizes to time")
    parser.add_argument("--samples", type=int, required=True, help="test samples to time")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep-out", required=True)
    parser.add_argument("--operating-points-out", required=True)
    parser.add_argument("--exit-counts-out", required=True)
    parser.add_argument("--saturation-out", required=True)
    parser.add_argument("--timing-out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    cli.set_threads(args.threads)

    spec = json.loads(args.spec)
    spec_hash = config_hash(spec)
    val, test = (read_hidden(path, spec_hash) for path in (args.val, args.test))
    # exits are at layers 1..L
    val, test = (LayerExits.from_logits(split["logits"][1:], split["labels"], args.policies)
                 for split in (val, test))
    num_layers = test.num_layers
    x, _, info = load_split(args.data, "test")
    model = build_run_model(spec, info)
    model.load_state_dict(load_tensors(args.model, metadata={"spec_hash": spec_hash})[0])
    flops = flop_profile(model, x[:1])

    curves, points, counts = [], [], []
    for policy in args.policies:
        curve, point, layers = evaluate_policy(policy, val, test, args.max_drop,
                                               args.sweep_points, flops)
        curves.append(curve)
        points.append(point)
        counts.append(pd.DataFrame({"policy": policy, "layer": range(1, num_layers + 1),
                                    "count": layer_histogram(layers, num_layers)}))
    saturation = saturation_layers(test.predictions)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    exits = {p["policy"]: (p["policy"], p["threshold"]) for p in points}
    timing = time_operating_points(model, x[:args.samples].to(device), exits, args.batch_sizes,
                                   args.warmup, args.repeats)

    write_csv(args.sweep_out, pd.concat(curves, ignore_index=True))
    write_csv(args.operating_points_out, pd.DataFrame(points))
    write_csv(args.exit_counts_out, pd.concat(counts, ignore_index=True))
    write_csv(args.saturation_out, pd.DataFrame({
        "split": "test", "sample": range(len(saturation)), "saturation_layer": saturation}))
    write_csv(args.timing_out, timing)


if __name__ == "__main__":
    cli.run(main)
