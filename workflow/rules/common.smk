import json
import os
import shlex
import sys

sys.path.insert(0, os.path.abspath(f"{workflow.basedir}/../src"))
from layerwise.config import ConfigError, run_names, split_run_name, validate_config
from layerwise.reference import image_reference, reference_label
from layerwise.tasks import TEXT_SOURCES, dataset_metric, paper_curves

try:
    _validated = validate_config(config)
except ConfigError as err:
    sys.exit(f"error: {err}")
config.clear()
config.update(_validated)

# Jobs run `python` with the library importable from src/ (installed or not): the interpreter
# running Snakemake, unless --use-conda activates the environment of each rule's `conda:`.
# (Snakemake formats the prefix like a shell command, hence the doubled braces.)
_src = shlex.quote(os.path.abspath(f"{workflow.basedir}/../src"))
_bin = shlex.quote(os.path.dirname(sys.executable))
_env = f"export PYTHONPATH={_src}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
if not workflow.deployment_settings.deployment_method:
    _env = f'{_env}export PATH={_bin}:"$PATH"; '
shell.prefix(_env)
CONDA_ENV = "../../environment.yml"
RESULTS = "results"
EXPERIMENTS = {exp["name"]: exp for exp in config["experiments"]}
NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"


wildcard_constraints:
    dataset=NAME,
    experiment=NAME,
    method=r"standard|aligned|multi_exit|standard_d\d+",
    seed=r"\d+",
    measure="cos|cka",


def run_spec(w):
    """Everything that determines one run's weights, and nothing else: a change here reruns
    exactly the runs it affects (e.g. aligned settings never touch standard runs).

    The `method` wildcard is a run name: a training method, or standard_d<depth> for a
    depth-study run, which is a standard run of the experiment's model with <depth> blocks.
    """
    exp = EXPERIMENTS[w.experiment]
    method, depth = split_run_name(w.method)
    model = exp["model"] if depth is None else {**exp["model"], "depth": depth}
    spec = {"experiment": w.experiment, "dataset": exp["dataset"], "method": method,
            "seed": int(w.seed), "model": model, "train": exp["train"]}
    if method in ("aligned", "multi_exit"):
        spec[method] = exp[method]
    return spec


def run_spec_json(w):
    return json.dumps(run_spec(w), sort_keys=True)


def run_spec_hash(w):
    from layerwise.provenance import config_hash

    return config_hash(run_spec(w))


def data_dir(w):
    return f"{RESULTS}/data/{EXPERIMENTS[w.experiment]['dataset']}"


def run_dir(w):
    return f"{RESULTS}/runs/{w.experiment}/{w.method}/seed{w.seed}"


def experiment_runs(experiment, patterns, methods=None):
    """Each of `patterns` (one or a list) formatted for every (method, seed) of an experiment,
    or only for `methods`."""
    exp = EXPERIMENTS[experiment]
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    return [p.format(experiment=experiment, method=m, seed=s)
            for m in (methods or exp["methods"]) for s in exp["seeds"] for p in patterns]


def figure_files(stem):
    return [f"{stem}.pdf", f"{stem}.png"]


def experiment_targets(experiment):
    exp = EXPERIMENTS[experiment]
    fig = f"{RESULTS}/figures/{experiment}"
    targets = [f"{RESULTS}/tables/{experiment}/layerwise_accuracy.{ext}"
               for ext in ("csv", "md", "tex")]
    targets += figure_files(f"{fig}/layerwise_accuracy")
    targets += [f for m in ("cos", "cka") for f in figure_files(f"{fig}/{m}_heatmaps")]
    targets += [f for m in exp["methods"] for f in figure_files(f"{fig}/curves_vs_last_{m}")]
    targets += figure_files(f"{fig}/cos_boxplot") + figure_files(f"{fig}/adjacent_cos")
    if {"standard", "aligned"} <= set(exp["methods"]):
        targets += figure_files(f"{fig}/cross_model_cka")
    if "multi_exit" in exp["methods"]:  # the early-exit study compares against its baseline
        targets += [f"{RESULTS}/tables/{experiment}/{table}.{ext}" for ext in ("csv", "md", "tex")
                    for table in ("multi_exit", "parameter_savings", "effective_depth")]
        targets += [f for name in ("exit_tradeoff", "exit_counts", "saturation", "depth_study")
                    for f in figure_files(f"{fig}/{name}")]
    elif "aligned" in exp["methods"] and exp["model"]["arch"] == "vit":
        # saturation (paper Fig 1, 3) and the depth study (Fig 5) need no multi-exit baseline
        targets += [f"{RESULTS}/tables/{experiment}/effective_depth.{ext}"
                    for ext in ("csv", "md", "tex")]
        targets += [f for name in ("saturation", "depth_study")
                    for f in figure_files(f"{fig}/{name}")]
    return targets


