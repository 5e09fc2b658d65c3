"""Layer-wise accuracy (shared head) and layer-pair similarity of one run's hidden states."""

import argparse

import pandas as pd

from layerwise import cli
from layerwise.analysis import layer_accuracy, read_hidden, similarity_frame
from layerwise.io import write_csv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", action="append", nargs=2, metavar=("SPLIT", "FILE"),
                        required=True, help="a split and its hidden-state file")
    parser.add_argument("--spec-hash", required=True, help="hash of the run spec the files need")
    parser.add_argument("--similarity-split", required=True)
    parser.add_argument("--accuracy-out", required=True)
    parser.add_argument("--similarity-out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    cli.set_threads(args.threads)

    rows, similarity = [], None
    for split, path in args.hidden:
        hidden = read_hidden(path, args.spec_hash)
        for layer, acc in enumerate(layer_accuracy(hidden["logits"], hidden["labels"])):
            rows.append({"split": split, "layer": layer, "accuracy": acc})
        if split == args.similarity_split:
            similarity = similarity_frame(hidden["representations"])
    if similarity is None:
        raise SystemExit(f"error: similarity split {args.similarity_split!r} not among --hidden")
    write_csv(args.accuracy_out, pd.DataFrame(rows))
    write_csv(args.similarity_out, similarity)


if __name__ == "__main__":
    cli.run(main)
