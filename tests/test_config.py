"""Tests of the study configuration: schema, defaults, semantic checks, YAML loading and CLI."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
import subprocess
import sys
from pathlib import Path

import pytest

from layerwise.models import BACKBONES, Backbone
from layerwise.train.methods import METHODS, AlignedSettings, Method, setting
from layerwise.study.config import (
    SCHEMA_PATH,
    ConfigError,
    Validator,
    experiment_by_name,
    load_config_file,
    load_schema,
    main,
    merge_configs,
    run_ids,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "config" / "config.yaml"
SMOKE = ROOT / "config" / "smoke.yaml"


@pytest.fixture(scope="module")
def schema() -> dict:
    return load_schema()


@pytest.fixture(scope="module")
def default_config() -> dict:
    return load_config_file(DEFAULT)


def minimal_config() -> dict:
    return {
        "datasets": {"digits": {"source": "sklearn_digits"}},
        "experiments": [{"name": "tiny", "dataset": "digits"}],
    }


# --- valid configurations and defaults ---------------------------------------------------------


def test_default_config_validates(default_config):
    config = validate_config(default_config)
    assert config["experiments"][0]["model"]["depth"] == 12
    assert config["experiments"][0]["train"]["warmup_epochs"] == 2  # values are kept
    assert default_config == load_config_file(DEFAULT)  # the input is not modified


def test_smoke_config_validates_on_top_of_default(default_config):
    smoke = load_config_file(SMOKE)
    merged = validate_config(merge_configs(default_config, smoke))
    assert [e["name"] for e in merged["experiments"]] == [e["name"] for e in smoke["experiments"]]
    exp = experiment_by_name(merged, "vit_digits_smoke")
    assert (exp["model"]["depth"], exp["model"]["width"], exp["model"]["heads"]) == (4, 32, 2)
    assert exp["model"]["patch_size"] == 4 and exp["train"]["epochs"] == 2
    runs = ("standard", "aligned", "multi_exit", "aligned_uniform", "cos_regularized",
            "tuned_lens", "standard_d2")  # methods, then the depth study
    assert [r for r in run_ids(merged) if r[0] == "vit_digits_smoke"] == [
        ("vit_digits_smoke", m, s) for m in runs for s in (0, 1)]


def test_minimal_config_gets_defaults():
    config = validate_config(minimal_config())
    exp = config["experiments"][0]
    assert exp["train"]["label_smoothing"] == 0.0
    assert exp["train"]["milestones"] == [] and exp["train"]["schedule"] == "cosine"
    assert exp["model"] == {"arch": "vit", "depth": 12, "width": 64, "heads": 4,
                            "patch_size": 2, "mlp_ratio": 2.0, "head_input": "final_norm",
                            "pretrained": "", "residual": True, "input_size": None}
    assert exp["aligned"] == {"weights": "linear", "alternate": True}
    assert config["datasets"]["digits"] == {"source": "sklearn_digits", "val_fraction": 0.15,
                                            "test_fraction": 0.25, "split_seed": 0}
    assert config["analysis"]["similarity_split"] == "test"
    assert config["analysis"]["effective_depth_epsilon"] == 0.03
    assert exp["depth_study"] == [] and exp["multi_exit"] == {"weights": "linear",
                                                              "alternate": True}
    assert config["exits"] == {"policies": ["confidence", "entropy", "patience"],
                               "sweep_points": 50, "max_accuracy_drop": 0.01,
                               "timing": {"batch_sizes": [1, 256], "samples": 256,
                                          "warmup": 1, "repeats": 3},
                               "decoding": {"prompts": 4, "prompt_length": 32, "steps": 32},
                               "speculative": {"exit_layers": [], "draft_lengths": [2, 4, 8],
                                               "draft_heads": ["exit", "final"],
                                               "stop_thresholds": [0.05, 0.1, 0.2, 0.3, 0.5],
                                               "prompts": 8, "prompt_length": 32, "steps": 64},
                               "generation": {"prefixes": 8, "prefix_length": 32,
                                              "new_tokens": 64, "top_p": 0.95, "seed": 0,
                                              "coherence_encoder": ""}}
    assert "pretrain" not in exp   # runs start from scratch unless an experiment says so


def test_defaults_fill_partial_nested_objects():
    raw = minimal_config()
    raw["experiments"][0]["train"] = {"epochs": 5}
    config = validate_config(raw)
    assert config["experiments"][0]["train"]["epochs"] == 5
    assert config["experiments"][0]["train"]["batch_size"] == 64
    assert "batch_size" not in raw["experiments"][0]["train"]


def test_run_ids_and_experiment_lookup(default_config):
    config = validate_config(default_config)
    ids = [i for i in run_ids(config) if i[0] == "vit_digits"]
    assert len(ids) == 24 and ids[0] == ("vit_digits", "standard", 0)  # 7 methods + 1 depth
    assert ids[-1] == ("vit_digits", "standard_d6", 2)
    with pytest.raises(ConfigError, match="vit_digits"):
        experiment_by_name(config, "nope")


def test_merge_is_recursive_for_mappings_and_replaces_lists():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    merged = merge_configs(base, {"a": {"y": [3]}})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 1}
    assert base["a"]["y"] == [1, 2]


# --- the schema itself ---------------------------------------------------------------------------


def _property_schemas(node, path=""):
    """Yield (path, schema) of every property (and mapping value / list item schema) in a schema."""
    if not isinstance(node, dict):
        return
    for key, sub in node.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from _property_schemas(sub, f"{path}.{key}")
    for word in ("additionalProperties", "items"):
        if isinstance(node.get(word), dict):
            yield from _property_schemas(node[word], f"{path}[{word}]")


def test_schema_is_valid_draft_2020_12(schema):
    assert schema["$schema"].endswith("2020-12/schema")
    Validator.check_schema(schema)


def test_every_property_has_a_description(schema):
    props = list(_property_schemas(schema))
    assert len(props) > 30
    missing = [path for path, sub in props if not str(sub.get("description", "")).strip()]
    assert not missing, f"properties without a description: {missing}"


def test_every_default_validates_against_its_property(schema):
    with_default = [(path, sub) for path, sub in _property_schemas(schema) if "default" in sub]
    assert len(with_default) > 20
    for path, sub in with_default:
        errors = list(Validator(sub).iter_errors(sub["default"]))
        assert not errors, f"default of {path} is invalid: {errors[0].message}"


def test_required_keys_have_no_default(schema):
    for _path, sub in _property_schemas(schema):
        for key in sub.get("required", []):
            assert "default" not in sub["properties"][key]


def test_schema_can_be_loaded_from_an_explicit_path(tmp_path, schema):
    copy_path = tmp_path / "schema.yaml"
    copy_path.write_text((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert load_schema(copy_path) == schema


def _model_properties(schema: dict) -> dict:
    return schema["properties"]["experiments"]["items"]["properties"]["model"]["properties"]


def test_the_schema_has_every_backbones_own_keys_described(schema, capsys):
    model = _model_properties(schema)
    for record in BACKBONES.values():
        for key, fragment in record.keys.items():
            assert model[key] == fragment and fragment["description"], (record.name, key)
    assert main(["--schema"]) == 0  # what a user reads: schema.yaml and the records' keys
    assert "kv_heads:" in capsys.readouterr().out


# A backbone added by its record alone: an MLP wrapper, with a `model` key of its own.
GAIN = {"description": "toy only: a gain.", "type": "number", "minimum": 0, "default": 1.0}


@pytest.fixture
def toy_backbone(monkeypatch):
    record = Backbone("toy", "layerwise.models.mlp:MLPClassifier", inputs="image",
                      transformer=False, pretrained=False, keys={"toy_gain": GAIN})
    monkeypatch.setitem(BACKBONES, "toy", record)
    return record


def _with_model(**model) -> dict:
    config = minimal_config()
    config["experiments"][0]["model"] = model
    return config


def test_a_backbones_own_key_needs_only_its_record(toy_backbone):
    assert "toy_gain" not in SCHEMA_PATH.read_text()
    schema = load_schema()
    assert _model_properties(schema)["toy_gain"] == GAIN
    toy = validate_config(_with_model(arch="toy", toy_gain=2.5), schema)["experiments"][0]["model"]
    assert toy["toy_gain"] == 2.5 and toy["residual"] is True  # others' keys at their defaults
    vit = validate_config(_with_model(arch="vit"), schema)["experiments"][0]["model"]
    assert vit["toy_gain"] == 1.0  # a default is filled on every backbone, as residual's is
    with pytest.raises(ConfigError, match=r"^config key experiments\[0\]\.model\.toy_gain: 2\.5 is "
                                          r"not allowed; expected 1\.0: only toy takes toy_gain$"):
        validate_config(_with_model(arch="vit", toy_gain=2.5), schema)


@pytest.mark.parametrize("keys, problem", [
    ({"depth": GAIN}, "both in"),                                    # a shared key
    ({"dropout": {**GAIN, "description": "toy: other."}}, "unlike"),  # another meaning
])
def test_a_backbone_key_has_one_description(monkeypatch, toy_backbone, keys, problem):
    monkeypatch.setitem(BACKBONES, "toy", Backbone("toy", toy_backbone.wrapper, "image",
                                                   False, False, keys=keys))
    with pytest.raises(ValueError, match=problem):
        load_schema()


# A method added by its record alone: settings of its own, a section built from them.
@dataclass(frozen=True)
class ToySettings:
    """toy only: the toy method's settings."""
    gain: float = setting(1.0, "toy only: a gain.", type="number", minimum=0)


