"""The study plan without Snakemake: which runs, analyses, figures and claims each experiment
gets, and the specs handed to scripts; and the registries that the config schema, the plan and
the workflow's wildcards read."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from layerwise.exits.policies import POLICIES
from layerwise.models import BACKBONES
from layerwise.report.figure_kinds import (ACCURACY, EXITS, FIGURES, SATURATION, SIMILARITY,
                                        TEXT, FigureKind)
from layerwise.similarity.measures import CKA_ESTIMATORS, HEATMAPS
from layerwise.study.config import (ConfigError, load_config_file, load_schema, merge_configs,
                                    validate_config)
from layerwise.study.plan import JOB_SPECS, StudyPlan, figure_rule, main
from layerwise.train.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default() -> dict:
    return validate_config(load_config_file(ROOT / "config" / "config.yaml"))


@pytest.fixture(scope="module")
def plan(default) -> StudyPlan:
    return StudyPlan(default)


def test_a_run_spec_holds_only_what_determines_its_weights(plan, default):
    vit = plan.experiments["vit_digits"]
    standard = plan.run_spec("vit_digits", "standard", 1)
    assert set(standard) == {"experiment", "dataset", "method", "seed", "model", "train"}
    assert standard["seed"] == 1 and standard["model"] == vit["model"]
    for method in ("aligned", "multi_exit"):  # a method's own section is part of its spec
        assert plan.run_spec("vit_digits", method, 0)[method] == vit[method]
    shallow = plan.run_spec("vit_digits", "standard_d6", 0)
    assert shallow["method"] == "standard" and shallow["model"]["depth"] == 6
    assert {k: v for k, v in shallow["model"].items() if k != "depth"} == \
        {k: v for k, v in vit["model"].items() if k != "depth"}


def test_language_model_runs_fine_tune_one_pretraining(plan, default):
    """Every method and seed starts from the one pretraining run: its spec is nested whole in
    each run spec (a change of the pretraining reruns them all), while a fine-tuning setting
    never enters the pretraining's spec."""
    assert plan.pretrained_experiments == ["gpt2_running_text"]
    assert plan.pretrain_spec("vit_digits") is None
    assert "init" not in plan.run_spec("vit_digits", "standard", 0)
    pretraining = plan.pretrain_spec("gpt2_running_text")
    exp = plan.experiments["gpt2_running_text"]
    assert pretraining["method"] == "standard" and pretraining["train"] == exp["pretrain"]["train"]
    assert pretraining["model"] == exp["model"]
    for method, seed in plan.runs("gpt2_running_text"):
        spec = plan.run_spec("gpt2_running_text", method, seed)
        trained = spec.get("base", spec)   # a tuned lens is fitted on the standard run
        assert trained["init"] == pretraining
    changed = copy.deepcopy(default)
    changed["experiments"][2]["train"]["lr"] = 5e-4
    assert StudyPlan(changed).pretrain_spec("gpt2_running_text") == pretraining
    changed["experiments"][2]["pretrain"]["train"]["epochs"] += 1
    assert StudyPlan(changed).run_spec("gpt2_running_text", "aligned", 0)["init"] != pretraining


def test_a_tuned_lens_run_holds_the_standard_run_it_is_fitted_on(plan, default):
    """A lens run's spec nests its base run's whole spec (a change of the standard run refits
    the lens) and its own settings, and no training schedule of its own."""
    for experiment in ("vit_digits", "bert_rotten_tomatoes", "gpt2_running_text"):
        spec = plan.run_spec(experiment, "tuned_lens", 2)
        assert spec["base"] == plan.run_spec(experiment, "standard", 2)
        assert spec["tuned_lens"] == plan.experiments[experiment]["tuned_lens"]
        assert "train" not in spec and "init" not in spec and spec["seed"] == 2
        on_aligned = plan.run_spec(experiment, "aligned_lens", 2)  # the same lens on aligned
        assert on_aligned["base"] == plan.run_spec(experiment, "aligned", 2)
        assert on_aligned["aligned_lens"] == spec["tuned_lens"]
    assert "tuned_lens" in plan.exit_methods("vit_digits")
    config = copy.deepcopy(default)
    config["experiments"][0]["methods"] = ["aligned", "tuned_lens"]
    with pytest.raises(ConfigError, match=r"methods\[1\]: 'tuned_lens' is not allowed; .* "
                                          "methods must list standard too"):
        validate_config(config)


