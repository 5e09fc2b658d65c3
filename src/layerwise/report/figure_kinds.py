"""The figure kinds: one record per kind of figure, read by the study plan (which experiments
get it, the jobs that draw it), the workflow's HTML report (caption and category) and
scripts/plot.py (its options and its drawing function).

Adding a figure is a record here, its drawing function beside the figure functions (figures.py,
exit_figures.py, decoding.py), its one-line caption in workflow/report/<caption>.rst, and a
synthetic case in tests/test_plots_tables.py.

A record's `applies` and `jobs` are handed the study plan (`layerwise.study.plan.StudyPlan`) by
the plan itself: the report sits below the study and does not import it. They ask it only
what an experiment is: `experiments`, `config`, `dataset`, `metric`, `paper_reference`,
`paper_loss_reference`, `token_experiments`, `text_experiments`, `baselines_file`, `analysis_file`,
`has_norm_ratio`, `has_multi_exit_baseline`, `has_saturation`, `has_depth_study`,
`image_text_experiments`.

Importing this module imports neither matplotlib nor torch (the plan reads the records when
Snakemake parses the workflow): a drawing function is named as "module:function" and imported
only to draw.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from layerwise.data.sources import paper_curves
from layerwise.similarity.measures import HEATMAPS

# The HTML report's categories of figures, which the workflow's tables share (common.smk).
SIMILARITY = "Similarity"
ACCURACY = "Layer-wise accuracy"
SATURATION = "Saturation"
EXITS = "Multi-exit"
TEXT = "Text arm"

#: How each layer-wise metric column is named on an axis (here rather than in figures.py: the
#: --metric option's choices are read without matplotlib).
METRIC_LABELS = {"accuracy": "accuracy", "f1": "F1", "cross_entropy": "cross-entropy (nats)"}
#: A --task-panel KEY that draws no paper curves.
NO_REFERENCE = "-"


@dataclass(frozen=True)
class Option:
    """One option of scripts/plot.py that a figure kind reads: its flag, whether it names a file
    the figure reads (a job's input), and argparse's keyword arguments."""
    flag: str
    reads: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)


def option(flag: str, reads: bool = False, **settings) -> Option:
    return Option(flag, reads, settings)


ACCURACY_CSV = option("--accuracy", reads=True, help="an experiment's layer_accuracy.csv")
SIMILARITY_CSV = option("--similarity", reads=True, help="an experiment's similarity.csv")
DATA = option("--data", reads=True, help="the summary table the figure draws")
SPLIT = option("--split", default="test")


@dataclass(frozen=True)
class Drawing:
    """One figure a record asks the plan to draw: its file stem (under figures/<experiment>/,
    or figures/ for a figure of the study), its label in the report, its options other than
    files, the files it reads through an option of their own (flag -> path, in the order they
    appear on its command line), and those it reads inside other options' values (`reads`)."""
    name: str
    label: str
    args: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    reads: tuple[str, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.files.values(), *self.reads)


Plan = Any  # layerwise.study.plan.StudyPlan, which this module may not import (see above)


@dataclass(frozen=True)
class FigureKind:
    """Everything about one kind of figure.

    `draw` names the drawing function ("module:function"), which takes the parsed `options`
    (argparse's namespace, with `experiment`, `pdf` and `png`) and returns a matplotlib Figure.
    `caption` names workflow/report/<caption>.rst, `category` the report's category; `paper`
    is the paper figure it mirrors ("" where it has none).

    An experiment's figure says which experiments get it, `applies(plan, experiment)`, and what
    to draw there, `jobs(plan, experiment)` (one Drawing, or one per measure or method). A
    figure of the whole study, drawn to results/figures/<name>, says instead whether the study
    draws it, `in_study(plan)`, and what, `jobs(plan, None)`.
    """
    name: str
    draw: str
    options: tuple[Option, ...]
    caption: str
    category: str
    paper: str
    applies: Callable[[Plan, str], bool] | None = None
    jobs: Callable[[Plan, str], list[Drawing]] | None = None
    in_study: Callable[[Plan], bool] | None = None

    def __post_init__(self):
        if (self.applies is None) == (self.in_study is None) or self.jobs is None:
            raise ValueError(f"figure {self.name}: an experiment's figure has applies and jobs, "
                             "a study's figure in_study and jobs, and not both")

    @property
    def per_experiment(self) -> bool:
        return self.applies is not None

    @property
    def inputs(self) -> list[str]:
        """The flags of the options naming files it reads."""
        return [o.flag for o in self.options if o.reads]

    def drawer(self) -> Callable[[argparse.Namespace], Any]:
        """The drawing function (importing it imports matplotlib)."""
        module, function = self.draw.split(":")
        return getattr(importlib.import_module(module), function)


def drawn_once(name: str, label: str, **files: str) -> Callable[[Plan, str], list[Drawing]]:
    """The jobs of a figure drawn once per experiment, as `name`, from files of its analysis
    folder (`files`: an option's name, dashes as underscores -> a file name)."""

    def jobs(plan: Plan, experiment: str) -> list[Drawing]:
        return [Drawing(name, label, files={
            f"--{key.replace('_', '-')}": plan.analysis_file(experiment, file)
            for key, file in files.items()})]

    return jobs


# --- the jobs of the figures drawn with settings ----------------------------------------------
def layerwise_accuracy_jobs(plan: Plan, experiment: str) -> list[Drawing]:
    """The experiment's metric beside the paper's curves and its dataset's baselines; a
    language model's loss too, beside its paper curves."""
    args = ["--metric", plan.metric(experiment)]
    for flag, curves in (("--reference", plan.paper_reference(experiment)),
                         ("--loss-reference", plan.paper_loss_reference(experiment))):
        args += [flag, *curves] if curves else []
    files = {"--accuracy": plan.analysis_file(experiment, "layer_accuracy.csv"),
             "--baselines": plan.baselines_file(experiment)}
    return [Drawing("layerwise_accuracy", "layer-wise accuracy", tuple(args), files)]


def heatmaps_jobs(plan: Plan, experiment: str) -> list[Drawing]:
    """One figure per measure with a heatmap (COS, CKA)."""
    return [Drawing(f"{short}_heatmaps", f"{short} heatmaps", ("--measure", short),
                    {"--similarity": plan.analysis_file(experiment, "similarity.csv")})
            for short in HEATMAPS]


def curves_vs_last_jobs(plan: Plan, experiment: str) -> list[Drawing]:
    """One figure per training method of the experiment."""
    return [Drawing(f"curves_vs_last_{method}", f"similarity to the last layer, {method}",
                    ("--method", method),
                    {"--accuracy": plan.analysis_file(experiment, "layer_accuracy.csv"),
                     "--similarity": plan.analysis_file(experiment, "similarity.csv")})
            for method in plan.experiments[experiment]["methods"]]


def adjacent_cos_jobs(plan: Plan, experiment: str) -> list[Drawing]:
    """A transformer's adds the norm ratio of its residual stream (Fig 11b)."""
    files = {"--similarity": plan.analysis_file(experiment, "similarity.csv")}
    if plan.has_norm_ratio(experiment):
        files["--norm-ratio"] = plan.analysis_file(experiment, "norm_ratio.csv")
    return [Drawing("adjacent_cos", "adjacent-layer COS", files=files)]


def depth_study_jobs(plan: Plan, experiment: str) -> list[Drawing]:
    """Train accuracy (the paper's Fig 5 reads the training split) with the config's epsilon."""
    args = ("--epsilon", str(plan.config["analysis"]["effective_depth_epsilon"]),
            "--split", "train")
    return [Drawing("depth_study", "depth study", args, {
        "--data": plan.analysis_file(experiment, "depth_study_accuracy.csv"),
        "--val-curves": plan.analysis_file(experiment, "depth_study_val_accuracy.csv")})]


PAPER_FIG12 = "paper 9-layer MLP MNIST (Fig 12)"


def residual_ablation_jobs(plan: Plan, experiment: None = None) -> list[Drawing]:
    """The MLP pair of analysis.residual_ablation, side by side, beside the paper's Fig 12."""
    pair = plan.config["analysis"]["residual_ablation"]
    args, reads = [], []
    for which, title in (("without", "without residual connections"),
                         ("with", "with residual connections")):
        files = [plan.analysis_file(pair[which], f"{name}.csv")
                 for name in ("layer_accuracy", "similarity")]
        args += ["--panel", title, *files]
        reads += files
    for key in ("no_residual", "residual"):
        args += ["--panel-reference", f"fig12_mlp9_mnist.{key}", PAPER_FIG12]
    return [Drawing("residual_ablation", "residual ablation", tuple(args), reads=tuple(reads))]


def text_layerwise_jobs(plan: Plan, experiment: None = None) -> list[Drawing]:
    """One panel per text task, its metric beside its dataset's curves of the paper's Fig 8."""
    args, reads = [], []
    for name in plan.text_experiments:
        accuracy = plan.analysis_file(name, "layer_accuracy.csv")
        key, label = paper_curves(plan.dataset(name)) or (NO_REFERENCE, NO_REFERENCE)
        args += ["--task-panel", name, accuracy, plan.metric(name), key, label]
        reads.append(accuracy)
    return [Drawing("text_layerwise", "layer-wise metric of every task", tuple(args),
                    reads=tuple(reads))]


def image_text_jobs(plan: Plan, experiment: str) -> list[Drawing]:
    """One figure per method of a two-tower experiment (paper Figs 22-23)."""
    return [Drawing(f"image_text_{method}", f"image and text layers, {method}",
                    ("--method", method),
                    {"--data": plan.analysis_file(experiment, "image_text.csv")})
            for method in plan.experiments[experiment]["methods"]]


def classifier_with(*methods: str) -> Callable[[Plan, str], bool]:
    """A classifier (not a language model: no stored hidden states) trained with `methods`."""
    return lambda plan, experiment: (experiment not in plan.token_experiments and
                                     set(methods) <= set(plan.experiments[experiment]["methods"]))


def every_experiment(plan: Plan, experiment: str) -> bool:
    return True


def language_model(plan: Plan, experiment: str) -> bool:
    return experiment in plan.token_experiments


#: Every figure kind, in the order an experiment's figures are drawn and listed in the study
#: summary; the figures of the whole study last.
FIGURES: dict[str, FigureKind] = {kind.name: kind for kind in (
    FigureKind(
        "layerwise_accuracy", "layerwise.report.figures:draw_layerwise_accuracy",
        (ACCURACY_CSV,
         option("--metric", choices=sorted(METRIC_LABELS), default="accuracy",
                help="the layer_accuracy.csv column to draw"),
         option("--reference", nargs=2, metavar=("KEY", "LABEL"),
                help="the paper's curves to draw beside ours (a Fig 8 task key or a dotted "
                     "key, see layerwise.reference.curves)"),
         option("--loss-reference", nargs=2, metavar=("KEY", "LABEL"),
                help="a language model's: the paper's per-layer cross-entropy curves (a key "
                     "of the reference values)"),
         option("--baselines", reads=True,
                help="its dataset's baselines file (rule fit_baselines), whose models without "
                     "hidden layers are drawn as lines"),
         SPLIT),
        "layerwise_accuracy", ACCURACY, "Fig 4 (b), Fig 8, Fig 9 (a, b)",
        applies=every_experiment, jobs=layerwise_accuracy_jobs),
    FigureKind(
        "heatmaps", "layerwise.report.figures:draw_heatmaps",
        (SIMILARITY_CSV, option("--measure", choices=sorted(HEATMAPS), default="cos")),
        "heatmaps", SIMILARITY, "Fig 2 (c), Fig 4 (c)",
        applies=every_experiment, jobs=heatmaps_jobs),
    FigureKind(
        "curves_vs_last", "layerwise.report.figures:draw_curves_vs_last",
        (ACCURACY_CSV, SIMILARITY_CSV, option("--method", required=True), SPLIT),
        "curves_vs_last", SIMILARITY, "Fig 1 (a), Fig 2 (a), Fig 4 (a)",
        applies=every_experiment, jobs=curves_vs_last_jobs),
    FigureKind(
        "cos_boxplot", "layerwise.report.figures:draw_cos_boxplot",
        (option("--per-sample", reads=True, help="an experiment's cos_per_sample.csv"),),
        "cos_boxplot", SIMILARITY, "Fig 10",
        applies=every_experiment,
        jobs=drawn_once("cos_boxplot", "per-sample COS", per_sample="cos_per_sample.csv")),
    FigureKind(
        "adjacent_cos", "layerwise.report.figures:draw_adjacent_cos",
        (SIMILARITY_CSV,
         option("--norm-ratio", reads=True, help="an experiment's norm_ratio.csv, drawn as a "
                                                 "second panel (paper Fig 11b)")),
        "adjacent_cos", SIMILARITY, "Fig 11",
        applies=every_experiment, jobs=adjacent_cos_jobs),
    FigureKind(
        "cross_model", "layerwise.report.figures:draw_cross_model",
        (option("--similarity", reads=True, help="an experiment's cross_model_cka.csv"),),
        "cross_model_cka", SIMILARITY, "",
        applies=classifier_with("standard", "aligned"),
        jobs=drawn_once("cross_model_cka", "CKA standard vs aligned",
                            similarity="cross_model_cka.csv")),
    FigureKind(
        "image_text", "layerwise.report.figures:draw_image_text",
        (DATA, option("--method", required=True)),
        "image_text", SIMILARITY, "Fig 22, Fig 23",
        applies=lambda plan, experiment: experiment in plan.image_text_experiments,
        jobs=image_text_jobs),
    FigureKind(
        "exit_tradeoff", "layerwise.report.exit_figures:draw_exit_tradeoff", (DATA, SPLIT),
        "exit_tradeoff", EXITS, "Fig 7",
        applies=lambda plan, experiment: plan.has_multi_exit_baseline(experiment),
        jobs=drawn_once("exit_tradeoff", "exit_tradeoff", data="exit_sweep.csv")),
    FigureKind(
        "exit_counts", "layerwise.report.exit_figures:draw_exit_counts", (DATA,),
        "exit_counts", EXITS, "Fig 7",
        applies=lambda plan, experiment: plan.has_multi_exit_baseline(experiment),
        jobs=drawn_once("exit_counts", "exit_counts", data="exit_counts.csv")),
    FigureKind(
        "speculative", "layerwise.report.decoding:draw_speculative", (DATA,),
        "speculative", EXITS, "",
        applies=language_model,
        jobs=drawn_once("speculative", "self-speculative decoding",
                            data="speculative.csv")),
    FigureKind(
        "generation", "layerwise.report.decoding:draw_generation", (DATA,),
        "generation", EXITS, "Fig 9 (c, d)",
        applies=language_model,
        jobs=drawn_once("generation", "generation at a fixed exit (Fig 9 c, d)",
                            data="generation.csv")),
    FigureKind(
        "saturation", "layerwise.report.exit_figures:draw_saturation", (DATA, SIMILARITY_CSV),
        "saturation", SATURATION, "Fig 1 (c), Fig 3, Fig 6",
        applies=lambda plan, experiment: plan.has_saturation(experiment),
        jobs=drawn_once("saturation", "saturation layers", data="saturation.csv",
                            similarity="similarity.csv")),
    FigureKind(
        "depth_study", "layerwise.report.exit_figures:draw_depth_study",
        (DATA, option("--epsilon", type=float, required=True,
                      help="the effective-depth epsilon"),
         option("--val-curves", reads=True, help="validation accuracy per epoch"), SPLIT),
        "depth_study", SATURATION, "Fig 5",
        applies=lambda plan, experiment: plan.has_depth_study(experiment),
        jobs=depth_study_jobs),
    FigureKind(
        "residual_ablation", "layerwise.report.figures:draw_residual_ablation",
        (option("--panel", action="append", nargs=3, required=True,
                metavar=("TITLE", "ACCURACY", "SIMILARITY"), help="a panel and what it reads"),
         option("--panel-reference", action="append", nargs=2, metavar=("KEY", "LABEL"),
                help="the paper's curves of each --panel, in order (a dotted key of the "
                     "reference values, e.g. fig12_mlp9_mnist.no_residual)"),
         SPLIT),
        "residual_ablation", SIMILARITY, "Fig 12",
        in_study=lambda plan: bool(plan.config["analysis"]["residual_ablation"]),
        jobs=residual_ablation_jobs),
    FigureKind(
        "text_layerwise", "layerwise.report.figures:draw_text_layerwise",
        (option("--task-panel", action="append", nargs=5, required=True,
                metavar=("TITLE", "ACCURACY", "METRIC", "KEY", "LABEL"),
                help=f"a task's panel; KEY {NO_REFERENCE!r} draws no paper curves"),
         SPLIT),
        "text_layerwise", TEXT, "Fig 8",
        in_study=lambda plan: bool(plan.text_experiments), jobs=text_layerwise_jobs),
)}


def figure_parser(description: str | None = None) -> argparse.ArgumentParser:
    """scripts/plot.py's parser: FIGURE, then the options its record declares, --experiment for
    an experiment's figure, and where the figure goes."""
    parser = argparse.ArgumentParser(description=description)
    kinds = parser.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    for kind in FIGURES.values():
        sub = kinds.add_parser(kind.name, help=f"paper {kind.paper}" if kind.paper else None)
        if kind.per_experiment:
            sub.add_argument("--experiment", default="", help="its name, in the titles")
        for opt in kind.options:
            sub.add_argument(opt.flag, **opt.settings)
        sub.add_argument("--pdf", required=True)
        sub.add_argument("--png", required=True)
    return parser
