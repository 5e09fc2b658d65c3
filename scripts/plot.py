"""Draw a figure from an experiment's summary tables (PDF and PNG); with --batch, every
figure of a list in one process (the workflow draws an experiment's figures so: each takes a
second to draw after seconds of imports)."""

import argparse
import json

import pandas as pd

from layerwise import cli
from layerwise.io import read_json
from layerwise.similarity.measures import HEATMAPS, frame_matrix
from layerwise.report.figures import (METRIC_LABELS, adjacent_cos_figure, cos_boxplot_figure,
                                      curves_vs_last_figure, curves_vs_last_panels_figure,
                                      heatmap_grid_figure, layerwise_accuracy_figure,
                                      layerwise_panels_figure, similarity_heatmap_figure)
from layerwise.reference import curves, paper_values, similarity_curves
from layerwise.report.exit_figures import (depth_study_figure, exit_counts_figure,
                                           exit_tradeoff_figure, saturation_figure)
from layerwise.report.decoding import generation_figure, speculative_figure
from layerwise.report.style import save_figure

FIGURES = ("layerwise_accuracy", "heatmaps", "curves_vs_last", "cos_boxplot", "adjacent_cos",
           "cross_model", "residual_ablation", "text_layerwise", "exit_tradeoff", "exit_counts",
           "saturation", "depth_study", "speculative", "generation")
NO_REFERENCE = "-"


def paper_reference(key: str, label: str, acc: pd.DataFrame | None = None) -> dict | None:
    """The paper's curves named by --reference / --task-panel (those of the methods in `acc`,
    if given), or None for '-'."""
    methods = None if acc is None else set(acc["method"])
    return None if key == NO_REFERENCE else curves(key, label, methods)


def baseline_lines(info: str | None, split: str) -> dict | None:
    """{metric: {label: value}} of the unigram and bigram baselines in a language-model
    dataset's info.json, on the split's tokens (None without --baselines)."""
    if info is None:
        return None
    baselines = read_json(info)["ngram_baselines"]
    return {metric: {f"{name} model": baselines[name][split][metric] for name in baselines}
            for metric in ("accuracy", "cross_entropy")}


