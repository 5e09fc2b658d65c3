"""Layer-wise accuracy of an experiment's runs beside its shallower standard models (paper
Fig 5), their validation accuracy per epoch from the training logs, and the effective depth of
every run on train and test."""

import argparse

import pandas as pd

from layerwise import cli
from layerwise.report.exit_tables import effective_depth_table, format_effective_depth_table
from layerwise.io import write_csv
from layerwise.exits.saturation import effective_depths
from layerwise.report.tables import over_seeds, write_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="append", nargs=3, required=True,
                        metavar=("RUN", "SEED", "ACCURACY_CSV"))
    parser.add_argument("--log", action="append", nargs=3, default=[],
                        metavar=("RUN", "SEED", "TRAIN_LOG_CSV"))
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--accuracy-out", required=True)
    parser.add_argument("--val-curves-out", required=True)
    parser.add_argument("--effective-depth-out", required=True)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)

    accuracy = pd.concat([pd.read_csv(path).assign(run=run, seed=int(seed))
                          for run, seed, path in args.run], ignore_index=True)
    accuracy = accuracy[["run", "seed", "split", "layer", "accuracy"]]
    depths = effective_depths(accuracy, args.epsilon)
    write_csv(args.accuracy_out, accuracy)
    write_csv(args.effective_depth_out, depths)
    curves = [pd.read_csv(path)[["epoch", "val_accuracy"]].assign(run=run, seed=int(seed))
              for run, seed, path in args.log]
    write_csv(args.val_curves_out, pd.concat(curves, ignore_index=True)[
        ["run", "seed", "epoch", "val_accuracy"]] if curves else
        pd.DataFrame(columns=["run", "seed", "epoch", "val_accuracy"]))
    table = effective_depth_table(depths)
    write_table(table, args.table,
                f"Effective depth: the first layer whose accuracy reaches 1 - ε (else L), and "
                f"the first reaching (1 - ε) times the last layer's; ε = {args.epsilon:g}, "
                f"{over_seeds(depths)}.",
                formatted=format_effective_depth_table(table, args.epsilon))


if __name__ == "__main__":
    cli.run(main)
