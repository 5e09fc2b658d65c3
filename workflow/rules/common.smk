import json
import os
import shlex
import sys

sys.path.insert(0, os.path.abspath(f"{workflow.basedir}/../src"))
from layerwise.config import ConfigError, validate_config

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
    method="standard|aligned",
    seed=r"\d+",
    measure="cos|cka",


def run_spec(w):
    """Everything that determines one run's weights, and nothing else: a change here reruns
    exactly the runs it affects (e.g. aligned settings never touch standard runs)."""
    exp = EXPERIMENTS[w.experiment]
    spec = {"experiment": w.experiment, "dataset": exp["dataset"], "method": w.method,
            "seed": int(w.seed), "model": exp["model"], "train": exp["train"]}
    if w.method == "aligned":
        spec["aligned"] = exp["aligned"]
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


def experiment_runs(experiment, pattern):
    """`pattern` formatted for every (method, seed) of an experiment."""
    exp = EXPERIMENTS[experiment]
    return [pattern.format(experiment=experiment, method=m, seed=s)
            for m in exp["methods"] for s in exp["seeds"]]


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
    return targets


def final_targets():
    return [t for name in EXPERIMENTS for t in experiment_targets(name)]


def summarize_args(w, input):
    """--run METHOD SEED ACCURACY SIMILARITY for every run of the experiment, quoted."""
    from shlex import quote

    exp = EXPERIMENTS[w.experiment]
    runs = [(m, s) for m in exp["methods"] for s in exp["seeds"]]
    return " ".join(f"--run {quote(m)} {s} {quote(a)} {quote(b)}"
                    for (m, s), a, b in zip(runs, input.accuracy, input.similarity))
