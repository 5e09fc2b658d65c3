"""Layer-wise accuracy (shared head) and layer-pair similarity of one run's hidden states."""

import argparse

import pandas as pd

from layerwise import cli
from layerwise.hidden.files import read_hidden
from layerwise.hidden.metrics import LAYER_METRICS, layer_accuracy
from layerwise.similarity.measures import (ESTIMATORS, cos_cka_agreement, cos_to_last_frame,
                                           norm_ratio_frame, similarity_frame)
from layerwise.io import write_csv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", action="append", nargs=2, metavar=("SPLIT", "FILE"),
                        required=True, help="a split and its hidden-state file")
    parser.add_argument("--spec-hash", required=True, help="hash of the run spec the files need")
    parser.add_argument("--similarity-split", required=True)
    parser.add_argument("--cka", nargs="+", choices=sorted(ESTIMATORS),
                        default=["linear_biased"], help="CKA estimators to compute")
    parser.add_argument("--rbf-threshold", type=float, default=1.0)
    parser.add_argument("--cka-batch-size", type=int, default=None,
                        help="minibatch size for the unbiased linear CKA (default: full batch)")
    parser.add_argument("--accuracy-out", required=True)
    parser.add_argument("--similarity-out", required=True)
    parser.add_argument("--cos-per-sample-out", required=True)
    parser.add_argument("--agreement-out", required=True)
    parser.add_argument("--norm-ratio-out", required=True)
    parser.add_argument("--metric", choices=sorted(LAYER_METRICS), default="accuracy",
                        help="the task's metric, written beside accuracy when it is another")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    cli.set_threads(args.threads)

    rows, similarity, per_sample, norm_ratio = [], None, None, None
    for split, path in args.hidden:
        hidden = read_hidden(path, args.spec_hash)
        logits, labels = hidden["logits"], hidden["labels"]
        scores = {"accuracy": layer_accuracy(logits, labels),
                  args.metric: LAYER_METRICS[args.metric](logits, labels)}
        for layer in range(len(logits)):
            rows.append({"split": split, "layer": layer,
                         **{name: float(values[layer]) for name, values in scores.items()}})
        if split == args.similarity_split:
            similarity = similarity_frame(hidden["representations"], tuple(args.cka),
                                          args.rbf_threshold, args.cka_batch_size)
            per_sample = cos_to_last_frame(hidden["representations"])
            norm_ratio = norm_ratio_frame(hidden["representations"])
    if similarity is None:
        raise SystemExit(f"error: similarity split {args.similarity_split!r} not among --hidden")
    write_csv(args.accuracy_out, pd.DataFrame(rows))
    write_csv(args.similarity_out, similarity)
    write_csv(args.cos_per_sample_out, per_sample)
    write_csv(args.agreement_out, cos_cka_agreement(similarity))
    write_csv(args.norm_ratio_out, norm_ratio)


if __name__ == "__main__":
    cli.run(main)