@pytest.mark.parametrize("change, key, expected", [
    ({"model": {"pretrained": "gpt2"}}, "pretrain", "no pretrain section where model.pretrained"),
    ({"depth_study": [6]}, "depth_study", "[] where runs start from a pretraining"),
    ({"pretrain": {"train": {"epochs": 1, "warmup_epochs": 1}}}, "pretrain.train.warmup_epochs",
     "< epochs (1)"),
])
def test_a_pretraining_that_cannot_be_fine_tuned_is_a_config_error(default, change, key,
                                                                  expected):
    config = copy.deepcopy(default)
    exp = config["experiments"][2]
    for section, values in change.items():
        exp[section] = ({**exp[section], **values} if isinstance(exp[section], dict)
                        else values)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".*" + re.escape(expected)):
        validate_config(config)


def test_runs_cover_every_method_and_seed_then_the_depth_study(plan):
    assert plan.runs("vit_digits", ["standard"]) == [("standard", 0), ("standard", 1),
                                                      ("standard", 2)]
    assert plan.all_runs("vit_digits") == ["standard", "aligned", "multi_exit", "aligned_uniform",
                                           "cos_regularized", "tuned_lens", "aligned_lens",
                                           "standard_d6"]


def test_claims_cover_the_transformer_experiments_and_the_ablation_pair(plan):
    spec = plan.claims_spec()
    assert [e["name"] for e in spec["experiments"]] == ["vit_digits", "bert_rotten_tomatoes",
                                                        "gpt2_running_text"]
    assert spec["ablation"]["without"]["name"] == "mlp_mnist_plain"
    assert "sweep" in spec["experiments"][0] and "sweep" not in spec["ablation"]["without"]
    files = plan.spec_files(spec)
    assert files and all(f.startswith("results/") for f in files)
    assert "results/analysis/vit_digits/exit_sweep.csv" in files


def test_targets_follow_the_methods_an_experiment_trains(plan, default):
    vit = plan.experiment_targets("vit_digits")
    for short in HEATMAPS:
        assert f"results/figures/vit_digits/{short}_heatmaps.png" in vit
    assert "results/tables/vit_digits/multi_exit.md" in vit  # the multi-exit baseline is trained
    assert "results/figures/vit_digits/cross_model_cka.png" in vit
    mlp = plan.experiment_targets("mlp_mnist_plain")
    assert not any("exit" in t or "saturation" in t or "cross_model" in t for t in mlp)
    # aligned without the baseline: saturation and the depth study, no exit tables
    config = copy.deepcopy(default)
    config["experiments"][0]["methods"] = ["standard", "aligned"]
    aligned_only = StudyPlan(config).experiment_targets("vit_digits")
    assert "results/figures/vit_digits/saturation.png" in aligned_only
    assert "results/tables/vit_digits/effective_depth.md" in aligned_only
    assert not any("multi_exit" in t or "exit_tradeoff" in t for t in aligned_only)


def test_every_final_target_is_planned_once_and_study_targets_close_it(plan):
    targets = plan.final_targets()
    assert len(targets) == len(set(targets))
    assert "results/figures/residual_ablation.png" in targets
    assert "results/figures/text_layerwise.png" in targets
    study = plan.study_targets()
    assert "results/tables/claims.json" in study and "results/SUMMARY.md" in study
    copies = dict(plan.study_summary_spec()["figure_copies"])
    assert copies["results/figures/vit_digits/layerwise_accuracy.png"] == \
        "results/plots/figures/vit_digits/layerwise_accuracy.png"


def test_the_paper_curves_beside_each_experiment(plan):
    assert plan.paper_reference("vit_digits")[0] == "fig4_deit_s_imagenet.test_acc"
    assert plan.paper_reference("bert_rotten_tomatoes")[0] == "sst2_acc"
    assert plan.paper_reference("mlp_mnist_plain")[0] == "fig12_mlp9_mnist.no_residual.acc"
    assert plan.metric("bert_rotten_tomatoes") == "accuracy"
    assert plan.text_experiments == ["bert_rotten_tomatoes"]


def test_an_experiment_reference_overrides_the_backbones(default):
    config = copy.deepcopy(default)
    config["experiments"][0]["paper_reference"] = "fig2_deit_s_scratch_standard.cifar10.acc"
    assert StudyPlan(config).paper_reference("vit_digits") == (
        "fig2_deit_s_scratch_standard.cifar10.acc", "paper DeiT-S from scratch (Fig 2) cifar10")


