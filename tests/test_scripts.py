"""The one route from the plan to a script: every script reads its settings from one --spec,
rejects a spec that lacks a key, holds an unknown one or names an unregistered choice, in one
line, before any work; and a gathering script writes what the plan's spec lists."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from layerwise import cli
from layerwise.errors import ConfigError
from layerwise.study.config import load_config_file, merge_configs, validate_config
from layerwise.study.plan import ANALYSIS_PARTS, StudyPlan

ROOT = Path(__file__).resolve().parents[1]


def script(name: str):
    """A script's module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("text, message", [
    ("{", "--spec is not JSON"),
    ("[1]", "--spec is a JSON list, not an object"),
    ('{"runs": []}', "--spec lacks epsilon"),
    ('{"runs": [], "epsilon": 0.1, "epsillon": 0.1}', "--spec has unknown keys epsillon"),
])
def test_a_spec_is_read_whole_or_rejected_in_one_line(text, message):
    with pytest.raises(ConfigError, match=message):
        cli.read_spec(text, ("runs", "epsilon"))


def test_a_part_of_a_spec_is_checked_as_the_whole_is():
    cli.check_keys("--spec exits", {"policies": [], "timing": {}}, ("policies", "timing"))
    with pytest.raises(ConfigError, match="--spec exits lacks timing; has unknown keys polices"):
        cli.check_keys("--spec exits", {"policies": [], "polices": []}, ("policies", "timing"))


def test_a_spec_naming_an_unregistered_choice_is_rejected():
    cli.check_choices("policies", ["confidence"], ["confidence", "entropy"])
    with pytest.raises(ConfigError, match=r"--spec policies: 'patience' is not one of "
                                          "confidence, entropy"):
        cli.check_choices("policies", ["confidence", "patience"], ["confidence", "entropy"])


@pytest.mark.parametrize("name", ["analyze_run", "analyze_tokens"])
def test_an_analysis_script_rejects_a_spec_before_loading_anything(name, tmp_path, capsys):
    plan = StudyPlan(validate_config(load_config_file(ROOT / "config" / "config.yaml")))
    experiment = "gpt2_running_text" if name == "analyze_tokens" else "vit_digits"
    spec = plan.analysis_spec(experiment, "aligned", 0)
    spec["cka_estimators"] = ["linear_biased", "cubic"]
    outputs = [word for part in plan.run_files(
        "analysis", experiment, "aligned", 0) for word in (f"--{part.replace('_', '-')}",
                                                           str(tmp_path / part))]
    outputs += [word for group in ("hidden", "exits", "decoding")
                for part in plan.run_files(group, experiment, "aligned", 0)
                for word in (f"--{part.replace('_', '-')}", str(tmp_path / part))
                if group != "hidden" or name == "analyze_run"
                if group != "decoding" or name == "analyze_tokens"]
    argv = ["--spec", json.dumps(spec), "--data", str(tmp_path / "absent"),
            "--model", str(tmp_path / "absent.safetensors"), *outputs]
    if name == "analyze_tokens":  # the model that judges every method's generated text
        argv += ["--judge", str(tmp_path / "absent_judge.safetensors")]
    with pytest.raises(SystemExit) as exit_:
        cli.run(script(name).main, argv)
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: --spec cka_estimators: 'cubic' is not one of "
        "linear_biased, linear_unbiased, rbf")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("config", ["smoke.yaml", "paper.yaml"])
def test_every_analysis_spec_the_plan_builds_is_one_its_script_takes(config):
    """The contract between the plan and the analysis scripts, over every run of a shipped
    config: the keys each script requires, and the exit study's where the plan gives it."""
    merged = merge_configs(load_config_file(ROOT / "config" / "config.yaml"),
                           load_config_file(ROOT / "config" / config))
    plan = StudyPlan(validate_config(merged))
    scripts = {name: script(name) for name in ("analyze_run", "analyze_tokens")}
    for experiment in plan.experiments:
        tokens = experiment in plan.token_experiments
        taker = scripts["analyze_tokens" if tokens else "analyze_run"]
        for run in plan.all_runs(experiment):
            spec = plan.analysis_spec(experiment, run, 0)
            cli.check_keys("--spec", spec, taker.SPEC_KEYS, optional=("exits",))
            if "exits" in spec:
                cli.check_keys("--spec exits", spec["exits"], taker.EXIT_KEYS)
            assert ("exits" in spec) == plan.is_exit_run(experiment, run)


def test_summarize_gathers_the_runs_its_spec_lists(tmp_path):
    """Each run's file of each part joins one tidy file, method and seed first; the table is
    the layer-wise metric over seeds."""
    runs = []
    for method in ("standard", "aligned"):
        for seed in (0, 1):
            folder = tmp_path / method / f"seed{seed}"
            folder.mkdir(parents=True)
            files = {}
            for part in ANALYSIS_PARTS:
                files[part] = str(folder / f"{part}.csv")
                pd.DataFrame({"split": ["test", "test"], "layer": [0, 1],
                              "accuracy": [0.5 + seed / 10, 0.9]}).to_csv(files[part],
                                                                          index=False)
            runs.append({"method": method, "seed": seed, "files": files})
    baselines = tmp_path / "baselines.json"
    baselines.write_text(json.dumps({
        "metric": "accuracy", "trivial": "majority", "shallow": "logistic", "models": {
            "majority": {"label": "majority class", "test": {"accuracy": 0.5}},
            "logistic": {"label": "logistic regression", "test": {"accuracy": 0.8}}}}))
    spec = {"runs": runs, "metric": "accuracy", "table_split": "test",
            "baselines": str(baselines),
            "depth": {"model": "standard", "reader": "standard", "max_first_layer_share": 0.6}}
    out = tmp_path / "out"
    argv = ["--spec", json.dumps(spec), "--table", str(out / "table"),
            "--depth-table", str(out / "depth"), "--depth-use", str(out / "depth_use.csv")]
    argv += [w for part in ANALYSIS_PARTS for w in (f"--{part.replace('_', '-')}",
                                                    str(out / f"{part}.csv"))]
    script("summarize").main(argv)
    gathered = pd.read_csv(out / "layer_accuracy.csv")
    assert list(gathered.columns[:2]) == ["method", "seed"] and len(gathered) == 8
    assert gathered.query("method == 'aligned' and seed == 1 and layer == 0")[
        "accuracy"].item() == pytest.approx(0.6)
    assert {"table.csv", "table.md", "table.tex"} <= {p.name for p in out.iterdir()}
    table = pd.read_csv(out / "table.csv")
    assert (table["logistic_accuracy"] == 0.8).all() and (table["majority_accuracy"] == 0.5).all()
    depth = pd.read_csv(out / "depth.csv")   # layer 1 is the last: every run beats 0.8 ...
    assert depth["beats_shallow"].all() and len(depth) == 4
    assert (depth["s_1"] == 1).all()           # ... with all of it at its first layer
    assert "labelled **shallow**" in (out / "depth.md").read_text()
