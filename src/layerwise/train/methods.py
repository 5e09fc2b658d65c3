"""The training methods: one record each, in the order every table, figure and path shows them.

- `standard`: cross-entropy of the last layer.
- `aligned`: sum_l lambda_l CE(W h^(l) + b, y) over layers 1..L through the model's own (shared)
  classifier, lambda_l = 2l / (L(L+1)) (`weights: linear`) or 1/L (`uniform`).
- `multi_exit`: the paper's baseline, the same weighted sum with each layer through its own exit
  head (the last layer through the model's head).
- `aligned_uniform`: aligned training with uniform weights whatever `aligned.weights` says (the
  paper's Fig 15 ablation), so that both weightings can be trained side by side.
- `cos_regularized`: the alternative the paper rejects (its Fig 14): CE(W h^(L) + b, y) +
  beta * sum_l lambda_l (1 - cos(h^(l), h^(L))), pulling every layer's representation towards
  the last one instead of training the shared classifier on it.
- `tuned_lens`: no training of the backbone: the standard run of the same seed, frozen, gets one
  affine translator per layer 1..L-1, fitted on the training split so that the model's own
  head reads layer l as it reads layer L (KL to the last layer's prediction; train/lens.py).
- `aligned_lens`: the same lens fitted on the aligned run of the same seed: whether training
  for the shared head and a translator fitted after it add up.
- `pretrained`: no training at all: the checkpoint `model.pretrained` names, as published,
  analysed through its own head (a language model's `lm_head`, CLIP's zero-shot prompts).
  An experiment of this method alone analyses a pretrained model; beside trained methods it
  shows what fine-tuning changed.

A method with settings (`weights`, `alternate`, ...) declares them as a dataclass of
`setting` fields, which the config schema's section for it (named by `section`) is built from;
it reads them from that section of an experiment (with `overrides` on top). They are part of its
runs' spec, so changing them reruns only those runs, and training carries them as an instance
of that class. With `alternate`, even steps (0-based) are plain last-layer cross-entropy and odd
steps the method's loss (BERxiT's alternating schedule), so the first step of a run is a plain
one.

Adding a method is one record here (its loss, whether it trains exit heads, its settings class);
the config schema's list of methods and sections, the workflow's wildcard and every table's
order come from `METHODS`. Importing this module does not import torch: the workflow reads the
names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layerwise.data import IGNORE

if TYPE_CHECKING:
    import torch

    from layerwise.models.base import LayeredClassifier


def setting(default, description: str, **schema):
    """A field of a method's settings: its default and the JSON-schema fragment the config
    schema's section for the method is built from (layerwise.study.config.load_schema)."""
    return field(default=default,
                 metadata={"schema": {"description": " ".join(description.split()), **schema,
                                      "default": default}})


WEIGHTINGS = ["linear", "uniform"]


@dataclass(frozen=True)
class AlignedSettings:
    """Settings of the aligned training method (ignored by standard training)."""
    weights: str = setting("linear", """Weights of the per-layer losses; linear uses lambda_l =
        2l / (L(L+1)), which favours deep layers, uniform uses 1/L for every layer.""",
                           type="string", enum=WEIGHTINGS)
    alternate: bool = setting(True, """If true (BERxiT's schedule, which the paper follows for
        ViT), every other iteration, starting with the first, uses the plain last-layer
        cross-entropy and the others the aligned loss. Methods an experiment compares must
        share it (see schedule_reason).""", type="boolean")


@dataclass(frozen=True)
class MultiExitSettings:
    """Settings of the multi-exit baseline (ignored by the other methods)."""
    weights: str = setting("linear", """Weights of the per-exit losses; linear uses 2l / (L(L+1))
        for the exit at layer l, uniform uses 1/L for every exit.""",
                           type="string", enum=WEIGHTINGS)
    alternate: bool = setting(True, """If true (BERxiT's schedule), every other iteration,
        starting with the first, uses the plain last-layer cross-entropy and the others the
        weighted sum over all exits.""", type="boolean")


@dataclass(frozen=True)
class CosRegularizedSettings:
    """Settings of the cosine-regularized alternative the paper rejects (its Fig 14):
    CE(W h^(L) + b, y) + beta * sum_l lambda_l (1 - cos(h^(l), h^(L)))."""
    beta: float = setting(1.0, """Weight of the cosine penalty. 1.0 weighs the two terms alike
        at the start of training: the cross-entropy of 10 classes is ln 10 = 2.3 and the
        weighted cosine distance lies in [0, 2] (the lambda_l sum to 1). The paper gives none.""",
                          type="number", minimum=0)
    weights: str = setting("linear", """Weights lambda_l of the per-layer cosine distances, as for
        aligned training.""", type="string", enum=WEIGHTINGS)
    alternate: bool = setting(True, """If true, every other iteration, starting with the first,
        is plain last-layer cross-entropy, as for the other methods.""", type="boolean")