def test_the_schema_lists_exactly_the_registered_extensions():
    schema = load_schema()
    experiment = schema["properties"]["experiments"]["items"]["properties"]
    assert experiment["model"]["properties"]["arch"]["enum"] == list(BACKBONES)
    assert experiment["methods"]["items"]["enum"] == list(METHODS)
    analysis = schema["properties"]["analysis"]["properties"]
    assert analysis["cka_estimators"]["items"]["enum"] == list(CKA_ESTIMATORS)
    assert schema["properties"]["exits"]["properties"]["policies"]["items"]["enum"] == \
        list(POLICIES)
    assert schema["properties"]["claims"]["properties"]["exit_policy"]["enum"] == list(POLICIES)


def test_an_unregistered_method_is_a_config_error_naming_the_registered_ones():
    config = {"datasets": {"digits": {"source": "sklearn_digits"}},
              "experiments": [{"name": "x", "dataset": "digits", "methods": ["distilled"]}]}
    with pytest.raises(ConfigError, match="one of: " + ", ".join(METHODS)):
        validate_config(config)


def test_the_smoke_study_plans_every_kind_of_output(default):
    smoke = validate_config(merge_configs(load_config_file(ROOT / "config" / "config.yaml"),
                                          load_config_file(ROOT / "config" / "smoke.yaml")))
    targets = StudyPlan(smoke).final_targets()
    for stem in ("layerwise_accuracy", "exit_tradeoff", "saturation", "depth_study",
                 "cross_model_cka", "cos_boxplot", "adjacent_cos"):
        assert any(t.endswith(f"/{stem}.png") for t in targets), stem


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_shipped_configs_give_compared_methods_one_schedule(name):
    """Every method with an alternating schedule that an experiment trains alternates alike,
    or the experiment says why not."""
    path = ROOT / "config" / name
    raw = load_config_file(path)
    if name != "config.yaml":
        raw = merge_configs(load_config_file(ROOT / "config" / "config.yaml"), raw)
    for exp in validate_config(raw)["experiments"]:
        schedules = {m: METHODS[m].settings(exp)["alternate"] for m in exp["methods"]
                     if METHODS[m].section and "alternate" in METHODS[m].settings(exp)}
        assert len(set(schedules.values())) <= 1 or exp["schedule_reason"], (exp["name"],
                                                                              schedules)


def test_an_unequal_schedule_needs_a_reason(default):
    raw = load_config_file(ROOT / "config" / "config.yaml")
    raw["experiments"][0]["multi_exit"]["alternate"] = False
    with pytest.raises(ConfigError, match=r"experiments\[0\]\.multi_exit\.alternate.*schedule"):
        validate_config(raw)
    raw["experiments"][0]["schedule_reason"] = "BERxiT's baseline as published"
    assert validate_config(raw)["experiments"][0]["schedule_reason"]


def test_the_exit_study_covers_the_papers_three_methods(plan):
    """Early exit and saturation compare standard, aligned and multi-exit, and the tuned lenses
    on standard and on aligned beside them; the two ablation methods enter the layer-wise and
    similarity results and their claims only."""
    methods = ["standard", "aligned", "multi_exit", "tuned_lens", "aligned_lens"]
    assert plan.exit_methods("vit_digits") == methods
    assert plan.exit_methods("bert_rotten_tomatoes") == methods


def test_a_language_model_is_analysed_token_by_token_with_the_exit_study(plan):
    assert plan.token_experiments == ["gpt2_running_text"]
    assert "gpt2_running_text" in plan.claim_experiments
    targets = plan.experiment_targets("gpt2_running_text")
    base = "results/figures/gpt2_running_text"
    for stem in ("layerwise_accuracy", "cos_heatmaps", "cka_heatmaps", "cos_boxplot",
                 "adjacent_cos", "exit_tradeoff", "exit_counts", "saturation",
                 "curves_vs_last_aligned"):
        assert f"{base}/{stem}.png" in targets, stem
    for table in ("layerwise_accuracy", "multi_exit", "parameter_savings"):
        assert f"results/tables/gpt2_running_text/{table}.md" in targets, table
    # no stored hidden states to compare across models, no depth study
    assert not any(("cross_model" in t or "depth_study" in t or "effective_depth" in t)
                   for t in targets)
    assert plan.paper_reference("gpt2_running_text")[0] == "fig9_gpt2_wikitext103_token_acc"
    assert plan.paper_loss_reference("gpt2_running_text")[0] == "fig9_gpt2_wikitext103_token_loss"
    assert plan.paper_loss_reference("vit_digits") is None


