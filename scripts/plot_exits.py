"""Draw one early-exit or depth-study figure of an experiment from its summary tables."""

import argparse

import pandas as pd

from layerwise import cli
from layerwise.report.exit_figures import (depth_study_figure, exit_counts_figure,
                                           exit_tradeoff_figure, saturation_figure)
from layerwise.report.style import save_figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=("exit_tradeoff", "exit_counts", "saturation",
                                           "depth_study"))
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--data", required=True, help="the summary table the figure draws")
    parser.add_argument("--similarity", help="the experiment's similarity.csv (saturation)")
    parser.add_argument("--epsilon", type=float, help="effective-depth epsilon (depth_study)")
    parser.add_argument("--val-curves", help="depth_study: validation accuracy per epoch")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pdf", required=True)
    parser.add_argument("--png", required=True)
    args = parser.parse_args(argv)

    data, name = pd.read_csv(args.data), args.experiment
    if args.figure == "exit_tradeoff":
        fig = exit_tradeoff_figure(data, f"{name}: early exit, {args.split} accuracy against "
                                   "speed-up over the threshold sweep", args.split)
    elif args.figure == "exit_counts":
        fig = exit_counts_figure(data, f"{name}: exit layer at the operating point (test)")
    elif args.figure == "saturation":
        fig = saturation_figure(data, pd.read_csv(args.similarity),
                                f"{name}: saturation layer of each test sample")
    else:
        fig = depth_study_figure(data, args.epsilon, args.split,
                                 f"{name}: layer-wise {args.split} accuracy by model depth",
                                 None if args.val_curves is None else pd.read_csv(args.val_curves))
    save_figure(fig, args.pdf, args.png)


if __name__ == "__main__":
    cli.run(main)
