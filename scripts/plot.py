"""Draw one figure of an experiment from its summary tables (PDF and PNG)."""

import argparse

import pandas as pd

from layerwise import cli
from layerwise.analysis import frame_matrix
from layerwise.plots import (curves_vs_last_figure, heatmap_grid_figure,
                             layerwise_accuracy_figure, save_figure)

MEASURES = {"cos": ("cos", "COS (centered)"), "cka": ("cka_linear_biased", "linear CKA")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=("layerwise_accuracy", "heatmaps", "curves_vs_last"))
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--accuracy", help="the experiment's layer_accuracy.csv")
    parser.add_argument("--similarity", help="the experiment's similarity.csv")
    parser.add_argument("--measure", choices=sorted(MEASURES), default="cos")
    parser.add_argument("--method")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pdf", required=True)
    parser.add_argument("--png", required=True)
    args = parser.parse_args(argv)

    if args.figure == "layerwise_accuracy":
        acc = pd.read_csv(args.accuracy)
        fig = layerwise_accuracy_figure(
            acc, args.split, title=f"{args.experiment}: layer-wise {args.split} accuracy, "
            "last-layer classifier")
    elif args.figure == "heatmaps":
        sim = pd.read_csv(args.similarity)
        measure, label = MEASURES[args.measure]
        sim = sim[sim["measure"] == measure]
        matrices = {m: frame_matrix(g) for m, g in sim.groupby("method", sort=False)}
        fig = heatmap_grid_figure(matrices, f"{args.experiment}: {label} between layers, "
                                  "mean over seeds", label)
    else:
        fig = curves_vs_last_figure(pd.read_csv(args.accuracy), pd.read_csv(args.similarity),
                                    args.method, args.split)
    save_figure(fig, args.pdf, args.png)


if __name__ == "__main__":
    cli.run(main)
