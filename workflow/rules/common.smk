import json
import os
import re
import shlex
import sys

sys.path.insert(0, os.path.abspath(f"{workflow.basedir}/../src"))
from layerwise.report import figure_kinds
from layerwise.study.config import ConfigError, validate_config
from layerwise.study.plan import RUN, STUDY, StudyPlan, figure_rule
from layerwise.train.methods import METHODS, trained

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
# Every job's command runs under `python -m layerwise.usage --beside {log:q} --`, which writes
# the job's own record of CPU time, peak memory and bytes written beside its log; the runtime
# table reads those records (Snakemake's benchmark files sample a job's processes at intervals
# and miss what falls between samples).
RESULTS = "results"
PLAN = StudyPlan(config, RESULTS)
EXPERIMENTS = PLAN.experiments
NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"


wildcard_constraints:
    dataset=NAME,
    experiment=NAME,
    method="|".join(METHODS) + r"|standard_d\d+",
    seed=r"\d+",


def one_of(names):
    """A wildcard pattern matching exactly `names` (nothing when there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


# Runs are trained (rule train), fitted post hoc on another method's runs (rule fit_lens), or
# a pretrained checkpoint as loaded (rule load_pretrained).
TRAINED_METHODS = one_of([m for m in METHODS if trained(m)]) + r"|standard_d\d+"
POST_HOC_METHODS = one_of([m for m in METHODS if METHODS[m].post_hoc is not None])
AS_LOADED_METHODS = one_of([m for m in METHODS if METHODS[m].as_loaded])


def post_hoc_base(w):
    """The method whose run of the same seed a post-hoc run is fitted on."""
    return METHODS[w.method].post_hoc


# Every run is analysed by one job that loads its model once: a classifier's by analyze_run
# (hidden states stored, then the layer-wise analysis), or analyze_exit_run for the runs of the
# early-exit study (the same, plus the exit study); a language model's by analyze_tokens,
# token by token in streaming passes. The patterns of what they write (the plan's):
HIDDEN_FILES = PLAN.run_file_patterns("hidden")
ANALYSIS_FILES = PLAN.run_file_patterns("analysis")
EXIT_FILES = PLAN.run_file_patterns("exits")
# a language model's decoding: lossless (self-speculative) and at a fixed exit (Fig 9 c, d)
DECODING_FILES = PLAN.run_file_patterns("decoding")
TOKEN_LEVEL = one_of(PLAN.token_experiments)
STORED = one_of([name for name in EXPERIMENTS if name not in PLAN.token_experiments])
# An exit run is a run of an experiment with exits under one of its exit-study methods; the
# methods of every such experiment together pick exactly those runs (a run exists only for an
# experiment's own methods).
EXIT_STORED = one_of([name for name in EXPERIMENTS if name not in PLAN.token_experiments
                      and PLAN.has_exits(name)])
EXIT_METHODS = one_of(sorted({m for name in EXPERIMENTS if PLAN.has_exits(name)
                              for m in PLAN.exit_methods(name)}))


# Every script reads its settings from one --spec, a JSON object the plan builds; a rule adds
# only the paths it declares. Which spec a rule's jobs get is the plan's table
# (layerwise.study.plan.JOB_SPECS), which `python -m layerwise.study.plan` also prints from.
def spec_json(spec):
    return json.dumps(spec, sort_keys=True)


def job_spec(rule, **values):
    """The --spec of a job of `rule` (its entry in the plan's table), as JSON, from the job's
    wildcards and `values` (the wildcards of a rule generated per experiment)."""
    return lambda w: spec_json(PLAN.job_spec(rule, {**dict(w.items()), **values}))


def output_options(w, output):
    """--NAME PATH for every output of a rule named by one file (the scripts' output options
    are named as the rules name their outputs), quoted."""
    return " ".join(f"--{name.replace('_', '-')} {shlex.quote(path)}"
                    for name, path in output.items() if isinstance(path, str))


def table_stem(w, output):
    """The stem of a table a rule writes as .csv, .md and .tex (its output `table`)."""
    return os.path.splitext(output.table[0])[0]


def pretrained_model(w):
    """The weights of the experiment's pretraining run, or None where it has none."""
    if w.experiment not in PLAN.pretrained_experiments:
        return None
    return f"{RESULTS}/runs/{w.experiment}/pretrain/model.safetensors"


def data_dir(w):
    return PLAN.data_folder(w.experiment)


def files_of(rule):
    """The inputs of a gathering rule: every results file its job's spec names."""
    return lambda w: PLAN.spec_files(PLAN.job_spec(rule, dict(w.items())))


TEXT_EXPERIMENTS = PLAN.text_experiments


# --- the HTML report (`snakemake --report`), the claims and the study summary ------------------
# Report categories, in the order a reader meets them; outputs of a text experiment go to the
# text arm's category whatever their kind. The figures' categories are their records'
# (layerwise.report.figure_kinds), which the tables share.
REPORT_ACCURACY = figure_kinds.ACCURACY
REPORT_SATURATION = figure_kinds.SATURATION
REPORT_EXITS = figure_kinds.EXITS
REPORT_TEXT = figure_kinds.TEXT
REPORT_CLAIMS = "Claims"
REPORT_RUNTIME = "Runtime"


def report_category(category, subcategory):
    """`category`, or the text arm's for an output of a text experiment: the rule's
    {experiment} wildcard, or the experiment its subcategory names (a rule per experiment)."""

    def resolve(w):
        experiment = getattr(w, "experiment", None) or subcategory
        return REPORT_TEXT if experiment in TEXT_EXPERIMENTS else category

    return resolve


def in_report(path, caption, category, result, subcategory="{experiment}"):
    """Mark one output for the report: a one-line caption workflow/report/<caption>.rst (paths
    are relative to workflow/rules/, where every rule lives), a category, a subcategory (the
    experiment by default) and a `result` label naming the figure or table."""
    return report(path, caption=f"../report/{caption}.rst",
                  category=report_category(category, subcategory), subcategory=subcategory,
                  labels={"result": result})


def table_in_report(files, caption, category, result, subcategory="{experiment}"):
    """A table written as .csv, .md and .tex (a multiext list): its CSV goes into the report."""
    return [in_report(f, caption, category, result, subcategory) if f.endswith(".csv") else f
            for f in files]


def figure_in_report(path, kind, result, subcategory="{experiment}"):
    """A figure's PNG marked for the report with the caption and category of its kind's
    record."""
    record = figure_kinds.FIGURES[kind]
    return in_report(path, record.caption, record.category, result, subcategory)


def figure_outputs(subcategory, jobs):
    """Each figure's PDF, and its PNG marked for the report."""
    return [path for job in jobs for path in (
        f"{job.stem}.pdf", figure_in_report(f"{job.stem}.png", job.kind, job.label, subcategory))]
