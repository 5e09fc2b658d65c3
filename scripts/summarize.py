"""Gather one experiment's per-run results into tidy tables and the layer-wise accuracy table."""

import argparse

import pandas as pd

from layerwise import cli
from layerwise.io import write_csv
from layerwise.tables import format_accuracy_table, layerwise_accuracy_table, write_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="append", nargs=4, required=True,
                        metavar=("METHOD", "SEED", "ACCURACY_CSV", "SIMILARITY_CSV"))
    parser.add_argument("--accuracy-out", required=True)
    parser.add_argument("--similarity-out", required=True)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    parser.add_argument("--table-split", default="test")
    args = parser.parse_args(argv)

    def gather(column):
        frames = [pd.read_csv(run[column]).assign(method=run[0], seed=int(run[1]))
                  for run in args.run]
        frame = pd.concat(frames, ignore_index=True)
        return frame[["method", "seed"] + [c for c in frame.columns if c not in ("method", "seed")]]

    accuracy, similarity = gather(2), gather(3)
    write_csv(args.accuracy_out, accuracy)
    write_csv(args.similarity_out, similarity)
    table = layerwise_accuracy_table(accuracy, args.table_split)
    seeds = accuracy["seed"].nunique()
    write_table(table, args.table, f"Layer-wise {args.table_split} accuracy with the last-layer "
                f"classifier, mean ± sd over {seeds} seeds (%).",
                formatted=format_accuracy_table(table))


if __name__ == "__main__":
    cli.run(main)