def _shipped_plan(name: str) -> StudyPlan:
    config = load_config_file(ROOT / "config" / "config.yaml")
    if name != "config.yaml":
        config = merge_configs(config, load_config_file(ROOT / "config" / name))
    return StudyPlan(validate_config(config))


def _plot_parser():
    """scripts/plot.py's argument parser (scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("plot_script", ROOT / "scripts" / "plot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parser()


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_every_figure_job_is_a_valid_plot_command_reading_its_inputs(name):
    plan, parser = _shipped_plan(name), _plot_parser()
    for experiment in [*plan.experiments, None]:
        jobs = plan.figure_jobs(experiment) if experiment else plan.study_figure_jobs()
        assert len({job.stem for job in jobs}) == len(jobs)
        for job in jobs:
            args = parser.parse_args(list(job.argv))
            assert args.figure == job.kind
            assert getattr(args, "experiment", None) == experiment
            assert (args.pdf, args.png) == tuple(job.files)
            assert job.inputs and set(job.inputs) <= set(job.argv)
            assert plan.spec_files(list(job.inputs)) == list(job.inputs)  # under results/


def test_the_study_figures_read_the_ablation_pair_and_every_text_task(plan):
    jobs = {job.kind: job for job in plan.study_figure_jobs()}
    assert list(jobs) == ["residual_ablation", "text_layerwise"]
    assert jobs["residual_ablation"].stem == "results/figures/residual_ablation"
    assert jobs["residual_ablation"].inputs == tuple(
        f"results/analysis/{e}/{f}.csv" for e in ("mlp_mnist_plain", "mlp_mnist_residual")
        for f in ("layer_accuracy", "similarity"))
    assert jobs["text_layerwise"].inputs == ("results/analysis/bert_rotten_tomatoes/"
                                             "layer_accuracy.csv",)
    assert "sst2_acc" in jobs["text_layerwise"].argv


def test_an_analysis_spec_nests_the_run_and_holds_the_exit_study_only_where_it_runs(plan,
                                                                                     default):
    spec = plan.analysis_spec("vit_digits", "aligned", 1)
    assert spec["run"] == plan.run_spec("vit_digits", "aligned", 1)
    assert spec["cka_estimators"] == default["analysis"]["cka_estimators"]
    assert spec["exits"]["policies"] == default["exits"]["policies"]
    assert "decoding" not in spec["exits"]
    assert "exits" not in plan.analysis_spec("vit_digits", "cos_regularized", 1)
    assert "exits" not in plan.analysis_spec("vit_digits", "standard_d6", 1)
    assert "exits" not in plan.analysis_spec("mlp_mnist_plain", "standard", 0)
    tokens = plan.analysis_spec("gpt2_running_text", "standard", 0)
    assert tokens["exits"]["speculative"] == default["exits"]["speculative"]
    assert "rbf_threshold" not in tokens and tokens["token_samples"]


def test_a_gathering_spec_lists_each_run_with_the_files_its_analysis_writes(plan):
    spec = plan.summary_spec("gpt2_running_text")
    assert [(r["method"], r["seed"]) for r in spec["runs"]] == plan.runs("gpt2_running_text")
    assert spec["runs"][0]["files"]["layer_accuracy"] == \
        "results/analysis/gpt2_running_text/standard/seed0/layer_accuracy.csv"
    assert spec["baselines"] == "results/baselines/running_text.json"
    assert plan.summary_spec("vit_digits")["baselines"] == "results/baselines/digits.json"
    assert spec["depth"] == {"model": "standard", "reader": "tuned_lens",
                             "max_first_layer_share": 0.6}
    assert plan.summary_spec("mlp_mnist_plain")["depth"]["reader"] == "standard"
    assert plan.baseline_spec("rotten_tomatoes")["metric"] == "accuracy"
    exits = plan.exit_summary_spec("vit_digits")
    assert {r["method"] for r in exits["runs"]} == set(plan.exit_methods("vit_digits"))
    depth = plan.depth_study_spec("vit_digits")
    assert {r["method"] for r in depth["runs"]} == set(plan.trained_runs("vit_digits"))
    assert depth["runs"][-1]["files"]["train_log"].endswith("/train_log.csv")
    inputs = plan.spec_files(plan.cross_model_spec("vit_digits"))
    assert len(inputs) == 2 * len(plan.experiments["vit_digits"]["seeds"])
    assert all(f.endswith("/test.safetensors") for f in inputs)


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_every_planned_figure_has_a_record_a_caption_and_reads_what_its_record_declares(name):
    """The plan's figures, the report's captions and categories and the inputs of the figure
    rules all come from the records: a job of a kind without one, a missing caption file, or a
    file the record does not declare (which Snakemake would not wait for) fails here."""
    plan = _shipped_plan(name)
    for experiment in plan.experiments:
        for job in plan.figure_jobs(experiment):
            kind = FIGURES[job.kind]
            assert kind.per_experiment and kind.applies(plan, experiment)
            read = [job.argv[i + 1] for i, word in enumerate(job.argv) if word in kind.inputs]
            assert read == list(job.inputs), job.stem
    for stem in plan.study_figure_stems():
        assert not FIGURES[Path(stem).name].per_experiment
    for kind in FIGURES.values():
        assert (ROOT / "workflow" / "report" / f"{kind.caption}.rst").is_file(), kind.name
        assert kind.category in (SIMILARITY, ACCURACY, SATURATION, EXITS, TEXT), kind.name


def test_the_records_decide_which_experiments_get_which_figure(plan):
    kinds = {e: {job.kind for job in plan.figure_jobs(e)} for e in plan.experiments}
    assert {"cross_model", "exit_tradeoff", "depth_study"} <= kinds["vit_digits"]
    assert not {"speculative", "generation"} & kinds["vit_digits"]
    assert {"speculative", "generation", "exit_tradeoff"} <= kinds["gpt2_running_text"]
    assert not {"cross_model", "depth_study"} & kinds["gpt2_running_text"]
    assert not {"cross_model", "exit_tradeoff"} & kinds["mlp_mnist_plain"]
    assert [Path(s).name for s in plan.study_figure_stems()] == ["residual_ablation",
                                                                 "text_layerwise"]


def test_a_figure_record_is_of_an_experiment_or_of_the_study():
    base = dict(name="x", draw="m:f", options=(), caption="x", category=SIMILARITY, paper="")
    FigureKind(**base, in_study=lambda plan: True, jobs=lambda plan, e: [])
    FigureKind(**base, applies=lambda plan, e: True, jobs=lambda plan, e: [])
    for wrong in ({}, {"applies": lambda plan, e: True}, {"in_study": lambda plan: True},
                  {"applies": lambda plan, e: True, "jobs": lambda plan, e: [],
                   "in_study": lambda plan: True}):
        with pytest.raises(ValueError, match="figure x"):
            FigureKind(**base, **wrong)


@pytest.mark.parametrize("section, key, value", [("generation", "new_tokens", 49),
                                                 ("speculative", "steps", 45),
                                                 ("decoding", "steps", 49)])
def test_decoding_beyond_a_models_positions_is_a_config_error(default, section, key, value):
    """The default language model has 64 positions: prompt, generated tokens and the longest
    draft's look-ahead must fit in them."""
    config = copy.deepcopy(default)
    config["exits"][section][key] = value
    with pytest.raises(ConfigError, match=rf"exits\.{section}\.{key}: {value} .* within its 64 "
                                          "positions"):
        validate_config(config)


