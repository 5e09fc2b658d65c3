"""The paper-shape run (benchmarks/paper_shapes.py): its config keeps every model shape of
config/paper.yaml and plans every rule; its stand-ins load offline under the hub's names at
the hub's vocabulary sizes; every rule the cluster runs has resources in the SLURM profile.
The run itself is a benchmark (about an hour on 2 cores), not a test."""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from conftest import ROOT, copy_project, job_counts, snakemake
from benchmarks import paper_shapes, stand_ins
from layerwise.study.config import load_config_file, merge_configs, validate_config


def paper() -> dict:
    return yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())


def test_the_shape_config_keeps_every_model_and_input_shape(tmp_path):
    original = paper()
    shaped = paper_shapes.shape_config(original, tmp_path / "inputs", None)
    config = validate_config(merge_configs(load_config_file(ROOT / "config" / "config.yaml"),
                                           shaped))
    kept = [e for e in original["experiments"] if e["name"] not in paper_shapes.EXCEEDS_MACHINE]
    assert [e["name"] for e in shaped["experiments"]] == [e["name"] for e in kept]
    for before, after in zip(kept, shaped["experiments"]):
        assert after["model"] == before["model"] and after["methods"] == before["methods"]
        assert after["seeds"] == [0]
        if "train" in before:   # (an analysis-only experiment trains nothing)
            assert after["train"]["steps_per_epoch"] == paper_shapes.STEPS
    datasets = config["datasets"]
    assert (datasets["cifar10"]["image_size"], datasets["cifar10"]["generated"]["channels"],
            datasets["cifar10"]["generated"]["num_classes"]) == (32, 3, 10)
    assert (datasets["mnist"]["image_size"], datasets["mnist"]["generated"]["channels"]) == (28, 1)
    assert datasets["imagenet"]["image_size"] == 224
    assert original["datasets"]["glue_mrpc"]["text"].items() <= datasets["glue_mrpc"]["text"].items()
    assert datasets["wikitext103"]["text"]["tokenizer"] == "gpt2"
    # the language model trains one micro-batch of the paper's step: the same memory
    gpt2 = next(e for e in shaped["experiments"] if e["name"] == "gpt2_wikitext103")
    paper_gpt2 = next(e for e in original["experiments"] if e["name"] == "gpt2_wikitext103")
    assert gpt2["train"]["batch_size"] == (paper_gpt2["train"].get("micro_batch_size")
                                           or paper_gpt2["train"]["batch_size"])
    with pytest.raises(SystemExit, match="no experiment nope"):
        paper_shapes.shape_config(original, tmp_path, ["nope"])
    with pytest.raises(SystemExit, match="llama3_wikitext103 cannot run here: .* 32 GB"):
        paper_shapes.shape_config(original, tmp_path, ["llama3_wikitext103"])
    default = paper_shapes.default_experiments(original)   # what the command runs unasked
    assert {"clip_cifar10", "gpt2_wikitext103", "bert_mnli"} <= set(default)
    assert not set(default) & {"llama3_wikitext103", *paper_shapes.SAME_SHAPES}
    assert paper_shapes.shape_config(original, tmp_path / "inputs", default)["experiments"]


@pytest.mark.workflow
def test_the_shape_config_plans_every_rule_of_the_paper_dag(tmp_path):
    project = copy_project(tmp_path / "project")
    shaped = paper_shapes.shape_config(paper(), tmp_path / "inputs", None)
    (project / "config" / "paper_shapes.yaml").write_text(yaml.safe_dump(shaped))
    planned = snakemake(project, "-n", "--configfile", "config/paper_shapes.yaml")
    assert planned.returncode == 0, planned.stderr[-2000:]
    full = snakemake(project, "-n", "--configfile", "config/paper.yaml")
    # an experiment's figure rule is named after it; the machine's missing experiments have
    # figure rules of the same kind
    rules = lambda out: {"figures" if r.startswith("figures_") and r != "figures_study" else r
                         for r in job_counts(out)}
    assert rules(planned.stdout) == rules(full.stdout)


