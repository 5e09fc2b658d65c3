"""config/paper.yaml: the paper's experiments plan, without data, to every figure and table that
docs/paper-scale.md maps to the paper."""

import re

import pytest

from conftest import ROOT, copy_project, job_counts, snakemake
from layerwise.study.config import load_config_file, merge_configs, validate_config
from layerwise.reference import curves

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def paper_config() -> dict:
    return validate_config(merge_configs(load_config_file(ROOT / "config/config.yaml"),
                                         load_config_file(ROOT / "config/paper.yaml")))


def paper_table_targets() -> list[str]:
    """Every results/ file named in docs/paper-scale.md's table of paper figures."""
    text = (ROOT / "docs/paper-scale.md").read_text()
    table = text.split("\n\n| paper |", 1)[1]
    table = table.split("\n\n", 1)[0]
    return sorted({f"results/{m}" for m in re.findall(r"`((?:figures|tables)/[^`]+)`", table)})


def test_paper_config_covers_the_paper_and_names_its_reference_values():
    config = paper_config()
    names = {e["name"]: e for e in config["experiments"]}
    sources = {config["datasets"][e["dataset"]]["source"] for e in names.values()}
    assert {"cifar10", "imagenet", "mnist", "glue"} <= sources
    tasks = {config["datasets"][e["dataset"]]["glue"]["task"] for e in names.values()
             if config["datasets"][e["dataset"]]["source"] == "glue"}
    assert tasks == {"sst2", "mrpc", "qnli", "mnli", "rte", "qqp"}
    # the paper's three methods, and beyond it a tuned lens on the standard and aligned models
    lensed = ["standard", "aligned", "multi_exit", "tuned_lens", "aligned_lens"]
    assert names["deit_s_imagenet"]["methods"] == lensed
    assert names["deit_s_cifar10"]["depth_study"] == [6, 9]
    assert names["deit_s_cifar10_pretrained"]["model"]["pretrained"] == "deit_small_patch16_224"
    for exp in names.values():
        if exp["model"]["arch"] == "vit":  # DeiT-S and the paper's vision training
            assert (exp["model"]["depth"], exp["model"]["width"]) == (12, 384)
            train = exp["train"]
            assert (train["batch_size"], train["epochs"], train["milestones"]) == (256, 200,
                                                                                  [100, 150])
            assert train["weight_decay"] == 1e-4 and train["augment"]["crop_padding"] == 4
        if exp["methods"] == ["pretrained"]:  # a checkpoint analysed as published
            continue                             # (Figs 22-23, App. C.1: no digitized values)
        assert exp["paper_reference"], exp["name"]
        assert curves(exp["paper_reference"], "paper")  # resolves to drawable curves
    gpt2 = names["gpt2_wikitext103"]  # the first author's GPT-2 setting (Fig 9)
    assert config["datasets"][gpt2["dataset"]]["wikitext"]["config"] == "wikitext-103-raw-v1"
    text = config["datasets"][gpt2["dataset"]]["text"]
    assert (text["tokenizer"], text["max_length"]) == ("gpt2", 255)
    assert gpt2["model"]["pretrained"] == "gpt2" and gpt2["model"]["head_input"] == "raw"
    assert {k: gpt2["train"][k] for k in ("lr", "batch_size", "schedule", "grad_clip")} == {
        "lr": 2e-5, "batch_size": 128, "schedule": "linear", "grad_clip": 1.0}
    assert gpt2["train"]["warmup_epochs"] * 10 == gpt2["train"]["epochs"]  # 10 % warm-up
    assert gpt2["aligned"]["alternate"] and gpt2["methods"] == lensed
    assert config["analysis"]["residual_ablation"] == {"without": "mlp_mnist_plain",
                                                       "with": "mlp_mnist_residual"}


def test_paper_config_dry_runs_to_every_figure_without_data(tmp_path):
    project = copy_project(tmp_path)
    run = snakemake(project, "-n", "--configfile", "config/paper.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    planned = {f.strip() for line in re.findall(r"^\s+output: (.+)$", run.stdout, re.M)
               for f in line.split(",")}
    targets = paper_table_targets()
    assert len(targets) >= 20
    missing = [t for t in targets if t not in planned]
    assert not missing, f"docs/paper-scale.md targets the paper config does not produce: {missing}"
    counts = job_counts(run.stdout)
    # every dataset of the paper config is prepared (the default study's are not used)
    assert counts["prepare_data"] == len(load_config_file(ROOT / "config/paper.yaml")["datasets"])
    assert not (project / "results").exists()  # planning downloads and writes nothing