def final_targets():
    targets = [t for name in EXPERIMENTS for t in experiment_targets(name)]
    if config["analysis"]["residual_ablation"]:
        targets += figure_files(f"{RESULTS}/figures/residual_ablation")
    if TEXT_EXPERIMENTS:
        targets += figure_files(f"{RESULTS}/figures/text_layerwise")
    return targets


def residual_ablation_input(which, name):
    """A summary file of the experiment named by analysis.residual_ablation.<which>."""

    def files(w):
        return f"{RESULTS}/analysis/{config['analysis']['residual_ablation'][which]}/{name}"

    return files


def summarize_args(w):
    """--run METHOD SEED RUN_DIR for every run of the experiment, quoted."""
    exp = EXPERIMENTS[w.experiment]
    return " ".join(
        f"--run {shlex.quote(m)} {s} {shlex.quote(f'{RESULTS}/analysis/{w.experiment}/{m}/seed{s}')}"
        for m in exp["methods"] for s in exp["seeds"])


def run_args(w, patterns, runs=None):
    """--run NAME SEED FILE... for every run of the experiment, one file per pattern, quoted."""
    exp = EXPERIMENTS[w.experiment]
    return " ".join(
        f"--run {shlex.quote(name)} {seed} " + " ".join(
            shlex.quote(p.format(experiment=w.experiment, method=name, seed=seed))
            for p in patterns)
        for name in (runs or exp["methods"]) for seed in exp["seeds"])


def cka_batch_size_arg(w):
    size = config["analysis"]["cka_batch_size"]
    return "" if size is None else f"--cka-batch-size {int(size)}"


def train_samples_arg(w):
    """--train-samples N when analysis.train_samples caps the extracted training split."""
    count = config["analysis"]["train_samples"]
    return "" if count is None else f"--train-samples {int(count)}"


# --- text experiments: the task's metric and the paper's curves beside ours -------------------
def experiment_dataset(experiment):
    return config["datasets"][EXPERIMENTS[experiment]["dataset"]]


TEXT_EXPERIMENTS = [name for name in EXPERIMENTS
                    if experiment_dataset(name)["source"] in TEXT_SOURCES]


def experiment_metric(w):
    """accuracy, or f1 for the GLUE tasks the paper scores by F1."""
    return dataset_metric(experiment_dataset(w.experiment))


def reference_arg(w):
    """--reference KEY LABEL of the paper's curves comparable to an experiment, or '': the
    experiment's paper_reference if set, else Fig 8 for a text task, Fig 4 (ViT) or Fig 12
    (MLP) for an image experiment."""
    exp = EXPERIMENTS[w.experiment]
    key = exp.get("paper_reference")
    curves = ((key, reference_label(key)) if key else
              paper_curves(experiment_dataset(w.experiment)) or image_reference(exp["model"]))
    return "" if curves is None else "--reference " + " ".join(map(shlex.quote, curves))


def text_panel_args(w, input):
    """--task-panel TITLE ACCURACY METRIC KEY LABEL for every text experiment, quoted."""
    panels = []
    for name, accuracy in zip(TEXT_EXPERIMENTS, input.accuracy):
        spec = experiment_dataset(name)
        key, label = paper_curves(spec) or ("-", "-")
        fields = (name, accuracy, dataset_metric(spec), key, label)
        panels.append("--task-panel " + " ".join(map(shlex.quote, fields)))
    return " ".join(panels)


# --- the HTML report (`snakemake --report`), the claims and the study summary ------------------
# Report categories, in the order a reader meets them; outputs of a text experiment go to the
# text arm's category whatever their kind.
REPORT_SIMILARITY = "Similarity"
REPORT_ACCURACY = "Layer-wise accuracy"
REPORT_SATURATION = "Saturation"
REPORT_EXITS = "Multi-exit"
REPORT_TEXT = "Text arm"
REPORT_CLAIMS = "Claims"
REPORT_RUNTIME = "Runtime"


def report_category(category):
    """`category`, or the text arm's for an output of a text experiment."""

    def resolve(w):
        return REPORT_TEXT if getattr(w, "experiment", None) in TEXT_EXPERIMENTS else category

    return resolve


def in_report(path, caption, category, result, subcategory="{experiment}"):
    """Mark one output for the report: a one-line caption workflow/report/<caption>.rst (paths
    are relative to workflow/rules/, where every rule lives), a category, a subcategory (the
    experiment by default) and a `result` label naming the figure or table."""
    return report(path, caption=f"../report/{caption}.rst", category=report_category(category),
                  subcategory=subcategory, labels={"result": result})


def table_in_report(files, caption, category, result, subcategory="{experiment}"):
    """A table written as .csv, .md and .tex (a multiext list): its CSV goes into the report."""
    return [in_report(f, caption, category, result, subcategory) if f.endswith(".csv") else f
            for f in files]


