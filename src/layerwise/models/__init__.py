"""The backbones: one record each, naming the wrapper that puts a library's model behind the
one interface (`layerwise.models.base.LayeredClassifier`), the `model` keys of its own, the
config rules the backbone has and the paper's curves it is drawn beside.

Adding a backbone is its wrapper module (a LayeredClassifier with a `from_spec` classmethod;
a language model's, `inputs="lm"`, a `layerwise.models.base.CausalDecoder`, which decoding
runs on) and one record in `BACKBONES`; nothing outside this package asks which backbone it
holds. The config schema's `model.arch` values and the `model` keys only some backbones take
come from `BACKBONES` (`layerwise.study.config.load_schema`). Importing this module does not
import torch (the config check and the workflow read the records); a wrapper is imported when a
model is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layerwise.models.base import LayeredClassifier

# A config rule broken: (key under the experiment's `model`, its value, what is expected).
Violation = tuple[str, object, str]


@dataclass(frozen=True)
class Backbone:
    name: str
    wrapper: str          # "module:Class" of its LayeredClassifier, built by Class.from_spec
    inputs: str           # the kind of dataset it reads: "image", "text" or "lm" (sources.py)
    transformer: bool     # the paper's claims C1-C7 are about transformers
    pretrained: bool      # whether `model.pretrained` can name a checkpoint to load
    from_scratch: bool = True   # whether it can be built at random from the spec's sizes
                                # (False: only from a checkpoint, which model.pretrained names)
    text_tower: bool = False    # a second, text tower whose prompts are its zero-shot head:
                                # its runs also get the image-text similarity (Figs 22-23)
    # the `model` keys only it (or only some backbones) takes: name -> JSON-schema fragment,
    # with description and default. The config schema gets every record's keys; a backbone
    # that does not declare one must leave it at its default (unset where there is none).
    keys: dict[str, dict] = field(default_factory=dict)
    # (model spec, dataset spec, dataset name, image side or None) -> the rules it breaks
    rules: Callable[[dict, dict, str, int | None], Iterator[Violation]] = lambda *_: iter(())
    # model spec -> (key, label) of the paper's layer-wise test accuracy closest to it, or None
    reference: Callable[[dict], tuple[str, str] | None] = lambda _: None
    # the same for the per-layer cross-entropy of a language model (paper Fig 9, right)
    loss_reference: tuple[str, str] | None = None


def _heads_divide_width(model: dict) -> Iterator[Violation]:
    if model["width"] % model["heads"]:
        yield "width", model["width"], f"a multiple of heads ({model['heads']})"


def _vit_rules(model: dict, dataset: dict, name: str, side: int | None
               ) -> Iterator[Violation]:
    yield from _heads_divide_width(model)
    side = model.get("input_size") or side
    if side and side % model["patch_size"]:
        divisors = ", ".join(str(d) for d in range(1, side + 1) if side % d == 0)
        yield ("patch_size", model["patch_size"],
               f"a divisor of the image side {side} of dataset {name!r}: one of {divisors}")


def _bert_rules(model: dict, dataset: dict, name: str, side: int | None
                ) -> Iterator[Violation]:
    if model["pretrained"] and dataset["text"]["tokenizer"] != model["pretrained"]:
        yield ("pretrained", model["pretrained"],
               f"the checkpoint whose tokenizer dataset {name!r} uses "
               f"({dataset['text']['tokenizer']})")
    if not model["pretrained"]:
        yield from _heads_divide_width(model)


def _gpt2_rules(model: dict, dataset: dict, name: str, side: int | None
                ) -> Iterator[Violation]:
    if not model["pretrained"]:
        yield from _heads_divide_width(model)


def _llama_rules(model: dict, dataset: dict, name: str, side: int | None
                 ) -> Iterator[Violation]:
    if model["pretrained"]:
        return
    heads, kv_heads = model["heads"], model.get("kv_heads")
    yield from _heads_divide_width(model)
    if not model["width"] % heads and model["width"] // heads % 2:
        yield ("width", model["width"], f"an even number of dimensions per head ({heads} "
               f"heads): rotary embeddings rotate pairs of them")
    if kv_heads is not None and heads % kv_heads:
        yield "kv_heads", kv_heads, f"a divisor of heads ({heads})"


def _clip_rules(model: dict, dataset: dict, name: str, side: int | None
                ) -> Iterator[Violation]:
    prompt = model.get("prompt")
    if prompt is not None and "{label}" not in prompt:
        yield "prompt", prompt, "a template holding {label}, where each class name goes"


def _mlp_reference(model: dict) -> tuple[str, str]:
    """The 9-layer MLP on MNIST without or with residual connections (Fig 12)."""
    which, words = (("residual", "with") if model.get("residual", True)
                    else ("no_residual", "without"))
    return f"fig12_mlp9_mnist.{which}.acc", f"paper 9-layer MLP MNIST {words} residuals (Fig 12)"


# The backbones' own `model` keys. A key several backbones take in one meaning is declared once
# here and referenced by each of their records, so the schema has one description of it.
PATCH_SIZE = {
    "description": "vit only: side of the square image patches turned into tokens; must divide "
                   "the image side (8 for sklearn_digits).",
    "type": "integer", "minimum": 1, "default": 2}
INPUT_SIZE = {
    "description": "vit only: side the images are resized to (bilinear, inside the model, on the "
                   "device) before the patch embedding, e.g. 224 to fine-tune an "
                   "ImageNet-pretrained DeiT on 32x32 CIFAR-10; null keeps the dataset's image "
                   "side.",
    "type": ["integer", "null"], "minimum": 8, "default": None}
RESIDUAL = {
    "description": "mlp only: add each layer's output to its input (h + f(h)) instead of "
                   "replacing it (f(h)); the paper's Fig 12 compares the two.",
    "type": "boolean", "default": True}
DROPOUT = {
    "description": "bert and gpt2: probability of every dropout layer of the transformer "
                   "(embeddings, attention weights, hidden states; bert's classifier too). Unset "
                   "keeps transformers' default, 0.1, which the pretrained checkpoints were "
                   "trained with. llama: of its only dropout, on the attention weights (unset: "
                   "0). 0 suits a small model trained from scratch for an epoch or two: it "
                   "underfits rather than overfits, and on a CPU dropout costs a third of the "
                   "step time.",
    "type": "number", "minimum": 0, "exclusiveMaximum": 1}
ATTENTION = {
    "description": "bert, gpt2 and llama: transformers' attention implementation. Unset keeps "
                   "its default, sdpa (fused kernels on a GPU). eager is its plain reference "
                   "implementation, on a CPU faster for small models: with a padding mask SDPA "
                   "falls back to an unfused path there (a fifth of a small BERT's step).",
    "type": "string", "enum": ["eager", "sdpa"]}
KV_HEADS = {
    "description": "llama only: key/value heads of its grouped-query attention, each shared by "
                   "heads / kv_heads query heads; must divide heads. Unset gives every query "
                   "head its own (multi-head attention).",
    "type": "integer", "minimum": 1}
# (no schema default: a default would enter every other backbone's run specs, and their hashes)
DEFAULT_PROMPT = "This is a photo of a {label}"
PROMPT = {
    "description": "clip only: the zero-shot prompt of each class, {label} standing for its name "
                   "(underscores read as spaces). The text features of these prompts are its "
                   "classifier; their end-of-text states in every text layer are the text side of "
                   "its cross-modal similarity (the paper's Appendix D, Figs 22-23). Unset: "
                   f"{DEFAULT_PROMPT!r}, the paper's.",
    "type": "string"}
TRANSFORMERS_KEYS = {"dropout": DROPOUT, "attention": ATTENTION}

GPT2_REFERENCE = "paper GPT-2 124M fine-tuned on WikiText-103 (Fig 9)"

BACKBONES: dict[str, Backbone] = {b.name: b for b in (
    Backbone("vit", "layerwise.models.vit:ViTClassifier", inputs="image", transformer=True,
             pretrained=True, keys={"patch_size": PATCH_SIZE, "input_size": INPUT_SIZE},
             rules=_vit_rules,
             reference=lambda _: ("fig4_deit_s_imagenet.test_acc",
                                  "paper DeiT-S ImageNet (Fig 4)")),
    Backbone("mlp", "layerwise.models.mlp:MLPClassifier", inputs="image", transformer=False,
             pretrained=False, keys={"residual": RESIDUAL}, reference=_mlp_reference),
    Backbone("bert", "layerwise.models.bert:BertClassifier", inputs="text", transformer=True,
             pretrained=True, keys=TRANSFORMERS_KEYS, rules=_bert_rules),
    Backbone("gpt2", "layerwise.models.gpt2:GPT2Classifier", inputs="lm", transformer=True,
             pretrained=True, keys=TRANSFORMERS_KEYS, rules=_gpt2_rules,
             reference=lambda _: ("fig9_gpt2_wikitext103_token_acc", GPT2_REFERENCE),
             loss_reference=("fig9_gpt2_wikitext103_token_loss", GPT2_REFERENCE)),
    Backbone("llama", "layerwise.models.llama:LlamaClassifier", inputs="lm", transformer=True,
             pretrained=True, keys={**TRANSFORMERS_KEYS, "kv_heads": KV_HEADS},
             rules=_llama_rules),
    Backbone("clip", "layerwise.models.clip:CLIPClassifier", inputs="image", transformer=True,
             pretrained=True, from_scratch=False, text_tower=True, keys={"prompt": PROMPT},
             rules=_clip_rules),
)}


def backbone(model_spec: dict) -> Backbone:
    """The record of an experiment's `model.arch`."""
    arch = model_spec["arch"]
    if arch not in BACKBONES:
        raise ValueError(f"unknown model arch {arch!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[arch]


def build_model(model_spec: dict, data_info: dict) -> LayeredClassifier:
    """Build the model an experiment's `model` section describes for a prepared dataset."""
    module, name = backbone(model_spec).wrapper.split(":")
    return getattr(importlib.import_module(module), name).from_spec(model_spec, data_info)


__all__ = ["BACKBONES", "Backbone", "backbone", "build_model"]