@pytest.fixture
def toy_method(monkeypatch):
    record = Method("toy", "toy", section="toy", settings_class=ToySettings)
    monkeypatch.setitem(METHODS, "toy", record)
    return record


def _with_toy(**section) -> dict:
    config = minimal_config()
    config["experiments"][0].update(methods=["standard", "toy"], **section)
    return config


def test_a_methods_own_settings_need_only_its_record(toy_method):
    from layerwise.study.plan import StudyPlan

    schema = load_schema()
    assert "toy" not in SCHEMA_PATH.read_text()
    assert schema["properties"]["experiments"]["items"]["properties"]["toy"] == {
        "description": "toy only: the toy method's settings.", "type": "object",
        "additionalProperties": False, "default": {},
        "properties": {"gain": {"description": "toy only: a gain.", "type": "number",
                                "minimum": 0, "default": 1.0}}}
    config = validate_config(_with_toy(toy={"gain": 2.5}), schema)
    run = StudyPlan(config).run_spec("tiny", "toy", 0)
    assert run["toy"] == {"gain": 2.5} and "toy" not in StudyPlan(config).run_spec(
        "tiny", "standard", 0)
    assert toy_method.parse_settings(run["toy"]) == ToySettings(gain=2.5)
    assert validate_config(_with_toy(), schema)["experiments"][0]["toy"] == {"gain": 1.0}
    with pytest.raises(ConfigError, match=r"^config key experiments\[0\]\.toy\.gain: -1"):
        validate_config(_with_toy(toy={"gain": -1}), schema)