# C1-C7 are claims about transformers; the MLPs of the residual ablation only enter C8.
CLAIM_EXPERIMENTS = [name for name, exp in EXPERIMENTS.items() if exp["model"]["arch"] != "mlp"]


def has_exits(experiment):
    """Whether the workflow evaluates early exit for an experiment (see experiment_targets)."""
    return bool({"aligned", "multi_exit"} & set(EXPERIMENTS[experiment]["methods"]))


def claim_files(experiment):
    """The summary files of an experiment that the claims and the study summary read."""
    base = f"{RESULTS}/analysis/{experiment}"
    files = {"name": experiment, "metric": dataset_metric(experiment_dataset(experiment)),
             "accuracy": f"{base}/layer_accuracy.csv", "similarity": f"{base}/similarity.csv",
             "agreement": f"{base}/agreement.csv"}
    if has_exits(experiment):
        files.update(saturation=f"{base}/saturation.csv", sweep=f"{base}/exit_sweep.csv",
                     points=f"{base}/exit_operating_points.csv")
    return files


def claims_spec():
    """What check_claims reads: thresholds, the transformer experiments and the ablation pair."""
    ablation = config["analysis"]["residual_ablation"]
    return {"thresholds": config["claims"],
            "experiments": [claim_files(name) for name in CLAIM_EXPERIMENTS],
            "ablation": None if not ablation else {
                "without": claim_files(ablation["without"]),
                "with": claim_files(ablation["with"])}}


def spec_files(spec):
    """Every file path under results/ in a claims spec (the rule's inputs)."""
    if isinstance(spec, dict):
        return [f for key, value in spec.items() if key not in ("name", "metric")
                for f in spec_files(value)]
    if isinstance(spec, list):
        return [f for value in spec for f in spec_files(value)]
    return [spec] if isinstance(spec, str) and spec.startswith(f"{RESULTS}/") else []


STUDY_PLOTS = f"{RESULTS}/plots"


def figure_copy(png):
    """Where the study summary copies a figure's PNG for `dvc plots` (which renders images but
    fails on the PDFs beside them): results/plots/figures/<path under results/figures>."""
    return f"{STUDY_PLOTS}/{os.path.relpath(png, RESULTS)}"


def study_figures():
    return [t for t in final_targets() if t.endswith(".png")]


def study_summary_spec():
    """What study_summary reads (every final table and figure, the claims, the benchmarks) and
    the plot data it writes for DVC."""
    targets = final_targets()
    experiments = []
    for name in EXPERIMENTS:
        files = claim_files(name)
        prefix = (f"{RESULTS}/tables/{name}/", f"{RESULTS}/figures/{name}/")
        files.update(
            tables=[t for t in targets if t.startswith(prefix[0]) and t.endswith(".md")],
            figures=[t for t in targets if t.startswith(prefix[1]) and t.endswith(".png")],
            layerwise_plot=f"{STUDY_PLOTS}/layerwise_accuracy/{name}.csv",
            tradeoff_plot=f"{STUDY_PLOTS}/exit_tradeoff/{name}.csv" if has_exits(name) else None)
        experiments.append(files)
    return {"experiments": experiments, "policy": config["claims"]["exit_policy"],
            "study_figures": [f for f in study_figures()
                              if not f.startswith(tuple(f"{RESULTS}/figures/{n}/"
                                                        for n in EXPERIMENTS))],
            "figure_copies": [[png, figure_copy(png)] for png in study_figures()],
            "claims_json": f"{RESULTS}/tables/claims.json",
            "claims_md": f"{RESULTS}/tables/claims.md",
            "benchmarks": f"{RESULTS}/benchmarks"}


def study_summary_inputs():
    """The files study_summary reads besides the final targets and the claims JSON."""
    return [f for name in EXPERIMENTS for key, f in claim_files(name).items()
            if key not in ("name", "metric")] + [f"{RESULTS}/tables/claims.md"]


def study_plot_files():
    """The data series and images study_summary writes for `dvc plots`."""
    spec = study_summary_spec()
    return ([e["layerwise_plot"] for e in spec["experiments"]]
            + [e["tradeoff_plot"] for e in spec["experiments"] if e["tradeoff_plot"]]
            + [copy for _, copy in spec["figure_copies"]])


def study_targets():
    """What the whole study adds on top of every experiment's targets: the claims table, the
    metrics and plot data DVC shows, the runtime table and the Markdown summary."""
    return ([f"{RESULTS}/tables/claims.{ext}" for ext in ("json", "csv", "md", "tex")]
            + [f"{RESULTS}/tables/runtime.{ext}" for ext in ("csv", "md", "tex")]
            + [f"{RESULTS}/metrics.json", f"{RESULTS}/SUMMARY.md"] + study_plot_files())
