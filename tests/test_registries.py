"""Every record of every registry, checked the way timm's tests check every registered model.

The tests are parametrized over the registries themselves (BACKBONES, METHODS, SOURCES,
MEASURES, CLAIMS), so that a new record gets these checks without a line here:

- a backbone: its spec survives the config check with the defaults filled in and builds; block-
  by-block stepping gives (L+1, B, d) representations ((L+1, B, T, d) for a language model); the
  model's own forward is the last layer through the shared head, whatever `head_input` says;
  exit heads answer for layers 1..L-1 only; the library's own forward gives the same output;
- a training method: one step on a tiny model of every backbone is finite, reaches every
  parameter (exit heads only where the record has them), and reads every layer where the record
  says it trains every layer; its settings section is in the schema, documented, and carried to
  training;
- a dataset source: its preparer imports and takes (spec, out_dir, cache_dir), its kind is one a
  backbone reads, and a minimal experiment on it passes the config check (any settings it
  requires being documented in the schema);
- a similarity measure: a finite symmetric matrix with ones on its diagonal, equal to its
  streamed form where it has one;
- a claim: its threshold is a documented key of the schema's `claims` with a default, and the
  plan gives its scope a subject.

Exit policies are checked policy by policy in tests/test_policies.py. The tiny inputs of each
kind come from the backbone tests (test_models, test_bert, test_gpt2).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

import test_bert
import test_clip
import test_gpt2
import test_models
from conftest import ROOT
from layerwise.claims.evaluation import NO_SUBJECT
from layerwise.claims.registry import ABLATION, CLAIMS, EXPERIMENT, SCOPES
from layerwise.data import IGNORE
from layerwise.data.sources import SOURCES
from layerwise.errors import ConfigError
from layerwise.models import BACKBONES, build_model
from layerwise.similarity.measures import MEASURES
from layerwise.similarity.streaming import StreamingSimilarity
from layerwise.study.config import load_config_file, load_schema, validate_config
from layerwise.study.plan import StudyPlan
from layerwise.train.loop import TrainSpec, training_loss
from layerwise.train.methods import METHODS, layer_weights
from layerwise.train.runs import build_run_model

SCHEMA = load_schema()
DATASET_SCHEMA = SCHEMA["properties"]["datasets"]["additionalProperties"]
EXPERIMENT_SCHEMA = SCHEMA["properties"]["experiments"]["items"]
MODEL_SCHEMA = EXPERIMENT_SCHEMA["properties"]["model"]

# Small enough for a fraction of a second per case; every key is one of the schema's `model`.
TINY = dict(depth=3, width=16, heads=2, patch_size=2, mlp_ratio=2.0)


# --- a tiny prepared dataset of each kind of input ---------------------------------------------
def image_batch(info):
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(5, *info["input_shape"], generator=generator),
            torch.randint(info["num_classes"], (5,), generator=generator))


def text_batch(info):
    x = test_bert.batch([16, 5, 9, 3])
    return x, torch.arange(len(x)) % info["num_classes"]


def lm_batch(info):
    """Right-padded token blocks whose targets are the next tokens, IGNORE where there is none."""
    ids = test_gpt2.tokens()
    ids[1, 9:] = info["pad_id"]
    targets = torch.cat([ids[:, 1:], torch.full((len(ids), 1), IGNORE)], dim=1)
    targets[1, 8:] = IGNORE
    return ids, targets


# an image dataset's description as data preparation writes it: CLIP reads its class names
# (its prompts) and the normalization it undoes
IMAGE_INFO = {**test_models.INFO, "classes": [f"class {k}" for k in range(10)],
              "normalization": {"mean": [0.5], "std": [0.25]}}
# kind of input (a backbone's `inputs`, a source's `kind`) -> (its info.json, a batch of it)
KINDS = {"image": (IMAGE_INFO, image_batch), "text": (test_bert.INFO, text_batch),
         "lm": (test_gpt2.INFO, lm_batch)}

# A backbone built only from a checkpoint (`from_scratch` False) gets a tiny one of TINY's depth
# and width, written once into a folder removed when the tests end.
CHECKPOINT_FOLDER = tempfile.TemporaryDirectory(prefix="tiny-checkpoints-")
CHECKPOINTS = {"clip": lambda out: test_clip.save_tiny_checkpoint(
    out, vision_layers=TINY["depth"], projection_dim=TINY["width"])}


@cache
def checkpoint(arch: str) -> dict:
    """The `model.pretrained` a backbone needs: {} for one built at random."""
    if BACKBONES[arch].from_scratch:
        return {}
    assert arch in CHECKPOINTS, f"backbone {arch} is built only from a checkpoint: give " \
                                "CHECKPOINTS a tiny one"
    folder = Path(CHECKPOINT_FOLDER.name) / arch
    folder.mkdir()
    return {"pretrained": CHECKPOINTS[arch](folder)}


def data_of(arch: str) -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
    kind = BACKBONES[arch].inputs
    assert kind in KINDS, f"backbone {arch} reads {kind!r} inputs: give KINDS a tiny dataset"
    info, batch = KINDS[kind]
    return info, batch(info)


# --- configs -----------------------------------------------------------------------------------
def example(schema: dict):
    """A value the schema allows: its default, its first allowed value, or for a mapping one
    with its required keys."""
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "object":
        return {key: example(schema["properties"][key]) for key in schema.get("required", [])}
    if schema.get("type") == "string":
        return "data"
    if schema.get("type") == "integer":
        return max(schema.get("minimum", 1), 8)
    raise AssertionError(f"no example value for {schema}")


def minimal_config(source: str, arch: str, **experiment) -> dict:
    """One dataset of `source` (with any settings it requires, the schema's examples) and one
    experiment of a tiny `arch` on it; every other key left to the defaults."""
    dataset = {"source": source}
    config = {"datasets": {"data": dataset},   # every source's defaults fit the exits' own
              "experiments": [{"name": "tiny", "dataset": "data",
                               "model": {"arch": arch, **TINY, **checkpoint(arch)},
                               **experiment}]}
    for _ in range(len(DATASET_SCHEMA["properties"])):
        try:
            return validate_config(config, SCHEMA)
        except ConfigError as error:
            required = re.search(rf"required key '(\w+)' is missing for source {source}",
                                 str(error))
            if required is None:
                raise
            key = required.group(1)
            documented = DATASET_SCHEMA["properties"].get(key, {}).get("description", "")
            assert documented.strip(), f"source {source} requires key {key}, which the " \
                                       f"schema does not document"
            dataset[key] = example(DATASET_SCHEMA["properties"][key])
    raise AssertionError(f"source {source}: still missing keys after {dataset}")


def reads(kind: str) -> str:
    """The first backbone that reads inputs of `kind`."""
    return next(name for name, b in BACKBONES.items() if b.inputs == kind)


@cache
def validated(arch: str, methods: tuple[str, ...] | None = None) -> dict:
    """The validated config of a tiny `arch` on the first source of its kind that needs no hub,
    training `methods` (None: the default ones); read only, copy before changing."""
    kind = BACKBONES[arch].inputs
    source = next(name for name, s in SOURCES.items() if s.kind == kind and not s.from_hub)
    return minimal_config(source, arch, **({} if methods is None else {"methods": list(methods)}))


def experiment_of(arch: str, *methods: str) -> dict:
    """An experiment training `methods`, and the runs a post-hoc one among them is fitted on."""
    bases = [METHODS[m].post_hoc for m in methods if METHODS[m].post_hoc]
    methods = tuple(dict.fromkeys([*bases, *methods]))
    return copy.deepcopy(validated(arch, methods or None)["experiments"][0])


def make(arch: str, head_input: str | None = None, seed: int = 0):
    """A tiny `arch` from its validated spec, in evaluation mode (no dropout)."""
    spec = experiment_of(arch)["model"]
    if head_input is not None:
        spec["head_input"] = head_input
    torch.manual_seed(seed)
    return build_model(spec, data_of(arch)[0]).eval()


# --- backbones ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", BACKBONES)
def test_a_backbone_spec_survives_the_config_check_with_its_defaults(arch):
    record = BACKBONES[arch]
    config = validated(arch)
    model = config["experiments"][0]["model"]
    given = {"arch": arch, **TINY}
    assert {key: model[key] for key in given} == given
    defaults = {k for k, sub in MODEL_SCHEMA["properties"].items() if "default" in sub}
    assert defaults <= set(model), f"defaults not filled: {defaults - set(model)}"
    assert validate_config(config, SCHEMA) == config  # filled once, stable
    assert all(MODEL_SCHEMA["properties"][key] == sub for key, sub in record.keys.items())
    assert record.inputs in {source.kind for source in SOURCES.values()}
    built = make(arch)
    assert (built.num_layers, built.width) == (TINY["depth"], TINY["width"])


@pytest.mark.parametrize("head_input", MODEL_SCHEMA["properties"]["head_input"]["enum"])
@pytest.mark.parametrize("arch", BACKBONES)
def test_stepping_gives_every_layer_and_the_last_through_the_shared_head_is_the_forward(
        arch, head_input):
    model = make(arch, head_input)
    x, _ = data_of(arch)[1]
    with torch.no_grad():
        reps = model.layer_representations(x)
        out = model(x)
        logits = model.layer_logits(reps)
    tokens = (x.shape[1],) if BACKBONES[arch].inputs == "lm" else ()  # every token's state
    assert reps.shape == (model.num_layers + 1, len(x), *tokens, model.width)
    assert logits.shape == (model.num_layers + 1, *out.shape)
    torch.testing.assert_close(model.classify(reps[-1], model.num_layers), out,
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(logits[-1], out, rtol=0, atol=1e-6)
    for layer in range(model.num_layers + 1):  # no exit heads: every exit is the shared head
        torch.testing.assert_close(model.exit_logits(reps[layer], layer), logits[layer])


@pytest.mark.parametrize("arch", BACKBONES)
def test_exit_heads_answer_for_layers_1_to_L_minus_1_only(arch):
    model = make(arch)
    info, (x, _) = data_of(arch)
    with torch.no_grad():
        reps = model.layer_representations(x)
        shared = model.layer_logits(reps)
        model.add_exit_heads(info["num_classes"])
        assert len(model.exit_heads) == model.num_layers - 1
        exits = model.layer_exit_logits(reps)
        assert exits.shape == shared.shape
        for layer in (0, model.num_layers):  # the embedding and the last layer: the shared head
            torch.testing.assert_close(exits[layer], shared[layer])
        for layer in range(1, model.num_layers):
            own = model.exit_heads[layer - 1](reps[layer])
            torch.testing.assert_close(model.exit_logits(reps[layer], layer), own)
            torch.testing.assert_close(exits[layer], own)
            assert not torch.allclose(own, shared[layer]), layer
        torch.testing.assert_close(exits[-1], model(x))


# How the library a backbone wraps computes the model's output on the same inputs; None for a
# backbone that wraps no library model.
LIBRARY_FORWARD = {
    "vit": lambda model, x: model.vit(x),                             # timm
    "bert": lambda model, x: test_bert.reference(model, x).logits,    # transformers, its mask
    "gpt2": lambda model, x: model.model(x).logits,                   # transformers
    "llama": lambda model, x: model.model(x).logits,                  # transformers
    "mlp": None,  # its own modules: tests/test_models.py checks it against its definition
    "clip": lambda model, x: model.clip(pixel_values=model.pixels(x), input_ids=model.prompt_ids,
                                        attention_mask=model.prompt_mask).logits_per_image,
}
# CLIP keeps its prompts' text features in float32 (a buffer computed when it is built), which
# its zero-shot head reads in double precision too
LIBRARY_TOLERANCE = {"clip": 1e-5}


def test_every_backbone_says_how_its_library_computes_its_output():
    assert set(LIBRARY_FORWARD) == set(BACKBONES), \
        "say in LIBRARY_FORWARD how each backbone's library computes its output (None: none)"


@pytest.mark.parametrize("arch", [name for name in BACKBONES if LIBRARY_FORWARD.get(name)])
def test_stepping_reproduces_the_librarys_own_forward(arch):
    model = make(arch).double()
    x, _ = data_of(arch)[1]
    if x.is_floating_point():
        x = x.double()
    with torch.no_grad():
        tolerance = LIBRARY_TOLERANCE.get(arch, 1e-12)
        torch.testing.assert_close(model(x), LIBRARY_FORWARD[arch](model, x),
                                   rtol=tolerance, atol=tolerance)


# --- training methods --------------------------------------------------------------------------
def capture_representations(model) -> list[torch.Tensor]:
    """Keep the gradient of every `layer_representations` the loss asks for: it reaches the
    representations of a layer only through what reads that layer directly (an exit, a penalty),
    never through the blocks after it."""
    captured, own = [], model.layer_representations

    def layer_representations(inputs):
        reps = own(inputs)
        reps.retain_grad()
        captured.append(reps)
        return reps

    model.layer_representations = layer_representations
    return captured


@pytest.mark.parametrize("arch", BACKBONES)
# a checkpoint analysed as loaded takes no step (tests/test_analysis_only.py)
@pytest.mark.parametrize("name", [name for name, m in METHODS.items() if not m.as_loaded])
def test_one_training_step_of_a_method_is_finite_and_reaches_what_it_trains(name, arch):
    record = METHODS[name]
    experiment = experiment_of(arch, name)
    info, (x, y) = data_of(arch)
    torch.manual_seed(0)
    model = build_run_model({"method": name, "model": experiment["model"]}, info).train()
    assert (model.exit_heads is not None) == record.exit_heads
    assert (model.lens is not None) == record.lens
    if record.post_hoc is not None:
        return one_fitting_step_moves_only_what_it_adds(model, x)
    spec = TrainSpec.from_config(name, 0, experiment["train"], record.settings(experiment))
    weights = layer_weights(model.num_layers, spec.weighting)
    captured = capture_representations(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    # step 1: the method's own loss also where its settings alternate (step 0 is then plain)
    loss, logits = training_loss(model, x, y, spec, step=1, weights=weights)
    assert loss.ndim == 0 and torch.isfinite(loss), loss
    assert logits.shape == (*y.shape, info["num_classes"])
    loss.backward()
    grads = dict(model.named_parameters())
    # DistributedDataParallel needs a gradient for every parameter at every step; the loop lets
    # it look for unused ones only where there are exit heads (skipped by a plain step).
    # (a frozen part, such as CLIP's text tower, is skipped by DistributedDataParallel)
    trained = {n: p for n, p in grads.items() if p.requires_grad}
    unreached = [n for n, p in trained.items() if p.grad is None]
    assert not unreached, f"parameters without a gradient: {unreached}"
    infinite = [n for n, p in trained.items() if not torch.isfinite(p.grad).all()]
    assert not infinite, f"non-finite gradients: {infinite}"
    for index, head in enumerate(model.exit_heads or ()):
        assert any(p.grad.abs().sum() > 0 for p in head.parameters()), f"exit head {index + 1}"
    if record.trains_layers:  # its loss reads every layer through an exit
        assert captured, f"{name} trains every layer but never reads them"
        reached = captured[-1].grad.flatten(1).abs().sum(dim=1)
        assert (reached[1:] > 0).all(), f"layers whose exit the loss does not read: {reached}"
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def one_fitting_step_moves_only_what_it_adds(model, x):
    """A post-hoc method (the tuned lens) trains no backbone: one step of its fit on the
    model's own states gives a finite loss and changes its lens alone."""
    from layerwise.train.lens import fit_lens_on_states

    with torch.no_grad():
        reps = model.eval().layer_representations(x)
    if reps.dim() == 4:  # a language model's positions are its samples
        reps = reps.flatten(1, 2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log = fit_lens_on_states(model, reps, steps=1, lr=1e-2)
    assert np.isfinite(log[-1]["kl"])
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("lens.") for n in changed), changed


@pytest.mark.parametrize("name", METHODS)
def test_a_methods_settings_are_a_documented_section_carried_to_training(name):
    record = METHODS[name]
    assert record.name == name and record.label
    section = EXPERIMENT_SCHEMA["properties"].get(record.section)
    assert record.section is None or section is not None, \
        f"the schema's experiment has no section {record.section!r}"
    if record.section is None:
        assert not record.overrides
        return
    experiment = experiment_of(reads("image"), name)  # an experiment that trains it validates
    settings = record.settings(experiment)
    assert section.get("description", "").strip() and section["type"] == "object"
    for key, sub in section["properties"].items():
        assert sub.get("description", "").strip() and "default" in sub, (record.section, key)
    assert set(record.overrides) <= set(section["properties"]), record.overrides
    if record.post_hoc is not None:  # its run spec carries them to its fit
        assert StudyPlan(validated(reads("image"), (record.post_hoc, name))).run_spec(
            "tiny", name, 0)[name] == settings
        return
    carried = TrainSpec.from_config(name, 0, experiment["train"], settings).settings
    for key, value in settings.items():
        assert getattr(carried, key) == value, f"{record.section}.{key} does not reach training"


# --- dataset sources ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", SOURCES)
def test_a_sources_own_keys_are_documented_and_checked(name):
    source = SOURCES[name]
    assert set(source.required) | set(source.defaults) <= set(source.keys), name
    for key in source.keys:
        assert DATASET_SCHEMA["properties"][key].get("description", "").strip(), key
    config = minimal_config(name, reads(source.kind))
    dataset = config["datasets"]["data"]
    for key, default in source.defaults.items():
        if isinstance(default, dict):   # the source's own values, the schema's defaults beneath
            assert default.items() <= dataset[key].items(), (key, dataset[key])
        else:
            assert dataset[key] == default, key
    others = [key for other in SOURCES.values() for key in other.keys if key not in source.keys]
    for key in others:   # a key only other sources take is refused, naming them
        with pytest.raises(ConfigError, match=rf"no {key} for source {name} \(only for "):
            validate_config({**config, "datasets": {"data": {
                **dataset, key: example(DATASET_SCHEMA["properties"][key])}}}, SCHEMA)


@pytest.mark.parametrize("name", SOURCES)
def test_a_source_names_an_importable_preparer_of_a_kind_a_backbone_reads(name):
    source = SOURCES[name]
    assert source.kind in {b.inputs for b in BACKBONES.values()}, source.kind
    module, _, function = source.preparer.partition(":")
    prepare = getattr(importlib.import_module(module), function)
    assert callable(prepare)
    inspect.signature(prepare).bind({"source": name}, Path("out"), Path("downloads"))


@pytest.mark.parametrize("name", SOURCES)
def test_a_minimal_experiment_on_a_source_passes_the_config_check(name):
    kind = SOURCES[name].kind
    config = minimal_config(name, reads(kind))
    assert config["datasets"]["data"]["source"] == name
    assert name in DATASET_SCHEMA["properties"]["source"]["enum"]


# --- similarity measures -----------------------------------------------------------------------
def random_walk(layers=4, samples=40, features=6, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    steps = torch.randn(layers, samples, features, generator=generator, dtype=torch.float64)
    return steps.cumsum(dim=0) + 3.0


@pytest.mark.parametrize("name", MEASURES)
def test_a_measure_gives_a_symmetric_matrix_with_ones_on_its_diagonal(name):
    measure = MEASURES[name]
    assert measure.name == name and measure.label
    reps = random_walk()
    matrix = np.asarray(measure.matrix(reps, {"rbf_threshold": 1.0, "batch_size": None}))
    assert matrix.shape == (len(reps), len(reps)) and np.isfinite(matrix).all()
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-12)
    if measure.streamed is not None:
        similarity = StreamingSimilarity()
        for batch in reps.split(15, dim=1):
            similarity.update_means(batch)
        similarity.finish_means()
        for batch in reps.split(15, dim=1):
            similarity.update(batch)
        np.testing.assert_allclose(measure.streamed(similarity), matrix, rtol=1e-10,
                                   atol=1e-12)


# --- claims ------------------------------------------------------------------------------------
# Where the plan's claims spec gives a claim of each scope its subject(s).
PLAN_SUBJECTS = {EXPERIMENT: "experiments", ABLATION: "ablation"}


@pytest.fixture(scope="module")
def claims_spec() -> dict:
    config = validate_config(load_config_file(ROOT / "config/config.yaml"), SCHEMA)
    return StudyPlan(config).claims_spec()


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_a_claims_threshold_is_documented_and_its_scope_planned(claim_id, claims_spec):
    claim = CLAIMS[claim_id]
    assert claim.id == claim_id
    thresholds = SCHEMA["properties"]["claims"]["properties"]
    assert claim.threshold_key in thresholds, f"no claims.{claim.threshold_key} in the schema"
    key = thresholds[claim.threshold_key]
    assert "default" in key, f"claims.{claim.threshold_key} has no default"
    assert re.search(rf"\b{claim_id}\b", key.get("description", "")), \
        f"the description of claims.{claim.threshold_key} does not say it decides {claim_id}"
    assert claim.scope in SCOPES and claim.scope in NO_SUBJECT
    assert PLAN_SUBJECTS.get(claim.scope) in claims_spec, \
        f"the plan's claims spec gives scope {claim.scope!r} no subject"


def test_captions_say_which_head_reads_each_methods_layers():
    from layerwise.train.methods import exit_reading

    assert exit_reading(["tuned_lens", "standard", "multi_exit", "aligned"]) == (
        "standard and aligned through the shared classifier; multi_exit through its own exit "
        "heads; tuned_lens through its translators, then the final norm and classifier")
    assert exit_reading(["standard", "aligned", "cos_regularized", "tuned_lens",
                         "aligned_lens"]).startswith(
        "standard, aligned, cos_regularized through the shared classifier; tuned_lens and "
        "aligned_lens through their translators")