def test_methods_sharing_a_section_share_its_settings_class(monkeypatch, toy_method):
    monkeypatch.setitem(METHODS, "toy_too", Method("toy_too", "toy too", section="toy",
                                                   settings_class=AlignedSettings))
    with pytest.raises(ValueError, match="another settings class"):
        load_schema()


# --- malformed configurations --------------------------------------------------------------------


def _exp(config):
    return config["experiments"][0]


def _set(*path, value):
    """A mutation that sets config[path...] = value."""

    def mutate(config):
        node = config
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _delete(*path):
    def mutate(config):
        node = config
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def _duplicate_experiment(config):
    config["experiments"].append(copy.deepcopy(_exp(config)))


def _rename_dataset(new):
    def mutate(config):
        config["datasets"][new] = config["datasets"].pop("digits")
        _exp(config)["dataset"] = new

    return mutate


def _set_fractions(val, test):
    def mutate(config):
        config["datasets"]["digits"].update(val_fraction=val, test_fraction=test)

    return mutate


E0 = ("experiments", 0)
MODEL, TRAIN = E0 + ("model",), E0 + ("train",)
M, T = "experiments[0].model.", "experiments[0].train."

# (id, mutation, key path named in the message, hint at the allowed values)
MALFORMED = [
    ("depth-string", _set(*MODEL, "depth", value="12"), M + "depth", "an integer >= 1"),
    ("epochs-float", _set(*TRAIN, "epochs", value=2.5), T + "epochs", "an integer >= 1"),
    ("epochs-integral-float", _set(*TRAIN, "epochs", value=40.0), T + "epochs", "an integer"),
    ("heads-bool", _set(*MODEL, "heads", value=True), M + "heads", "an integer >= 1"),
    ("model-list", _set(*E0, "model", value=[1, 2]), "experiments[0].model", "a mapping"),
    ("unknown-top-level", _set("extra", value=1), "config key extra",
     "allowed keys: analysis, "),
    ("unknown-nested", _set(*TRAIN, "learning_rate", value=0.1), T + "learning_rate", "allowed keys:"),
    ("unknown-dataset-key", _set("datasets", "digits", "path", value="x"), "datasets.digits.path",
     "allowed keys: generated, glue, image_size, max_samples, root, source, split_seed, test_fraction, text, val_fraction"),
    ("depth-zero", _set(*MODEL, "depth", value=0), M + "depth", ">= 1"),
    ("width-negative", _set(*MODEL, "width", value=-1), M + "width", ">= 1"),
    ("batch-size-zero", _set(*TRAIN, "batch_size", value=0), T + "batch_size", ">= 1"),
    ("epochs-zero", _set(*TRAIN, "epochs", value=0), T + "epochs", ">= 1"),
    ("heads-zero", _set(*MODEL, "heads", value=0), M + "heads", "an integer >= 1"),
    ("width-not-divisible", _set(*MODEL, "width", value=30), M + "width", "multiple of heads (4)"),
    ("methods-empty", _set(*E0, "methods", value=[]), "experiments[0].methods", "a non-empty list"),
    ("seeds-empty", _set(*E0, "seeds", value=[]), "experiments[0].seeds", "a non-empty list"),
    ("seeds-duplicate", _set(*E0, "seeds", value=[0, 0]), "experiments[0].seeds", "without duplicates"),
    ("seed-negative", _set(*E0, "seeds", value=[-1]), "experiments[0].seeds[0]", ">= 0"),
    ("method-unknown", _set(*E0, "methods", value=["standard", "early_exit"]), "experiments[0].methods[1]",
     "one of: standard, aligned"),
    ("source-unknown", _set("datasets", "digits", "source", value="svhn"), "datasets.digits.source",
     "one of: sklearn_digits"),
    ("source-missing", _delete("datasets", "digits", "source"), "datasets.digits", "'source'"),
    ("arch-unknown", _set(*MODEL, "arch", value="resnet"), M + "arch", "one of: vit"),
    ("dataset-undefined", _set(*E0, "dataset", value="cifar"), "experiments[0].dataset",
     "one of the datasets: digits"),
    ("name-missing", _delete(*E0, "name"), "experiments[0]", "'name'"),
    ("experiment-names-duplicate", _duplicate_experiment, ".name: 'vit_digits'",
     "unique among experiments (also used by experiments[0])"),
    ("val-fraction-zero", _set_fractions(0, 0.25), "datasets.digits.val_fraction", "> 0 and < 1"),
    ("test-fraction-one", _set_fractions(0.15, 1), "datasets.digits.test_fraction", "> 0 and < 1"),
    ("val-fraction-negative", _set_fractions(-0.1, 0.25), "datasets.digits.val_fraction", "> 0 and < 1"),
    ("fractions-sum-one", _set_fractions(0.5, 0.5), "datasets.digits.test_fraction",
     "val_fraction + test_fraction < 1"),
    ("fractions-sum-over-one", _set_fractions(0.6, 0.5), "datasets.digits.test_fraction", "< 1"),
    ("lr-zero", _set(*TRAIN, "lr", value=0), T + "lr", "a number > 0"),
    ("lr-negative", _set(*TRAIN, "lr", value=-1e-3), T + "lr", "a number > 0"),
    ("gamma-zero", _set(*TRAIN, "gamma", value=0), T + "gamma", "a number > 0 and <= 1"),
    ("label-smoothing-one", _set(*TRAIN, "label_smoothing", value=1.0), T + "label_smoothing",
     ">= 0 and < 1"),
    ("schedule-unknown", _set(*TRAIN, "schedule", value="step"), T + "schedule",
     "one of: cosine, linear, multistep, constant"),
    ("head-input-unknown", _set(*MODEL, "head_input", value="cls"), M + "head_input",
     "one of: final_norm, raw"),
    ("weights-unknown", _set(*E0, "aligned", "weights", value="geometric"), "experiments[0].aligned.weights",
     "one of: linear, uniform"),
    ("alternate-string", _set(*E0, "aligned", "alternate", value="yes"), "experiments[0].aligned.alternate",
     "true or false"),
    ("similarity-split-unknown", _set("analysis", "similarity_split", value="t"), "analysis.similarity_split",
     "one of: val, test"),
    ("warmup-equals-epochs", _set(*TRAIN, "warmup_epochs", value=10), T + "warmup_epochs",
     "< epochs (10)"),
    ("milestones-not-increasing", _set(*TRAIN, "milestones", value=[20, 10]), T + "milestones",
     "strictly increasing"),
    ("milestones-repeated", _set(*TRAIN, "milestones", value=[10, 10]), T + "milestones",
     "strictly increasing"),
    ("milestone-past-epochs", _set(*TRAIN, "milestones", value=[8, 10]), T + "milestones",
     "< epochs (10)"),
    ("patch-size-not-dividing-8", _set(*MODEL, "patch_size", value=3), M + "patch_size",
     "one of 1, 2, 4, 8"),
    ("experiment-name-slash", _set(*E0, "name", value="a/b"), "experiments[0].name", "a name matching"),
    ("experiment-name-dotdot", _set(*E0, "name", value=".."), "experiments[0].name", "no path separators"),
    ("dataset-name-separator", _rename_dataset("dig/its"), "config key datasets:", "a name matching"),
    ("datasets-empty", _set("datasets", value={}), "config key datasets:", "at least one entry"),
    ("experiments-empty", _set("experiments", value=[]), "config key experiments:", "a non-empty list"),
    ("depth-study-not-shallower", _set(*E0, "depth_study", value=[6, 12]), "experiments[0].depth_study",
     "depths below model.depth (12)"),
    ("depth-study-zero", _set(*E0, "depth_study", value=[0]), "experiments[0].depth_study[0]", ">= 1"),
    ("depth-study-repeated", _set(*E0, "depth_study", value=[6, 6]), "experiments[0].depth_study",
     "without duplicates"),
    ("multi-exit-weights-unknown", _set(*E0, "multi_exit", "weights", value="exp"),
     "experiments[0].multi_exit.weights", "one of: linear, uniform"),
    ("exit-policy-unknown", _set("exits", "policies", value=["confidence", "budget"]),
     "exits.policies[1]", "one of: confidence, entropy, patience"),
    ("exit-policies-empty", _set("exits", "policies", value=[]), "exits.policies", "a non-empty list"),
    ("sweep-points-one", _set("exits", "sweep_points", value=1), "exits.sweep_points", ">= 2"),
    ("max-drop-over-one", _set("exits", "max_accuracy_drop", value=1.5), "exits.max_accuracy_drop",
     "<= 1"),
    ("timing-batch-zero", _set("exits", "timing", "batch_sizes", value=[0]),
     "exits.timing.batch_sizes[0]", ">= 1"),
    ("timing-unknown-key", _set("exits", "timing", "device", value="cpu"), "exits.timing.device",
     "allowed keys: batch_sizes, repeats, samples, warmup"),
    ("epsilon-zero", _set("analysis", "effective_depth_epsilon", value=0),
     "analysis.effective_depth_epsilon", "> 0 and < 1"),
]


