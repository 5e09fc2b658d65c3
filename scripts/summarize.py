"""Gather one experiment's per-run analysis files into tidy tables and the accuracy table.

Each run folder holds the files named in RUN_FILES; each is gathered over runs (with `method`
and `seed` columns added) into a file of the same name in the output folder.
"""

import argparse
from pathlib import Path

import pandas as pd

from layerwise import cli
from layerwise.io import read_json, write_csv
from layerwise.report.tables import (format_accuracy_table, layerwise_accuracy_table, over_seeds,
                                     token_table, write_table)

RUN_FILES = ("layer_accuracy.csv", "similarity.csv", "cos_per_sample.csv", "agreement.csv",
             "norm_ratio.csv")


def gather(runs, name: str) -> pd.DataFrame:
    frames = [pd.read_csv(Path(folder) / name).assign(method=method, seed=int(seed))
              for method, seed, folder in runs]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["method", "seed"] + [c for c in frame.columns if c not in ("method", "seed")]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", nargs=3, required=True,
                        metavar=("METHOD", "SEED", "RUN_DIR"))
    parser.add_argument("--out-dir", required=True, help="folder for the gathered files")
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    parser.add_argument("--table-split", default="test")
    parser.add_argument("--metric", default="accuracy",
                        help="the layer_accuracy.csv column the table reports (accuracy or f1)")
    parser.add_argument("--baselines", help="a language model's dataset info.json: the table "
                                            "gives accuracy and cross-entropy beside its "
                                            "unigram and bigram baselines")
    args = parser.parse_args(argv)

    for name in RUN_FILES:
        write_csv(Path(args.out_dir) / name, gather(args.run, name))
    accuracy = gather(args.run, "layer_accuracy.csv")
    if args.baselines:
        table, shown = token_table(accuracy, args.table_split,
                                   read_json(args.baselines)["ngram_baselines"])
        write_table(table, args.table,
                    f"Layer-wise {args.table_split} next-token accuracy (%) and cross-entropy "
                    f"(nats) with the shared LM head, {over_seeds(accuracy)}, beside a unigram "
                    "and a bigram model fitted on the training split and scored on the same "
                    "tokens.", formatted=shown)
        return
    table = layerwise_accuracy_table(accuracy, args.table_split, args.metric)
    caption = (f"Layer-wise {args.table_split} {args.metric} with the last-layer classifier, "
               f"{over_seeds(accuracy)} (%).")
    write_table(table, args.table, caption, formatted=format_accuracy_table(table))


if __name__ == "__main__":
    cli.run(main)