def draw(args):
    name = args.experiment
    if args.figure == "exit_tradeoff":
        return exit_tradeoff_figure(pd.read_csv(args.data), f"{name}: early exit, {args.split} "
                                    "accuracy against speed-up over the threshold sweep",
                                    args.split)
    if args.figure == "exit_counts":
        return exit_counts_figure(pd.read_csv(args.data),
                                  f"{name}: exit layer at the operating point (test)")
    if args.figure == "saturation":
        return saturation_figure(pd.read_csv(args.data), pd.read_csv(args.similarity),
                                 f"{name}: saturation layer of each test sample")
    if args.figure == "depth_study":
        return depth_study_figure(pd.read_csv(args.data), args.epsilon, args.split,
                                  f"{name}: layer-wise {args.split} accuracy by model depth",
                                  None if args.val_curves is None else pd.read_csv(args.val_curves))
    if args.figure == "speculative":
        return speculative_figure(pd.read_csv(args.data), f"{name}: self-speculative greedy "
                                  "decoding (test prompts, batch 1)")
    if args.figure == "generation":
        return generation_figure(pd.read_csv(args.data), f"{name}: text sampled with the exit "
                                 "fixed at layer k (paper Fig 9 c, d)")
    if args.figure == "layerwise_accuracy":
        acc = pd.read_csv(args.accuracy)
        if "cross_entropy" in acc:  # a language model: next-token accuracy and loss (Fig 9)
            loss = paper_reference(*args.loss_reference, acc) if args.loss_reference else None
            return layerwise_panels_figure(
                {"top-1 next token": (acc, "accuracy", paper_reference(*args.reference, acc)
                                      if args.reference else None),
                 "next-token loss": (acc, "cross_entropy", loss)},
                args.split, sharey=False, baselines=baseline_lines(args.baselines, args.split),
                title=f"{name}: layer-wise {args.split} tokens, shared LM head")
        return layerwise_accuracy_figure(
            acc, args.split, metric=args.metric,
            reference=paper_reference(*args.reference, acc) if args.reference else None,
            title=f"{name}: layer-wise {args.split} {METRIC_LABELS[args.metric]}, "
                  "last-layer classifier")
    if args.figure == "text_layerwise":
        panels = {}
        for title, path, metric, key, label in args.task_panel:
            acc = pd.read_csv(path)
            panels[title] = (acc, metric, paper_reference(key, label, acc))
        return layerwise_panels_figure(panels, args.split, f"Layer-wise {args.split} metric "
                                       "with the last-layer classifier (paper Fig 8 shape)")
    if args.figure == "heatmaps":
        measure = HEATMAPS[args.measure]
        sim = pd.read_csv(args.similarity)
        sim = sim[sim["measure"] == measure.name]
        matrices = {m: frame_matrix(g) for m, g in sim.groupby("method", sort=False)}
        return heatmap_grid_figure(matrices, f"{name}: {measure.label} between layers, mean over "
                                   "seeds", measure.label)
    if args.figure == "curves_vs_last":
        return curves_vs_last_figure(pd.read_csv(args.accuracy), pd.read_csv(args.similarity),
                                     args.method, args.split)
    if args.figure == "cos_boxplot":
        return cos_boxplot_figure(pd.read_csv(args.per_sample),
                                  f"{name}: per-sample COS with the last layer")
    if args.figure == "adjacent_cos":
        if args.norm_ratio is None:
            return adjacent_cos_figure(pd.read_csv(args.similarity),
                                       f"{name}: COS between consecutive layers")
        return adjacent_cos_figure(
            pd.read_csv(args.similarity), f"{name}: why adjacent layers stay similar",
            norm_ratio=pd.read_csv(args.norm_ratio),
            reference=("paper DeiT-S ImageNet (Fig 11b)",
                       paper_values()["fig11_deit_s_imagenet_val"]["norm_ratio"]))
    if args.figure == "cross_model":
        matrix = frame_matrix(pd.read_csv(args.similarity))
        fig = similarity_heatmap_figure(matrix, f"{name}: linear CKA, standard (rows) vs "
                                        "aligned (columns), mean over seeds", "linear CKA")
        fig.axes[0].set_xlabel("aligned layer")
        fig.axes[0].set_ylabel("standard layer")
        return fig
    panels = {label: (pd.read_csv(acc), pd.read_csv(sim))
              for label, acc, sim in args.panel}
    references = None
    if args.panel_reference:  # the paper's curves of each panel, in the order of --panel
        references = {title: (label, similarity_curves(key)) for (title, _, _), (key, label)
                      in zip(args.panel, args.panel_reference)}
    return curves_vs_last_panels_figure(panels, "standard", args.split,
                                        "Residual ablation: similarity to the last layer and "
                                        "accuracy", reference=references)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=FIGURES)
    parser.add_argument("--experiment", default="")
    parser.add_argument("--accuracy", help="an experiment's layer_accuracy.csv")
    parser.add_argument("--similarity", help="an experiment's similarity.csv (or cross-model CSV)")
    parser.add_argument("--per-sample", help="an experiment's cos_per_sample.csv")
    parser.add_argument("--norm-ratio", help="adjacent_cos: an experiment's norm_ratio.csv, "
                                             "drawn as a second panel (paper Fig 11b)")
    parser.add_argument("--panel", action="append", nargs=3,
                        metavar=("TITLE", "ACCURACY", "SIMILARITY"), help="residual_ablation panel")
    parser.add_argument("--panel-reference", action="append", nargs=2, metavar=("KEY", "LABEL"),
                        help="residual_ablation: the paper's curves of each --panel, in order "
                             "(a dotted key of the reference values, e.g. "
                             "fig12_mlp9_mnist.no_residual)")
    parser.add_argument("--metric", choices=sorted(METRIC_LABELS), default="accuracy",
                        help="layerwise_accuracy: the layer_accuracy.csv column to draw")
    parser.add_argument("--reference", nargs=2, metavar=("KEY", "LABEL"),
                        help="layerwise_accuracy: the paper's curves to draw beside ours (a "
                             "Fig 8 task key or a dotted key, see layerwise.reference.curves)")
    parser.add_argument("--loss-reference", nargs=2, metavar=("KEY", "LABEL"),
                        help="layerwise_accuracy of a language model: the paper's per-layer "
                             "cross-entropy curves (a key of the reference values)")
    parser.add_argument("--baselines", help="layerwise_accuracy of a language model: its "
                                            "dataset's info.json, whose unigram and bigram "
                                            "baselines are drawn as lines")
    parser.add_argument("--task-panel", action="append", nargs=5,
                        metavar=("TITLE", "ACCURACY", "METRIC", "KEY", "LABEL"),
                        help=f"text_layerwise panel; KEY {NO_REFERENCE!r} draws no paper curves")
    parser.add_argument("--data", help="exit_tradeoff, exit_counts, saturation, depth_study, "
                                       "speculative, generation: the summary table the figure "
                                       "draws")
    parser.add_argument("--epsilon", type=float, help="depth_study: effective-depth epsilon")
    parser.add_argument("--val-curves", help="depth_study: validation accuracy per epoch")
    parser.add_argument("--measure", choices=sorted(HEATMAPS), default="cos")
    parser.add_argument("--method")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pdf", required=True)
    parser.add_argument("--png", required=True)
    return parser


def main(argv=None):
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument("--batch", help="a JSON list of argument lists, one figure each")
    known, rest = batch.parse_known_args(argv)
    if known.batch is None:
        figures = [rest]
    else:
        if rest:
            raise SystemExit(f"error: --batch takes no other arguments, got {' '.join(rest)}")
        figures = json.loads(known.batch)
    arguments = [parser().parse_args(figure) for figure in figures]  # all checked first
    for args in arguments:
        save_figure(draw(args), args.pdf, args.png)


if __name__ == "__main__":
    cli.run(main)
