"""The study plan: which runs, analyses, figures, tables and claims each experiment of a
validated config gets, and the specs the workflow hands to its scripts.

Plain Python over the config and the extension records (backbones, methods, measures,
figures), free of torch and Snakemake, so that every decision here is unit-tested without
running the workflow; the .smk files keep only config loading, wildcards, the paths and
resources of rules, and shell quoting.

Every job gets its settings here as one spec (a JSON object on its script's --spec): a run's
spec holds what determines its weights, an analysis job's what it computes, a gathering job's
the runs it gathers with their files, a figure job's the arguments of each figure. JOB_SPECS
says which spec each rule's jobs get (the rules' `params: spec=` read it), and

    python -m layerwise.study.plan CONFIG [CONFIG ...] --job RULE [NAME=VALUE ...]

prints one job's spec, so that its script can be run alone (docs/troubleshooting.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

from layerwise.data.sources import SOURCES, dataset_metric, paper_curves
from layerwise.models import backbone
from layerwise.reference import reference_label
from layerwise.report.figure_kinds import FIGURES
from layerwise.study.config import ConfigError, load_configs
from layerwise.train.methods import METHODS, trained
from layerwise.train.runs import run_names, split_run_name

TABLE_EXTENSIONS = ("csv", "md", "tex")

# What the analysis of one run writes, by group: its hidden states (a classifier's, every split),
# its layer-wise analysis, its early-exit study and a language model's decoding.
RUN = "{experiment}/{method}/seed{seed}"
SPLITS = ("train", "val", "test")
ANALYSIS_PARTS = ("layer_accuracy", "similarity", "cos_per_sample", "agreement", "norm_ratio")
EXIT_PARTS = ("sweep", "operating_points", "exit_counts", "saturation", "timing")
DECODING_PARTS = ("speculative", "generation")
_RUN_FILES = {"hidden": ("hidden", SPLITS, "safetensors"),
              "analysis": ("analysis", ANALYSIS_PARTS, "csv"),
              "exits": ("exits", EXIT_PARTS, "csv"),
              "decoding": ("exits", DECODING_PARTS, "csv")}
# The figures of the whole study are drawn by one job, named as an experiment's would be.
STUDY = "study"


def figure_rule(name: str) -> str:
    """The rule drawing the figures of an experiment, or of the whole study (`STUDY`)."""
    return f"figures_{name.replace('-', '_')}"


def figure_files(stem: str) -> list[str]:
    return [f"{stem}.pdf", f"{stem}.png"]


def table_files(stem: str) -> list[str]:
    return [f"{stem}.{ext}" for ext in TABLE_EXTENSIONS]


@dataclass(frozen=True)
class FigureJob:
    """One figure of an experiment: where it goes (stem.pdf, stem.png), its kind (a record of
    layerwise.report.figure_kinds: the report's caption and category), its label in the report,
    what it reads, and the arguments of scripts/plot.py that draw it."""
    stem: str
    kind: str
    label: str
    inputs: tuple[str, ...]
    argv: tuple[str, ...]

    @property
    def files(self) -> list[str]:
        return figure_files(self.stem)


class StudyPlan:
    """Everything the workflow derives from a validated config (`results`: the output root)."""

    def __init__(self, config: dict, results: str = "results"):
        self.config, self.results = config, results
        self.experiments = {exp["name"]: exp for exp in config["experiments"]}

    # --- runs ---------------------------------------------------------------------------------
    def run_spec(self, experiment: str, run: str, seed: int) -> dict:
        """Everything that determines one run's weights, and nothing else: a change here reruns
        exactly the runs it affects (a method's own settings never touch other methods' runs).

        `run` is a training method, or standard_d<depth> for a depth-study run, which is a
        standard run of the experiment's model with <depth> blocks.
        """
        exp = self.experiments[experiment]
        method, depth = split_run_name(run)
        model = exp["model"] if depth is None else {**exp["model"], "depth": depth}
        spec = {"experiment": experiment, "dataset": exp["dataset"], "method": method,
                "seed": int(seed), "model": model, "train": exp["train"]}
        base = METHODS[method].post_hoc
        if base is not None:  # fitted on the finished run it reads, whose spec it holds whole
            del spec["train"]
            spec["base"] = self.run_spec(experiment, base, seed)
        if METHODS[method].as_loaded:  # the checkpoint itself: no schedule, no starting point
            del spec["train"]
            return spec
        settings = METHODS[method].settings(exp)
        if settings is not None:
            spec[method] = settings
        pretraining = self.pretrain_spec(experiment)
        if pretraining is not None and base is None:  # nested whole: its change reruns the run
            spec["init"] = pretraining
        return spec

    def dataset_spec(self, dataset: str) -> dict:
        """scripts/prepare_data.py: the dataset's config section."""
        return self.config["datasets"][dataset]

    def baselines_file(self, experiment: str) -> str:
        """The baselines of an experiment's dataset (rule fit_baselines)."""
        return f"{self.results}/baselines/{self.experiments[experiment]['dataset']}.json"

    def baseline_spec(self, dataset: str) -> dict:
        """scripts/fit_baselines.py: the dataset's metric (which picks a classifier's settings
        on validation) and the baselines' settings."""
        settings = self.config["baselines"]
        return {"metric": dataset_metric(self.dataset_spec(dataset)),
                **{key: settings[key] for key in ("logistic_c", "ngram_orders",
                                                  "max_train_samples")}}

    def dataset_from_hub(self, dataset: str) -> bool:
        """Whether preparing the dataset downloads it from a hub (more memory and time)."""
        return SOURCES[self.dataset_spec(dataset)["source"]].from_hub

    def run_file_patterns(self, group: str) -> dict[str, str]:
        """The files of a group ("hidden", "analysis", "exits", "decoding") that the analysis of
        a run writes, by name, as patterns over {experiment}, {method} and {seed}."""
        folder, names, ext = _RUN_FILES[group]
        return {name: f"{self.results}/{folder}/{RUN}/{name}.{ext}" for name in names}

    def run_files(self, group: str, experiment: str, run: str, seed: int) -> dict[str, str]:
        """The files of a group that one run's analysis writes, by name."""
        return {name: pattern.format(experiment=experiment, method=run, seed=seed)
                for name, pattern in self.run_file_patterns(group).items()}

    def data_folder(self, experiment: str) -> str:
        """The prepared dataset an experiment's runs read."""
        return f"{self.results}/data/{self.experiments[experiment]['dataset']}"

    def pretrain_spec(self, experiment: str) -> dict | None:
        """The run spec of the standard model every run of an experiment starts from (its
        `pretrain` section), or None when runs start from scratch or from model.pretrained."""
        exp = self.experiments[experiment]
        pretrain = exp.get("pretrain")
        if pretrain is None:
            return None
        return {"experiment": experiment, "dataset": exp["dataset"], "method": "standard",
                "seed": int(pretrain["seed"]), "model": exp["model"], "train": pretrain["train"]}

    def coherence_judge(self, experiment: str, seed: int) -> dict:
        """The model that scores every method's generated text in a language model's
        coherence substitute, the same for all methods of a seed: the pretraining run where
        the experiment has one, else the checkpoint as loaded where it analyses one and trains
        no standard model, else the standard run of the seed. Its name, run spec and
        weights."""
        pretraining = self.pretrain_spec(experiment)
        if pretraining is not None:
            return {"name": "the pretrained model", "run": pretraining,
                    "weights": f"{self.results}/runs/{experiment}/pretrain/model.safetensors"}
        methods = self.experiments[experiment]["methods"]
        loaded = next((m for m in methods if METHODS[m].as_loaded), None)
        if loaded is not None and "standard" not in methods:
            return {"name": "the pretrained checkpoint", "run": self.run_spec(
                        experiment, loaded, seed),
                    "weights": f"{self.run_folder(experiment, loaded, seed)}/model.safetensors"}
        return {"name": "the standard model of the seed",
                "run": self.run_spec(experiment, "standard", seed),
                "weights": f"{self.results}/runs/{experiment}/standard/seed{seed}/"
                           "model.safetensors"}

    @cached_property
    def pretrained_experiments(self) -> list[str]:
        """The experiments whose runs fine-tune one pretraining run."""
        return [name for name, exp in self.experiments.items() if exp.get("pretrain")]

    def runs(self, experiment: str, methods=None) -> list[tuple[str, int]]:
        """(run name, seed) of every run of an experiment (its methods, or `methods`)."""
        exp = self.experiments[experiment]
        return [(m, s) for m in (methods or exp["methods"]) for s in exp["seeds"]]

    def all_runs(self, experiment: str) -> list[str]:
        """Every run name of an experiment: its methods, then its depth-study runs."""
        return run_names(self.experiments[experiment])

    def trained_runs(self, experiment: str) -> list[str]:
        """The runs with a training of their own (a post-hoc lens and a checkpoint as loaded
        have none), which the depth study compares by effective depth and validation accuracy
        per epoch."""
        return [run for run in self.all_runs(experiment) if trained(split_run_name(run)[0])]

    # --- what an experiment is ------------------------------------------------------------
    def dataset(self, experiment: str) -> dict:
        return self.config["datasets"][self.experiments[experiment]["dataset"]]

    def metric(self, experiment: str) -> str:
        """accuracy, or f1 for the GLUE tasks the paper scores by F1."""
        return dataset_metric(self.dataset(experiment))

    def experiments_of_kind(self, kind: str) -> list[str]:
        """The experiments whose dataset source is of `kind` ("image", "text" or "lm")."""
        return [name for name in self.experiments
                if SOURCES[self.dataset(name)["source"]].kind == kind]

    @cached_property
    def text_experiments(self) -> list[str]:
        """The text classification tasks (drawn together beside the paper's Fig 8)."""
        return self.experiments_of_kind("text")

    @cached_property
    def token_experiments(self) -> list[str]:
        """The causal language models: analysed token by token from the model in streaming
        passes (no hidden-state files), whose metrics add cross-entropy and perplexity."""
        return self.experiments_of_kind("lm")

    @cached_property
    def claim_experiments(self) -> list[str]:
        """The experiments C1-C7 are evaluated on: those of a transformer backbone (the MLPs of
        the residual ablation only enter C8)."""
        return [name for name, exp in self.experiments.items()
                if backbone(exp["model"]).transformer]

    def paper_reference(self, experiment: str) -> tuple[str, str] | None:
        """(key, label) of the paper's curves drawn beside an experiment's layer-wise metric:
        its `paper_reference` if set, else its dataset's (Fig 8 for a text task), else its
        backbone's (Fig 4 for a ViT, Fig 12 for an MLP)."""
        exp = self.experiments[experiment]
        key = exp.get("paper_reference")
        if key:
            return key, reference_label(key)
        return paper_curves(self.dataset(experiment)) or backbone(exp["model"]).reference(
            exp["model"])

    def paper_loss_reference(self, experiment: str) -> tuple[str, str] | None:
        """(key, label) of the paper's per-layer cross-entropy drawn beside a language model's."""
        if experiment not in self.token_experiments:
            return None
        return backbone(self.experiments[experiment]["model"]).loss_reference

    def has_norm_ratio(self, experiment: str) -> bool:
        """The residual stream against each block's update (Fig 11b) is a transformer's."""
        return backbone(self.experiments[experiment]["model"]).transformer

    def has_exits(self, experiment: str) -> bool:
        """Whether early exit and saturation are evaluated: a method trains every layer's exit."""
        return any(METHODS[m].trains_layers for m in self.experiments[experiment]["methods"])

    def exit_methods(self, experiment: str) -> list[str]:
        """The methods whose runs get early exit and saturation (their records' evaluate_exits)."""
        return [m for m in self.experiments[experiment]["methods"] if METHODS[m].evaluate_exits]

    def is_exit_run(self, experiment: str, run: str) -> bool:
        """Whether a run's analysis includes the early-exit study (a language model's always
        does: its exits are per token, its decoding is timed)."""
        return experiment in self.token_experiments or (
            self.has_exits(experiment) and run in self.exit_methods(experiment))

    def has_multi_exit_baseline(self, experiment: str) -> bool:
        """The early-exit tables and figures compare against the multi-exit baseline."""
        return any(METHODS[m].exit_heads for m in self.experiments[experiment]["methods"])

    # --- the analysis of a run and what gathers it ------------------------------------------
    def analysis_spec(self, experiment: str, run: str, seed: int) -> dict:
        """What the analysis of one run computes (scripts/analyze_run.py for a classifier,
        scripts/analyze_tokens.py for a language model): the run's spec, which identifies its
        weights, the layer-wise analysis' settings and, for a run of the exit study, the early
        exit's (a language model's with its decoding)."""
        analysis, exits = self.config["analysis"], self.config["exits"]
        spec = {"run": self.run_spec(experiment, run, seed), "metric": self.metric(experiment),
                "similarity_split": analysis["similarity_split"],
                "cka_estimators": analysis["cka_estimators"],
                "train_samples": analysis["train_samples"]}
        tokens = experiment in self.token_experiments
        if tokens:
            spec["token_samples"] = analysis["token_samples"]
        else:
            spec.update(rbf_threshold=analysis["rbf_threshold"],
                        cka_batch_size=analysis["cka_batch_size"])
        if self.is_exit_run(experiment, run):
            spec["exits"] = {key: exits[key] for key in (
                "policies", "sweep_points", "max_accuracy_drop", "timing")}
            if tokens:
                spec["exits"].update({key: exits[key] for key in (
                    "decoding", "speculative", "generation")})
                judge = self.coherence_judge(experiment, seed)
                spec["judge"] = {"name": judge["name"], "run": judge["run"]}
        return spec

    def gather_spec(self, experiment: str, group: str, runs=None) -> dict:
        """The runs (all of the experiment's, or `runs`) whose files of `group` a gathering job
        joins, each with its name, seed and files."""
        return {"runs": [{"method": run, "seed": seed,
                          "files": self.run_files(group, experiment, run, seed)}
                         for run, seed in self.runs(experiment, runs)]}

    def summary_spec(self, experiment: str) -> dict:
        """scripts/summarize.py: every run's layer-wise analysis, the metric its table reports,
        the dataset's baselines it shows beside the layers and the depth-use verdict's
        settings."""
        return {**self.gather_spec(experiment, "analysis"), "metric": self.metric(experiment),
                "table_split": "test", "baselines": self.baselines_file(experiment),
                "depth": self.depth_use_spec(experiment)}

    def depth_use_spec(self, experiment: str) -> dict:
        """Whose depth an arm's verdict judges (its standard model, or its first trained
        method without one), read by which runs (the post-hoc lens fitted on that model, where
        the experiment has one, else the model itself), against which bound."""
        methods = self.experiments[experiment]["methods"]
        trained = [m for m in methods if METHODS[m].post_hoc is None]
        model = "standard" if "standard" in trained else trained[0]
        reader = next((m for m in methods if METHODS[m].post_hoc == model), model)
        return {"model": model, "reader": reader,
                "max_first_layer_share": self.config["baselines"]["max_first_layer_share"]}

    def exit_summary_spec(self, experiment: str) -> dict:
        """scripts/summarize_exits.py: the runs of the exit study and their exit files."""
        return self.gather_spec(experiment, "exits", self.exit_methods(experiment))

    def decoding_summary_spec(self, experiment: str) -> dict:
        """scripts/summarize_decoding.py: a language model's runs and their decoding files."""
        return self.gather_spec(experiment, "decoding")

    def depth_study_spec(self, experiment: str) -> dict:
        """scripts/depth_study.py: the layer-wise accuracy and the training log of every run
        with a training of its own, and the effective depth's epsilon."""
        return {"runs": [{"method": run, "seed": seed, "files": {
                    "layer_accuracy": self.run_files("analysis", experiment, run, seed)[
                        "layer_accuracy"],
                    "train_log": f"{self.run_folder(experiment, run, seed)}/train_log.csv"}}
                         for run, seed in self.runs(experiment, self.trained_runs(experiment))],
                "epsilon": self.config["analysis"]["effective_depth_epsilon"]}

    @cached_property
    def image_text_experiments(self) -> list[str]:
        """The experiments of a model with a text tower (CLIP), whose image layers are also
        compared with its text layers (paper Figs 22-23)."""
        return [name for name, exp in self.experiments.items()
                if backbone(exp["model"]).text_tower]

    def image_text_spec(self, experiment: str) -> dict:
        """scripts/image_text.py: every run of a two-tower experiment with its spec and weights
        (whose text tower gives the prompts' states), its stored image states of the similarity
        split, and the dataset's description (the class names the prompts hold)."""
        split = self.config["analysis"]["similarity_split"]
        return {"info": f"{self.data_folder(experiment)}/info.json",
                "runs": [{"method": run, "seed": seed, "run": self.run_spec(experiment, run, seed),
                          "weights": f"{self.run_folder(experiment, run, seed)}/model.safetensors",
                          "states": self.run_files("hidden", experiment, run, seed)[split]}
                         for run, seed in self.runs(experiment)]}

    def run_folder(self, experiment: str, run: str, seed: int) -> str:
        """Where a run's weights, training log and provenance are."""
        return f"{self.results}/runs/{experiment}/{run}/seed{seed}"

    def parameter_spec(self, experiment: str) -> dict:
        """scripts/parameter_table.py: the experiment's model, counted as built."""
        return {"experiment": experiment, "model": self.experiments[experiment]["model"]}

    def cross_model_spec(self, experiment: str) -> dict:
        """scripts/cross_model.py: the test split's states of the standard and the aligned run
        of every seed, compared layer by layer."""
        return {"pairs": [{"seed": seed, **{
            method: self.run_files("hidden", experiment, method, seed)["test"]
            for method in ("standard", "aligned")}}
            for seed in self.experiments[experiment]["seeds"]]}

    # --- figures and targets --------------------------------------------------------------
    def analysis_file(self, experiment: str, name: str) -> str:
        """A summary file of an experiment's analysis (what its figures and tables read)."""
        return f"{self.results}/analysis/{experiment}/{name}"

    def figure_jobs(self, experiment: str) -> list[FigureJob]:
        """Every figure of an experiment, as the figure records ask (which experiments get
        each, what it reads, its options), in their order, which the study summary shows; one
        job draws them all (each is seconds of drawing after seconds of imports)."""
        return [self._figure_job(kind, drawing, experiment) for kind in FIGURES.values()
                if kind.per_experiment and kind.applies(self, experiment)
                for drawing in kind.jobs(self, experiment)]

    def study_figure_jobs(self) -> list[FigureJob]:
        """The figures of the whole study that this config draws, under figures/."""
        return [self._figure_job(kind, drawing) for kind in FIGURES.values()
                if not kind.per_experiment and kind.in_study(self)
                for drawing in kind.jobs(self, None)]

    def _figure_job(self, kind, drawing, experiment: str | None = None) -> FigureJob:
        folder = f"{self.results}/figures" + (f"/{experiment}" if experiment else "")
        stem = f"{folder}/{drawing.name}"
        files = [word for flag, path in drawing.files.items() for word in (flag, path)]
        named = ("--experiment", experiment) if experiment else ()
        argv = (kind.name, *named, *drawing.args, *files, "--pdf", f"{stem}.pdf",
                "--png", f"{stem}.png")
        return FigureJob(stem, kind.name, drawing.label, drawing.inputs, argv)

    def figure_spec(self, name: str) -> list[list[str]]:
        """scripts/plot.py: the arguments of every figure of an experiment, or of the whole
        study (`STUDY`)."""
        jobs = self.study_figure_jobs() if name == STUDY else self.figure_jobs(name)
        return [list(job.argv) for job in jobs]

    def study_figure_stems(self) -> list[str]:
        """The figures of the whole study that this config draws."""
        return [job.stem for job in self.study_figure_jobs()]

    def has_saturation(self, experiment: str) -> bool:
        """Whether saturation layers are drawn (paper Fig 1, 3, 6): with the early-exit study,
        for a classifier with aligned runs, and for every language model (App. C.1: a
        pretrained one's own)."""
        if experiment in self.token_experiments:
            return True
        return self.has_multi_exit_baseline(experiment) or (
            "aligned" in self.experiments[experiment]["methods"])

    def has_depth_study(self, experiment: str) -> bool:
        """Effective depth (Fig 5) is a classifier's, wherever saturation is (a language model's
        layer-wise accuracy never nears 1 - epsilon)."""
        return experiment not in self.token_experiments and self.has_saturation(experiment)

    def experiment_targets(self, experiment: str) -> list[str]:
        tables = f"{self.results}/tables/{experiment}"
        targets = table_files(f"{tables}/layerwise_accuracy") + table_files(
            f"{tables}/depth_use")
        if self.has_multi_exit_baseline(experiment):
            targets += table_files(f"{tables}/multi_exit") + table_files(
                f"{tables}/parameter_savings")
        if self.has_depth_study(experiment):
            targets += table_files(f"{tables}/effective_depth")
        if experiment in self.token_experiments:
            targets += table_files(f"{tables}/speculative")
        return targets + [f for job in self.figure_jobs(experiment) for f in job.files]

    def final_targets(self) -> list[str]:
        targets = [t for name in self.experiments for t in self.experiment_targets(name)]
        return targets + [f for stem in self.study_figure_stems() for f in figure_files(stem)]

    # --- the claims and the study summary ------------------------------------------------------
    def claim_files(self, experiment: str) -> dict:
        """The summary files of an experiment that the claims and the study summary read."""
        base = f"{self.results}/analysis/{experiment}"
        files = {"name": experiment, "metric": self.metric(experiment),
                 "accuracy": f"{base}/layer_accuracy.csv", "similarity": f"{base}/similarity.csv",
                 "agreement": f"{base}/agreement.csv"}
        if self.has_exits(experiment):
            files.update(saturation=f"{base}/saturation.csv", sweep=f"{base}/exit_sweep.csv",
                         points=f"{base}/exit_operating_points.csv")
        return files

    def claims_spec(self) -> dict:
        """What check_claims reads: thresholds, the transformer experiments and the ablation."""
        ablation = self.config["analysis"]["residual_ablation"]
        return {"thresholds": self.config["claims"],
                "experiments": [self.claim_files(name) for name in self.claim_experiments],
                "ablation": None if not ablation else {
                    "without": self.claim_files(ablation["without"]),
                    "with": self.claim_files(ablation["with"])}}

    def spec_files(self, spec) -> list[str]:
        """Every file path under the results folder in a spec (a rule's inputs)."""
        if isinstance(spec, dict):
            return [f for key, value in spec.items() if key not in ("name", "metric")
                    for f in self.spec_files(value)]
        if isinstance(spec, list):
            return [f for value in spec for f in self.spec_files(value)]
        return [spec] if isinstance(spec, str) and spec.startswith(f"{self.results}/") else []

    @property
    def plots(self) -> str:
        return f"{self.results}/plots"

    def figure_copy(self, png: str) -> str:
        """Where the study summary copies a figure's PNG for `dvc plots` (which renders images
        but fails on the PDFs beside them): plots/figures/<path under figures>."""
        return f"{self.plots}/{os.path.relpath(png, self.results)}"

    def study_figures(self) -> list[str]:
        return [t for t in self.final_targets() if t.endswith(".png")]

    def study_summary_spec(self) -> dict:
        """What study_summary reads (every final table and figure, the claims, the jobs' usage
        records in the logs folder) and the plot data it writes for DVC."""
        targets = self.final_targets()
        experiments = []
        for name in self.experiments:
            files = self.claim_files(name)
            tables, figures = f"{self.results}/tables/{name}/", f"{self.results}/figures/{name}/"
            files.update(
                tables=[t for t in targets if t.startswith(tables) and t.endswith(".md")],
                figures=[t for t in targets if t.startswith(figures) and t.endswith(".png")],
                layerwise_plot=f"{self.plots}/layerwise_accuracy/{name}.csv",
                tradeoff_plot=(f"{self.plots}/exit_tradeoff/{name}.csv" if self.has_exits(name)
                               else None),
                baselines=self.baselines_file(name),
                depth_use=f"{self.results}/tables/{name}/depth_use.csv",
                depth=self.depth_use_spec(name))
            experiments.append(files)
        own = tuple(f"{self.results}/figures/{n}/" for n in self.experiments)
        return {"experiments": experiments, "policy": self.config["claims"]["exit_policy"],
                "study_figures": [f for f in self.study_figures() if not f.startswith(own)],
                "figure_copies": [[png, self.figure_copy(png)] for png in self.study_figures()],
                "claims_json": f"{self.results}/tables/claims.json",
                "claims_md": f"{self.results}/tables/claims.md",
                "logs": f"{self.results}/logs"}

    def study_summary_inputs(self) -> list[str]:
        """The files study_summary reads besides the final targets and the claims JSON."""
        return ([f for name in self.experiments for key, f in self.claim_files(name).items()
                 if key not in ("name", "metric")] + [f"{self.results}/tables/claims.md"]
                + [self.baselines_file(name) for name in self.experiments])

    def study_plot_files(self) -> list[str]:
        """The data series and images study_summary writes for `dvc plots`."""
        spec = self.study_summary_spec()
        return ([e["layerwise_plot"] for e in spec["experiments"]]
                + [e["tradeoff_plot"] for e in spec["experiments"] if e["tradeoff_plot"]]
                + [copy for _, copy in spec["figure_copies"]])

    def job_spec(self, rule: str, wildcards: dict[str, str]):
        """The --spec of one job of `rule` (a key of JOB_SPECS), from its wildcards' values as
        Snakemake gives them (strings)."""
        return JOB_SPECS[rule].build(self, wildcards)

    def study_targets(self) -> list[str]:
        """What the whole study adds on top of every experiment's targets: the claims table,
        the metrics and plot data DVC shows, the runtime table and the Markdown summary."""
        return ([f"{self.results}/tables/claims.{ext}" for ext in ("json",) + TABLE_EXTENSIONS]
                + table_files(f"{self.results}/tables/runtime")
                + [f"{self.results}/metrics.json", f"{self.results}/SUMMARY.md"]
                + self.study_plot_files())


# --- which spec each rule's jobs get -----------------------------------------------------------
@dataclass(frozen=True)
class JobSpec:
    """How a rule's jobs get their --spec: the script the rule runs (scripts/<script>.py), the
    wildcards naming a job, and how the plan builds the spec from their values (strings)."""
    script: str
    wildcards: tuple[str, ...]
    build: Callable[[StudyPlan, dict], object]


def _per_run(script: str, build) -> JobSpec:
    return JobSpec(script, ("experiment", "method", "seed"),
                   lambda plan, w: build(plan, w["experiment"], w["method"], int(w["seed"])))


def _per(wildcard: str, script: str, build) -> JobSpec:
    return JobSpec(script, (wildcard,), lambda plan, w: build(plan, w[wildcard]))


def _once(script: str, build) -> JobSpec:
    return JobSpec(script, (), lambda plan, w: build(plan))


# Every rule whose script takes --spec, in the workflow's order: the one place saying which spec
# a job gets (the rules pass theirs through job_spec in workflow/rules/common.smk; a test fails
# on a rule missing here). The figure rules, figures_<experiment> and figures_study, are one
# entry, their experiment a value.
JOB_SPECS: dict[str, JobSpec] = {
    "prepare_data": _per("dataset", "prepare_data", StudyPlan.dataset_spec),
    "fit_baselines": _per("dataset", "fit_baselines", StudyPlan.baseline_spec),
    "pretrain": _per("experiment", "train", StudyPlan.pretrain_spec),
    "train": _per_run("train", StudyPlan.run_spec),
    "fit_lens": _per_run("fit_lens", StudyPlan.run_spec),
    "load_pretrained": _per_run("load_pretrained", StudyPlan.run_spec),
    "analyze_run": _per_run("analyze_run", StudyPlan.analysis_spec),
    "analyze_exit_run": _per_run("analyze_run", StudyPlan.analysis_spec),
    "analyze_tokens": _per_run("analyze_tokens", StudyPlan.analysis_spec),
    "summarize": _per("experiment", "summarize", StudyPlan.summary_spec),
    "cross_model_similarity": _per("experiment", "cross_model", StudyPlan.cross_model_spec),
    "image_text_similarity": _per("experiment", "image_text", StudyPlan.image_text_spec),
    "summarize_exits": _per("experiment", "summarize_exits", StudyPlan.exit_summary_spec),
    "depth_study": _per("experiment", "depth_study", StudyPlan.depth_study_spec),
    "parameter_table": _per("experiment", "parameter_table", StudyPlan.parameter_spec),
    "summarize_decoding": _per("experiment", "summarize_decoding",
                               StudyPlan.decoding_summary_spec),
    "figures": _per("experiment", "plot", StudyPlan.figure_spec),
    "check_claims": _once("check_claims", StudyPlan.claims_spec),
    "study_summary": _once("summarize_study", StudyPlan.study_summary_spec),
}


def _job(plan: StudyPlan, rule: str, assignments: list[str]) -> tuple[str, dict[str, str]]:
    """The table's rule and the wildcards of a job named on the command line, checked against
    the config (a ConfigError naming the first problem)."""
    wildcards = {}
    for item in assignments:
        name, equals, value = item.partition("=")
        if not (name and equals):
            raise ConfigError(f"{item!r} is not NAME=VALUE")
        wildcards[name] = value
    figures = {figure_rule(name): name for name in [*plan.experiments, STUDY]}
    if rule in figures and "experiment" not in wildcards:  # Snakemake's name for the job
        rule, wildcards = "figures", {**wildcards, "experiment": figures[rule]}
    if rule not in JOB_SPECS:
        raise ConfigError(f"no rule {rule!r} takes a spec; rules: {', '.join(JOB_SPECS)}")
    needed = JOB_SPECS[rule].wildcards
    missing = [name for name in needed if name not in wildcards]
    unknown = [name for name in wildcards if name not in needed]
    if missing or unknown:
        takes = " ".join(f"{name}=..." for name in needed) or "no wildcards"
        raise ConfigError(f"rule {rule} takes {takes}" + "".join(f"; missing {n}" for n in missing)
                          + "".join(f"; unknown {n}" for n in unknown))
    experiment = wildcards.get("experiment")
    runs = experiment in plan.experiments  # its methods and seeds are checked after it
    known = {"dataset": list(plan.config["datasets"]),
             "experiment": [*plan.experiments, *([STUDY] if rule == "figures" else [])],
             "method": plan.all_runs(experiment) if runs else [],
             "seed": [str(s) for s in plan.experiments[experiment]["seeds"]] if runs else []}
    for name in needed:
        if wildcards[name] not in known[name]:
            of = f" of experiment {experiment}" if name in ("method", "seed") else ""
            raise ConfigError(f"unknown {name} {wildcards[name]!r}{of}; known: "
                              f"{', '.join(known[name])}")
    return rule, wildcards


def _listing(plan: StudyPlan) -> str:
    """The rules, the wildcards naming their jobs, their scripts, and the values in the config."""
    lines = [f"{'rule':24}{'wildcards':26}script"]
    lines += [f"{rule:24}{' '.join(job.wildcards) or '-':26}scripts/{job.script}.py"
              for rule, job in JOB_SPECS.items()]
    lines += ["", f"figures: the rules figures_<experiment>, and {figure_rule(STUDY)} "
              f"(experiment={STUDY}) for the figures of the whole study",
              f"dataset: {', '.join(plan.config['datasets'])}"]
    lines += [f"experiment {name}: method {', '.join(plan.all_runs(name))}; "
              f"seed {', '.join(map(str, exp['seeds']))}" for name, exp in plan.experiments.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print one job's spec as JSON, or list the rules; a problem is one line and exit code 1."""
    parser = argparse.ArgumentParser(
        prog="python -m layerwise.study.plan",
        usage="%(prog)s CONFIG [CONFIG ...] [--list | --job RULE [NAME=VALUE ...]]",
        description="Print the --spec the workflow gives one job, built from the configs merged "
                    "in order as Snakemake merges its config files (config/config.yaml first).",
        epilog="The spec is the job's script's --spec; its paths (--data, --model, outputs) are "
               "the rule's: `snakemake -n -p TARGET` prints the whole command. Example: "
               "python scripts/train.py --spec \"$(%(prog)s config/config.yaml --job train "
               "experiment=vit_digits method=standard seed=0)\" --data ... (--list shows each "
               "rule's script).")
    parser.add_argument("configs", nargs="+", metavar="CONFIG")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true",
                      help="list the rules, their wildcards and scripts (the default)")
    what.add_argument("--job", nargs="+", metavar="ARG",
                      help="RULE then NAME=VALUE for each of its wildcards")
    args = parser.parse_args(argv)
    try:
        plan = StudyPlan(load_configs(args.configs))
        if not args.job:
            print(_listing(plan))
            return 0
        rule, wildcards = _job(plan, args.job[0], args.job[1:])
        spec = plan.job_spec(rule, wildcards)
        if spec is None:  # pretrain of an experiment without pretraining
            raise ConfigError(f"rule {rule} has no job for {' '.join(args.job[1:])}")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(spec, sort_keys=True, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