def test_a_dataset_job_gets_its_section_and_a_hub_download_more_resources(plan, default):
    assert plan.dataset_spec("digits") == default["datasets"]["digits"]
    assert not plan.dataset_from_hub("digits")
    paper = _shipped_plan("paper.yaml")
    hub = {name for name in paper.config["datasets"] if paper.dataset_from_hub(name)}
    assert {paper.dataset_spec(name)["source"] for name in hub} == {"glue", "wikitext"}


# --- which spec each rule's jobs get, and the command printing one ------------------------------
CONFIG = str(ROOT / "config" / "config.yaml")


def _plan_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "layerwise.study.plan", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def test_the_job_command_prints_the_spec_the_workflow_passes(plan, default):
    """`python -m layerwise.study.plan CONFIG --job RULE NAME=VALUE ...` prints the spec a
    job's script gets, from wildcards given as strings (as Snakemake gives them)."""
    exp = default["experiments"][0]
    method, seed = exp["methods"][0], exp["seeds"][0]
    result = _plan_cli("config/config.yaml", "--job", "train", f"experiment={exp['name']}",
                       f"method={method}", f"seed={seed}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == plan.run_spec(exp["name"], method, seed)
    assert result.stdout.startswith('{\n  "dataset": ')  # sorted keys, indented


def test_a_figure_job_is_named_as_snakemake_names_it(plan, default, capsys):
    for name, jobs in [(default["experiments"][0]["name"], plan.figure_jobs), ("study", None)]:
        assert main([CONFIG, "--job", figure_rule(name)]) == 0
        argv = jobs(name) if jobs else plan.study_figure_jobs()
        assert json.loads(capsys.readouterr().out) == [list(job.argv) for job in argv]
    assert main([CONFIG, "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(re.search(rf"^{rule} ", listing, re.M) for rule in JOB_SPECS)


@pytest.mark.parametrize("job, message", [
    (["nope"], "no rule 'nope' takes a spec; rules: prepare_data, "),
    (["train", "experiment=vit_digits", "method=standard"],
     "rule train takes experiment=... method=... seed=...; missing seed"),
    (["summarize", "experiment=vit_digits", "seed=0"],
     "rule summarize takes experiment=...; unknown seed"),
    (["train", "experiment=vit", "method=standard", "seed=0"], "unknown experiment 'vit'; known: "),
    (["train", "experiment=vit_digits", "method=fast", "seed=0"],
     "unknown method 'fast' of experiment vit_digits; known: standard, "),
    (["analyze_run", "experiment=vit_digits", "method=standard", "seed=7"],
     "unknown seed '7' of experiment vit_digits; known: 0, 1, 2"),
    (["prepare_data", "dataset"], "'dataset' is not NAME=VALUE"),
    (["pretrain", "experiment=vit_digits"], "rule pretrain has no job for experiment=vit_digits"),
])
def test_a_job_the_config_has_not_is_one_line_and_exit_code_1(capsys, job, message):
    assert main([CONFIG, "--job", *job]) == 1
    out, err = capsys.readouterr()
    assert not out and err.startswith(f"error: {message}") and err.count("\n") == 1, err


def _smk_rules():
    """(name, rule it copies or None, text) of every rule in workflow/rules/*.smk; a rule
    named in code (the figures' per experiment) by its `name:` expression."""
    head = r"^[ \t]*(?:rule (\w+)|(rule)|use rule (\w+) as (\w+) with):[ \t]*$"
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        parts = re.split(head, path.read_text(encoding="utf-8"), flags=re.M)
        for i in range(1, len(parts), 5):
            name, anonymous, base, copy_, body = parts[i:i + 5]
            if anonymous:
                name = re.search(r"^\s+name: (.+)$", body, re.M).group(1)
            yield name or copy_, base, body


def test_every_rule_passing_a_spec_takes_it_from_the_plans_table():
    """A rule whose script takes --spec passes job_spec("<its own name>") (common.smk), its
    inputs from that spec are the same entry's, and it runs the table's script; a new rule
    without an entry, or an entry without a rule, fails here."""
    covered = set()
    for name, base, body in _smk_rules():
        if base is not None:  # `use rule base as name`: its params and shell are base's
            if base in JOB_SPECS:
                assert name in JOB_SPECS, f"rule {name} (a copy of {base}) has no JOB_SPECS entry"
                assert JOB_SPECS[name].script == JOB_SPECS[base].script, name
                covered.add(name)
            continue
        if "--spec" not in body:
            continue
        entry = re.search(r'^\s+spec=job_spec\("(\w+)"', body, re.M)
        assert entry, f"rule {name} passes a --spec that is not job_spec(...)"
        rule = entry.group(1)
        assert rule in JOB_SPECS, f"rule {name} has no JOB_SPECS entry"
        assert rule == name or (rule, name) == ("figures", "figure_rule(_name)"), name
        assert set(re.findall(r'files_of\("(\w+)"\)', body)) <= {rule}, name
        assert f"python scripts/{JOB_SPECS[rule].script}.py --spec" in body, name
        covered.add(rule)
    assert covered == set(JOB_SPECS)
