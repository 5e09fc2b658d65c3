"""Everything the study reads of one classification run, in one process (loading the model
costs more than the work): every layer's representation and exit logits of each split (the
shared head, or each layer's own in a multi-exit model), written as hidden-state files; the
layer-wise accuracy and the similarity between layers; and, with the --*-out options of the
early-exit study, the threshold sweep on the exit logits, each policy's operating point
(chosen on validation, reported on test), exit counts per layer, every test sample's
saturation layer, and the wall-clock time of real early exit at each operating point against
full-depth inference."""

import argparse
import json

import pandas as pd
import torch

from layerwise import cli
from layerwise.data.prepared import load_split, subset_order
from layerwise.exits import offline
from layerwise.exits.offline import LayerExits
from layerwise.exits.online import flop_profile, time_operating_points
from layerwise.hidden.extract import predict_layers
from layerwise.hidden.metrics import LAYER_METRICS, layer_accuracy
from layerwise.io import load_tensors, save_tensors, write_csv
from layerwise.train.runs import build_run_model
from layerwise.provenance import config_hash
from layerwise.similarity.measures import (ESTIMATORS, cos_cka_agreement, cos_to_last_frame,
                                           norm_ratio_frame, similarity_frame)
from layerwise.train.batches import take

SPLITS = ("train", "val", "test")
EXIT_OUTPUTS = ("sweep", "operating_points", "exit_counts", "saturation", "timing")


def extract(model, spec_hash: str, args) -> tuple[dict[str, dict], torch.Tensor]:
    """Each split's representations, exit logits and labels, also written to its file, and the
    test split's inputs (what real early exit is timed on)."""
    hidden = {}
    for split, out in zip(SPLITS, (args.train_out, args.val_out, args.test_out)):
        x, y, _ = load_split(args.data, split)
        if split == "train" and args.train_samples and args.train_samples < len(y):
            subset = subset_order(len(y))[:args.train_samples].sort().values
            x, y = take(x, subset), y[subset]
        reps, logits, targets = predict_layers(model, x, y, workers=max(0, args.threads - 1))
        hidden[split] = {"representations": reps, "logits": logits, "labels": targets}
        save_tensors(out, hidden[split], {"spec_hash": spec_hash, "split": split})
    return hidden, x


def layerwise_analysis(hidden: dict[str, dict], args) -> None:
    """Layer-wise accuracy (shared head) of every split and the similarity between layers of
    the similarity split."""
    rows = []
    for split in SPLITS:
        logits, labels = hidden[split]["logits"], hidden[split]["labels"]
        scores = {"accuracy": layer_accuracy(logits, labels),
                  args.metric: LAYER_METRICS[args.metric](logits, labels)}
        for layer in range(len(logits)):
            rows.append({"split": split, "layer": layer,
                         **{name: float(values[layer]) for name, values in scores.items()}})
    reps = hidden[args.similarity_split]["representations"]
    similarity = similarity_frame(reps, tuple(args.cka), args.rbf_threshold, args.cka_batch_size)
    write_csv(args.accuracy_out, pd.DataFrame(rows))
    write_csv(args.similarity_out, similarity)
    write_csv(args.cos_per_sample_out, cos_to_last_frame(reps))
    write_csv(args.agreement_out, cos_cka_agreement(similarity))
    write_csv(args.norm_ratio_out, norm_ratio_frame(reps))


def exit_study(model, hidden: dict[str, dict], test_inputs, args, device) -> None:
    """The early-exit sweep and operating points on the stored exit logits, saturation, and
    real early exit timed against full depth."""
    val, test = (LayerExits.from_logits(hidden[split]["logits"][1:], hidden[split]["labels"],
                                        args.policies)  # exits are at layers 1..L
                 for split in ("val", "test"))
    flops = flop_profile(model, test_inputs[:1].to(device))
    study = offline.exit_study(args.policies, val, test, args.max_drop, args.sweep_points, flops)
    timing = time_operating_points(model, test_inputs[:args.samples].to(device), study.exits(),
                                   args.batch_sizes, args.warmup, args.repeats)
    study.write(args.sweep_out, args.operating_points_out, args.exit_counts_out,
                args.saturation_out)
    write_csv(args.timing_out, timing)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="the run spec, as JSON")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    for split in SPLITS:
        parser.add_argument(f"--{split}-out", required=True,
                            help=f"hidden-state file of the {split} split")
    parser.add_argument("--train-samples", type=int,
                        help="extract only this many training samples (a fixed random subset)")
    parser.add_argument("--similarity-split", required=True, choices=SPLITS)
    parser.add_argument("--cka", nargs="+", choices=sorted(ESTIMATORS),
                        default=["linear_biased"], help="CKA estimators to compute")
    parser.add_argument("--rbf-threshold", type=float, default=1.0)
    parser.add_argument("--cka-batch-size", type=int, default=None,
                        help="minibatch size for the unbiased linear CKA (default: full batch)")
    parser.add_argument("--metric", choices=sorted(LAYER_METRICS), default="accuracy",
                        help="the task's metric, written beside accuracy when it is another")
    for name in ("accuracy", "similarity", "cos-per-sample", "agreement", "norm-ratio"):
        parser.add_argument(f"--{name}-out", required=True)
    exits = parser.add_argument_group("early-exit study (all of its outputs, or none)")
    for name in EXIT_OUTPUTS:
        exits.add_argument(f"--{name.replace('_', '-')}-out")
    exits.add_argument("--policies", nargs="+")
    exits.add_argument("--sweep-points", type=int, default=50)
    exits.add_argument("--max-drop", type=float, default=0.01)
    exits.add_argument("--batch-sizes", type=int, nargs="+", default=[1],
                       help="batch sizes to time")
    exits.add_argument("--samples", type=int, default=64, help="test samples to time")
    exits.add_argument("--warmup", type=int, default=1)
    exits.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads; a streamed dataset uses threads - 1 loader workers")
    args = parser.parse_args(argv)
    given = [getattr(args, f"{name}_out") is not None for name in EXIT_OUTPUTS]
    if any(given) and not (all(given) and args.policies):
        parser.error("the early-exit study needs --policies and every one of "
                     + ", ".join(f"--{n.replace('_', '-')}-out" for n in EXIT_OUTPUTS))
    cli.set_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    spec = json.loads(args.spec)
    spec_hash = config_hash(spec)
    weights, _ = load_tensors(args.model, metadata={"spec_hash": spec_hash})
    model = build_run_model(spec, load_split(args.data, "val")[2])
    model.load_state_dict(weights)
    model.to(device)
    hidden, test_inputs = extract(model, spec_hash, args)
    layerwise_analysis(hidden, args)
    if all(given):
        model.eval()
        exit_study(model, hidden, test_inputs, args, device)


if __name__ == "__main__":
    cli.run(main)