@pytest.mark.parametrize("mutate, key, hint", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_config_is_rejected(default_config, mutate, key, hint):
    config = copy.deepcopy(default_config)
    mutate(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message and message.startswith("config ")
    assert key in message, message
    assert hint in message, message


# --- text datasets and BERT ----------------------------------------------------------------------


def text_config() -> dict:
    return {
        "datasets": {"rt": {"source": "rotten_tomatoes"}, "digits": {"source": "sklearn_digits"},
                     "mrpc": {"source": "glue", "glue": {"task": "mrpc"}}},
        "experiments": [{"name": "bert_rt", "dataset": "rt", "model": {"arch": "bert"}},
                        {"name": "vit", "dataset": "digits"}],
    }


def test_text_sources_get_text_defaults_and_others_none():
    config = validate_config(text_config())
    assert config["datasets"]["rt"]["text"] == {"max_length": 128, "tokenizer": "wordpiece",
                                                "vocab_size": 8000, "lowercase": True}
    assert config["datasets"]["mrpc"]["glue"] == {"task": "mrpc", "repository": "nyu-mll/glue"}
    assert "text" not in config["datasets"]["digits"]
    assert config["experiments"][0]["model"]["pretrained"] == ""


def test_the_paper_glue_setup_validates():
    tasks = ("sst2", "mrpc", "qnli", "mnli", "rte", "qqp")
    text = {"max_length": 256, "tokenizer": "bert-base-uncased"}
    config = validate_config({
        "datasets": {t: {"source": "glue", "glue": {"task": t}, "text": text} for t in tasks},
        "experiments": [{"name": f"bert_{t}", "dataset": t,
                         "model": {"arch": "bert", "pretrained": "bert-base-uncased"},
                         "train": {"epochs": 3, "batch_size": 32, "lr": 2.0e-5}} for t in tasks],
    })
    assert len(config["experiments"]) == 6


TEXT_MALFORMED = [
    ("glue-task-unknown", _set("datasets", "mrpc", "glue", "task", value="cola"),
     "datasets.mrpc.glue.task", "one of: sst2, mrpc, qnli, mnli, rte, qqp"),
    ("max-length-zero", _set("datasets", "rt", "text", value={"max_length": 0}),
     "datasets.rt.text.max_length", "an integer >= 8"),
    ("vocab-size-tiny", _set("datasets", "rt", "text", value={"vocab_size": 10}),
     "datasets.rt.text.vocab_size", ">= 100"),
    ("text-for-images", _set("datasets", "digits", "text", value={}), "datasets.digits.text",
     "no text for source sklearn_digits (only for rotten_tomatoes, glue, running_text, "
     "wikitext)"),
    ("glue-task-missing", _delete("datasets", "mrpc", "glue"), "datasets.mrpc",
     "required key 'glue' is missing for source glue"),
    ("glue-for-other-source", _set("datasets", "rt", "glue", value={"task": "sst2"}),
     "datasets.rt.glue", "no glue for source rotten_tomatoes (only for glue)"),
    ("bert-on-images", _set("experiments", 1, "model", value={"arch": "bert"}),
     "experiments[1].model.arch", "vit, mlp or clip, for images dataset 'digits'"),
    ("vit-on-text", _set("experiments", 0, "model", value={"arch": "vit"}),
     "experiments[0].model.arch", "bert, for text dataset 'rt'"),
    ("checkpoint-without-its-tokenizer",
     _set("experiments", 0, "model", value={"arch": "bert", "pretrained": "bert-base-uncased"}),
     "experiments[0].model.pretrained", "the checkpoint whose tokenizer dataset 'rt' uses"),
    ("checkpoint-for-mlp",
     _set("experiments", 1, "model", value={"arch": "mlp", "pretrained": "x"}),
     "experiments[1].model.pretrained", "load a checkpoint"),
    ("dropout-for-vit", _set("experiments", 1, "model", value={"arch": "vit", "dropout": 0.0}),
     "experiments[1].model.dropout", "unset: only bert, gpt2 and llama take dropout"),
    ("attention-for-mlp", _set("experiments", 1, "model", value={"arch": "mlp", "attention": "eager"}),
     "experiments[1].model.attention", "unset: only bert, gpt2 and llama take attention"),
    ("input-size-for-mlp", _set("experiments", 1, "model", value={"arch": "mlp", "input_size": 32}),
     "experiments[1].model.input_size", "null: only vit takes input_size"),
    ("residual-for-vit", _set("experiments", 1, "model", value={"arch": "vit", "residual": False}),
     "experiments[1].model.residual", "true: only mlp takes residual"),
    ("attention-unknown", _set("experiments", 0, "model", value={"arch": "bert", "attention": "flash"}),
     "experiments[0].model.attention", "one of: eager, sdpa"),
    ("dropout-of-one", _set("experiments", 0, "model", value={"arch": "bert", "dropout": 1.0}),
     "experiments[0].model.dropout", "< 1"),
    ("group-by-length-for-vit",
     _set("experiments", 1, "train", value={"group_by_length": True}),
     "experiments[1].train.group_by_length", "only a text classifier's batches are grouped"),
    ("bert-width-not-divisible",
     _set("experiments", 0, "model", value={"arch": "bert", "width": 30, "heads": 4}),
     "experiments[0].model.width", "a multiple of heads (4)"),
]


@pytest.mark.parametrize("mutate, key, hint", [m[1:] for m in TEXT_MALFORMED],
                         ids=[m[0] for m in TEXT_MALFORMED])
def test_malformed_text_config_is_rejected(mutate, key, hint):
    config = text_config()
    mutate(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message and message.startswith("config ")
    assert key in message and hint in message, message


def test_error_message_format(default_config):
    config = copy.deepcopy(default_config)
    config["experiments"][0]["model"]["heads"] = 0
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    expected = "config key experiments[0].model.heads: 0 is not allowed; expected an integer >= 1"
    assert str(info.value) == expected


def test_top_level_that_is_not_a_mapping_is_rejected():
    with pytest.raises(ConfigError, match="config top level: .*expected a mapping"):
        validate_config([1, 2])


# --- YAML files ----------------------------------------------------------------------------------


def _write(tmp_path, text, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, expected",
    [
        ("datasets:\n  digits: {source: sklearn_digits}\n  digits: {source: sklearn_digits}\n",
         r"line 3, column 3: .*duplicate key 'digits'"),
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", r"duplicate key 'b'"),
        ("datasets:\n  digits: {source: [unclosed\n", r"line \d+, column \d+: invalid YAML"),
        ("datasets:\n\tdigits: 1\n", r"invalid YAML"),
        ("- 1\n- 2\n", r"top level is list; expected a mapping"),
        ("just a string\n", r"top level is str; expected a mapping"),
        ("", r"top level is NoneType; expected a mapping"),
    ],
    ids=["duplicate-dataset", "duplicate-nested", "syntax-error", "tab-indent", "top-level-list",
         "top-level-scalar", "empty-file"],
)
def test_malformed_yaml_is_rejected(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config_file(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = _write(tmp_path, "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert load_config_file(path)["other"] == {"x": 1, "y": 3}


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(tmp_path / "absent.yaml")


# --- command line --------------------------------------------------------------------------------


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "layerwise.study.config", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def test_cli_accepts_the_shipped_configs():
    result = _cli(DEFAULT, SMOKE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config OK"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("experiments:\n  - {name: x, dataset: digits, model: {depth: 0}}\n",
         "experiments[0].model.depth: 0 is not allowed; expected an integer >= 1"),
        ("datasets: {digits: {source: sklearn_digits}}\ndatasets: {}\n", "duplicate key 'datasets'"),
        ("analysis: [unclosed\n", "invalid YAML"),
    ],
    ids=["schema", "duplicate-key", "syntax"],
)
def test_cli_reports_one_line_and_exits_1(tmp_path, text, expected):
    result = _cli(DEFAULT, _write(tmp_path, text))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr


def test_module_imports_neither_torch_nor_snakemake():
    code = ("import sys, layerwise.study.config; "
            "print(sorted(m for m in ('torch', 'snakemake') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