def test_stand_in_tokenizers_and_checkpoints_load_offline_under_hub_names(tmp_path):
    generator = np.random.default_rng(0)
    vocabulary = stand_ins.words(60000, generator)
    hub = tmp_path / "hf" / "hub"
    from transformers import BertConfig, CLIPConfig, GPT2Config, GPT2LMHeadModel

    folder = stand_ins.snapshot(hub, "bert-base-uncased")
    BertConfig().save_pretrained(folder)   # AutoTokenizer reads the model's config first
    stand_ins.bert_tokenizer(folder, vocabulary[:stand_ins.BERT_VOCAB
                                                - len(stand_ins.BERT_SPECIALS)])
    folder = stand_ins.snapshot(hub, "gpt2")
    stand_ins.gpt2_tokenizer(folder, vocabulary)
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, n_positions=16)).save_pretrained(
        folder)
    folder = stand_ins.snapshot(hub, stand_ins.CLIP)
    CLIPConfig().save_pretrained(folder)
    stand_ins.clip_tokenizer(folder, vocabulary)
    check = textwrap.dedent("""
        from transformers import AutoTokenizer, GPT2LMHeadModel
        bert, gpt2 = AutoTokenizer.from_pretrained("bert-base-uncased"), AutoTokenizer.from_pretrained("gpt2")
        assert (len(bert), len(gpt2), gpt2.eos_token_id) == (30522, 50257, 50256), (len(bert), len(gpt2))
        words = " ".join(bert.convert_ids_to_tokens([700, 30000]))
        assert bert(words)["input_ids"] == [bert.cls_token_id, 700, 30000, bert.sep_token_id]
        assert GPT2LMHeadModel.from_pretrained("gpt2").config.n_layer == 1
        clip = AutoTokenizer.from_pretrained("openai/clip-vit-base-patch32")
        assert (len(clip), clip.eos_token_id) == (49408, 49407), len(clip)
        ids = clip("This is a photo of a class 3")["input_ids"]
        assert ids[0] == 49406 and ids[-1] == 49407 and clip.unk_token_id not in ids, ids
    """)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_each_job_is_matched_with_what_it_declared(tmp_path):
    log = textwrap.dedent("""
        rule train:
            input: results/data/cifar10/info.json
            log: results/logs/train/x/standard/seed0.log
            jobid: 3
            resources: tmpdir=/tmp, runtime=120, mem_mb=4000, mem_mib=3815

        localrule prepare_data:
            log: results/logs/prepare_data/cifar10.log
            resources: tmpdir=/tmp, mem_mb=2000, mem_mib=1908
    """)
    declared = paper_shapes.declared_local(log)
    assert declared == {"results/logs/train/x/standard/seed0.log": 4000,
                        "results/logs/prepare_data/cifar10.log": 2000}
    usage = tmp_path / "results" / "logs" / "train" / "x" / "standard" / "seed0.usage.json"
    usage.parent.mkdir(parents=True)
    usage.write_text('{"max_rss_mb": 900.0, "cpu_s": 5.0, "wall_s": 6.0, "written_mb": 1.0, '
                     '"returncode": 0}')
    claims = tmp_path / "results" / "logs" / "check_claims.usage.json"   # no wildcards
    claims.write_text(usage.read_text())
    rows = paper_shapes.usage_rows(tmp_path, declared, {"*": 4000, "train": 64000})
    assert [(r["rule"], r["job"], r["declared_mb"], r["slurm_mb"]) for r in rows] == [
        ("check_claims", "", None, 4000), ("train", "x/standard/seed0", 4000, 64000)]


def test_every_rule_a_cluster_runs_has_resources_in_the_slurm_profile():
    rules = set()
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = path.read_text()
        rules |= set(re.findall(r"^rule (\w+):", text, re.MULTILINE))
        rules |= set(re.findall(r"^use rule \w+ as (\w+)", text, re.MULTILINE))
    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    missing = rules - set(profile["set-resources"])
    assert not missing, f"no resources in the SLURM profile for {sorted(missing)}"
    for rule, resources in profile["set-resources"].items():
        assert {"mem_mb", "runtime"} <= set(resources), rule