@dataclass(frozen=True)
class LensSettings:
    """Settings of the tuned lens (Belrose et al. 2023), the post-hoc baseline: the standard run
    of the same seed, frozen, gets an affine translator per layer 1..L-1, identity-initialised
    and fitted on the training split (a classifier's stored training-split states,
    analysis.train_samples of them; a language model's training blocks streamed through it) to
    minimise KL(p_L || p_l) summed over the layers. Adam with its rate decayed linearly to zero:
    at 1e-2 over the tuned lens' 250 steps it reached a lower validation KL on every arm than the
    tuned lens' own SGD recipe (tuned for GPT-scale models) in the same steps."""
    steps: int = setting(250, "Optimisation steps (the tuned lens' 250).", type="integer",
                         minimum=1)
    lr: float = setting(1.0e-2, "Adam's learning rate at the first step, decayed linearly to zero.",
                        type="number", exclusiveMinimum=0)
    batch_size: int | None = setting(None, """Samples per step: stored training states of a
        classifier, or training blocks of a language model; null takes every stored state at once
        (a classifier) or the experiment's train.batch_size blocks (a language model).""",
                                     type=["integer", "null"], minimum=1)


# (model, inputs, targets, settings, per-layer weights, label smoothing)
#   -> (loss, last layer's logits)
Loss = Callable[["LayeredClassifier", "torch.Tensor", "torch.Tensor", object,
                 "torch.Tensor", float], tuple["torch.Tensor", "torch.Tensor"]]


@dataclass(frozen=True)
class Method:
    name: str
    label: str                      # how figures and tables name it
    loss: Loss | None = None        # its loss on a non-plain step; None: last-layer CE only
    trains_layers: bool = False     # its loss reads every layer through an exit (the study
                                    # evaluates early exit and saturation for it)
    exit_heads: bool = False        # layers 1..L-1 get a classifier of their own
    evaluate_exits: bool = True     # early exit and saturation are evaluated for its runs (the
                                    # paper's study compares standard, aligned and multi-exit)
    section: str | None = None      # the experiment key holding its settings
    settings_class: type | None = None   # their dataclass (setting() fields), which the
                                         # schema's section is built from
    overrides: dict = field(default_factory=dict)   # settings it fixes whatever the section says
    post_hoc: str | None = None     # fitted on the finished runs of this method (same seed), its
                                    # backbone frozen, instead of trained (no loss of its own)
    lens: bool = False              # layers 1..L-1 get an affine translator before the model's
                                    # own head (a tuned lens)
    as_loaded: bool = False         # its run is the pretrained checkpoint itself (rule
                                    # load_pretrained): no training, no settings, no schedule

    def settings(self, experiment: dict) -> dict | None:
        """Its settings in an experiment (the run spec's entry under its name), or None."""
        if self.section is None:
            return None
        return {**experiment[self.section], **self.overrides}

    def parse_settings(self, section: dict | None):
        """Its settings as its `settings_class`, from a run spec's entry under its name (None
        for a method without settings)."""
        return None if self.settings_class is None else self.settings_class(**(section or {}))


def _layerwise_ce(layer_logits) -> Loss:
    """The weighted CE over layers 1..L of the logits `layer_logits(model, reps)` gives."""
    def loss(model, x, y, settings, weights, label_smoothing):
        # Layer 0 (the embedding) carries no loss, so its logits are never computed.
        logits = layer_logits(model, model.layer_representations(x)[1:])
        return aligned_loss(logits, y, weights, label_smoothing), logits[-1]
    return loss


def _shared_head(model, reps):
    return model.layer_logits(reps)


def _own_heads(model, reps):
    return model.layer_exit_logits(reps)


def _cos_regularized(model, x, y, settings, weights, label_smoothing):
    """CE of the last layer plus beta times the weighted mean cosine distance of every layer's
    representation to the last layer's."""
    import torch.nn.functional as F

    reps = model.layer_representations(x)[1:]
    logits = model.classify(reps[-1], model.num_layers)
    distance = 1 - F.cosine_similarity(reps.float(), reps[-1:].float(), dim=-1)  # (L, B, ...)
    penalty = (weights.to(distance.device) * distance.flatten(1).mean(dim=1)).sum()
    return cross_entropy(logits, y, label_smoothing) + settings.beta * penalty, logits


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("standard", "standard"),
    Method("aligned", "aligned", _layerwise_ce(_shared_head), trains_layers=True,
           section="aligned", settings_class=AlignedSettings),
    Method("multi_exit", "multi-exit", _layerwise_ce(_own_heads), trains_layers=True,
           exit_heads=True, section="multi_exit", settings_class=MultiExitSettings),
    Method("aligned_uniform", "aligned, uniform λ", _layerwise_ce(_shared_head),
           trains_layers=True, evaluate_exits=False, section="aligned",
           settings_class=AlignedSettings, overrides={"weights": "uniform"}),
    Method("cos_regularized", "cos-regularized", _cos_regularized, evaluate_exits=False,
           section="cos_regularized", settings_class=CosRegularizedSettings),
    # the post-hoc answer to the same problem (Belrose et al. 2023): the standard model frozen,
    # one affine map per layer fitted so that the final head reads that layer as it reads L
    Method("tuned_lens", "tuned lens", trains_layers=True, section="tuned_lens",
           settings_class=LensSettings, post_hoc="standard", lens=True),
    # both answers together: the same lens fitted on the aligned run of the same seed
    Method("aligned_lens", "tuned lens on aligned", trains_layers=True, section="tuned_lens",
           settings_class=LensSettings, post_hoc="aligned", lens=True),
    # the checkpoint as published: what a pretrained model's layers hold before any of the above
    Method("pretrained", "pretrained", as_loaded=True),
)}


def exit_reading(names) -> str:
    """How the given methods' layer-wise results read a layer, for captions: e.g. "standard and
    aligned through the shared classifier; multi_exit through its own exit heads; tuned_lens
    and aligned_lens through their translators, then the final norm and classifier"."""
    groups: dict[str, list[str]] = {}
    for name in ordered(names):
        record = METHODS.get(name, Method(name, name))
        groups.setdefault("heads" if record.exit_heads else "lens" if record.lens else "shared",
                          []).append(name)
    whose = {True: "their", False: "its"}
    parts = []
    for kind, members in groups.items():
        several = len(members) > 1
        how = {"shared": "through the shared classifier",
               "heads": f"through {whose[several]} own exit heads",
               "lens": f"through {whose[several]} translators, then the final norm and "
                       "classifier"}[kind]
        listed = " and ".join(members) if len(members) < 3 else ", ".join(members)
        parts.append(f"{listed} {how}")
    return "; ".join(parts)


def trained(name: str) -> bool:
    """Whether a method's runs train (rule train): neither fitted post hoc nor as loaded."""
    record = METHODS[name]
    return record.post_hoc is None and not record.as_loaded


def method(name: str) -> Method:
    """The record of a method name; a ValueError naming the known ones otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def ordered(names) -> list[str]:
    """Known methods in their canonical order, then any others in order of first appearance."""
    seen = list(dict.fromkeys(names))
    return [m for m in METHODS if m in seen] + [m for m in seen if m not in METHODS]


def layer_weights(num_layers: int, kind: str) -> torch.Tensor:
    """lambda_1..lambda_L: linear 2l/(L(L+1)) (sums to 1, deeper layers weigh more) or uniform."""
    import torch

    layers = torch.arange(1, num_layers + 1, dtype=torch.float32)
    if kind == "linear":
        return 2 * layers / (num_layers * (num_layers + 1))
    if kind == "uniform":
        return torch.full((num_layers,), 1.0 / num_layers)
    raise ValueError(f"aligned weights must be 'linear' or 'uniform', got {kind!r}")



def cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean CE of (..., K) logits against (...) targets (one per sample, or one per token of a
    sequence), positions whose target is IGNORE left out."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten(),
                           ignore_index=IGNORE, label_smoothing=label_smoothing)


def aligned_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                 label_smoothing: float = 0.0) -> torch.Tensor:
    """Weighted CE over layers; `logits` is (L, B, ..., K) for layers 1..L, `labels` (B, ...)
    (IGNORE where a token has no target), `weights` is (L,)."""
    import torch.nn.functional as F

    num_layers, batch = logits.shape[:2]
    targets = labels.reshape(1, -1).expand(num_layers, -1).reshape(-1)
    per_sample = F.cross_entropy(logits.flatten(0, -2).float(), targets, reduction="none",
                                 ignore_index=IGNORE, label_smoothing=label_smoothing)
    if labels.ndim == 1:  # one target per sample, none ignored
        per_layer = per_sample.view(num_layers, batch).mean(dim=1)
    else:
        counted = (targets != IGNORE).view(num_layers, -1)
        per_layer = per_sample.view(num_layers, -1).sum(dim=1) / counted.sum(dim=1).clamp(min=1)
    return (weights.to(per_layer.device) * per_layer).sum()


def correct_and_counted(logits: torch.Tensor, targets: torch.Tensor) -> tuple[int, int]:
    """How many targets the argmax of (..., K) logits gets right, and how many targets count
    (those not IGNORE)."""
    counted = targets != IGNORE
    return int(((logits.argmax(-1) == targets) & counted).sum()), int(counted.sum())


def method_loss(model: LayeredClassifier, x, y, name: str, settings,
                weights: torch.Tensor, label_smoothing: float, plain: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's loss under the method `name` with its settings (or plain last-layer CE when
    `plain`), and the last layer's logits (for train accuracy)."""
    record = method(name)
    if plain or record.loss is None:
        logits = model(x)
        return cross_entropy(logits, y, label_smoothing), logits
    return record.loss(model, x, y, settings, weights, label_smoothing)
