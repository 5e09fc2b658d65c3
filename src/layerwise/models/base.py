"""The one interface every backbone is wrapped behind.

Training methods, hidden-state extraction, layer-wise accuracy and early exit are written once
against `LayeredClassifier` and never ask which backbone they hold. A backbone provides four
small pieces: `embed` (inputs -> hidden state before block 1), `block` (run block l),
`pool` (the hidden state -> one vector per sample, e.g. the [CLS] token, or one per token for
a language model whose targets are the next tokens), and the two steps of its own classifier
path, `final_norm` and `head` (a head may be vocabulary-wide).

Multi-exit models (the paper's baseline) get `exit_heads` from the base class: one own
classifier per layer 1..L-1 (`exit_head`, which a backbone may override), while the last exit
stays the model's own head. A tuned-lens model (Belrose et al. 2023) gets a `lens` instead:
one affine translator per layer 1..L-1, read through the model's whole output path. A model has
one or the other, never both. `exit_logits` is how every consumer (training, extraction, early
exit) reads a layer's prediction: the layer's own head when the model has them, the shared
classifier on the translated state when it has a lens, the shared classifier otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

HEAD_INPUTS = ("final_norm", "raw")


@dataclass(frozen=True)
class MaskedState:
    """What flows between the blocks of a transformers model: the token states and the
    attention mask built for them (None where nothing is masked, or where the attention kernel
    applies causality itself).

    It answers the tensor operations early exit applies to a hidden state: `shape`, `device`, and
    `state[index]`, which keeps the samples `index` selects (compaction) in both parts.
    """

    hidden: torch.Tensor                     # (B, T, d)
    attention_mask: torch.Tensor | None      # as transformers builds it

    @property
    def shape(self) -> torch.Size:
        return self.hidden.shape

    @property
    def device(self) -> torch.device:
        return self.hidden.device

    def __getitem__(self, index) -> "MaskedState":
        mask = None if self.attention_mask is None else self.attention_mask[index]
        return MaskedState(self.hidden[index], mask)


def transformers_options(model_spec: dict, dropout_keys: tuple[str, ...]) -> dict:
    """A transformers config's settings for the spec's `dropout` (every key in `dropout_keys`)
    and `attention` (attn_implementation); nothing for those unset, keeping its defaults."""
    options = {}
    if model_spec.get("dropout") is not None:
        options.update(dict.fromkeys(dropout_keys, model_spec["dropout"]))
    if model_spec.get("attention") is not None:
        options["attn_implementation"] = model_spec["attention"]
    return options


class LayeredClassifier(nn.Module):
    """A classifier whose representation after every block can be read and classified.

    Layer 0 is the embedding output and layer l (1..L) the output of block l. The shared
    classifier path is the model's own: `head(final_norm(h))`. With `head_input="raw"`,
    intermediate layers skip the final norm (the GPT-2 convention of the paper's code) while the
    last layer keeps it, so the model's own output is unchanged.
    """

    num_layers: int
    width: int  # the size of a pooled representation (what an exit head reads)
    exit_heads: nn.ModuleList | None
    lens: nn.ModuleList | None

    def __init__(self, head_input: str = "final_norm"):
        super().__init__()
        if head_input not in HEAD_INPUTS:
            raise ValueError(f"head_input must be one of {HEAD_INPUTS}, got {head_input!r}")
        self.head_input = head_input
        self.exit_heads = None
        self.lens = None

    # --- what a backbone implements -------------------------------------------------------
    def embed(self, inputs) -> torch.Tensor:
        raise NotImplementedError

    def block(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        """Run block `index` (0-based), giving layer `index + 1`."""
        raise NotImplementedError

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        """The model's norm after its last block (identity for post-norm models)."""
        raise NotImplementedError

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """The model's own classifier: pooled (normed) features -> logits."""
        raise NotImplementedError

    def sample_lengths(self, inputs) -> torch.Tensor | None:
        """Each sample's length, for a backbone whose cost follows the longest sample of a batch
        (train.group_by_length); None for inputs of one fixed size."""
        return None

    # --- written once for every backbone --------------------------------------------------
    def classify(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Logits of the shared classifier for representations `h` of layer `layer`."""
        if self.head_input == "final_norm" or layer == self.num_layers:
            h = self.final_norm(h)
        return self.head(h)

    def layer_representations(self, inputs) -> torch.Tensor:
        """(L+1, B, d): the pooled representation after the embedding and after every block;
        (L+1, B, T, d) for a backbone whose `pool` keeps every token (a language model, whose
        targets are then (B, T) with IGNORE where a position has none)."""
        hidden = self.embed(inputs)
        reps = [self.pool(hidden)]
        for index in range(self.num_layers):
            hidden = self.block(index, hidden)
            reps.append(self.pool(hidden))
        return torch.stack(reps)

    def layer_logits(self, reps: torch.Tensor) -> torch.Tensor:
        """The shared classifier applied to every layer of `reps` in one call.

        `reps` is a stack of consecutive layers ending with layer L (all L+1 layers, or 1..L).
        """
        if self.head_input == "final_norm":
            return self.head(self.final_norm(reps))
        return torch.cat([self.head(reps[:-1]), self.head(self.final_norm(reps[-1:]))])

    # --- multi-exit: one own classifier per layer ---------------------------------------------
    def add_exit_heads(self, num_outputs: int) -> None:
        """Give layers 1..L-1 their own classifier (`exit_head`), `num_outputs` wide (the
        classes, or a language model's vocabulary); layer L keeps the model's own head, so the
        multi-exit model's final output path is the standard one."""
        if self.lens is not None:
            raise ValueError("this model has a tuned lens; a model has exit heads or a lens, "
                             "not both")
        self.exit_heads = nn.ModuleList(self.exit_head(num_outputs)
                                        for _ in range(self.num_layers - 1))

    def exit_head(self, num_outputs: int) -> nn.Module:
        """One layer's own classifier: LayerNorm + Linear, initialised as timm initialises its
        head. A backbone may give its exits another form."""
        linear = nn.Linear(self.width, num_outputs)
        nn.init.trunc_normal_(linear.weight, std=0.02)
        nn.init.zeros_(linear.bias)
        return nn.Sequential(nn.LayerNorm(self.width), linear)

    # --- tuned lens: one affine translator per layer, read through the final layer's path ----
    def add_lens(self) -> None:
        """Give layers 1..L-1 a translator h -> A_l h + b_l, initialised to the identity (A = I,
        b = 0) as the tuned lens initialises it, so that an unfitted lens is the logit lens. The
        translators take the model's dtype and device: a lens is added to a finished model."""
        if self.exit_heads is not None:
            raise ValueError("this model has exit heads; a model has exit heads or a lens, "
                             "not both")
        like = next(self.parameters())
        translators = []
        for _ in range(self.num_layers - 1):
            translator = nn.Linear(self.width, self.width, device=like.device, dtype=like.dtype)
            nn.init.eye_(translator.weight)
            nn.init.zeros_(translator.bias)
            translators.append(translator)
        self.lens = nn.ModuleList(translators)

    def exit_representations(self, reps: torch.Tensor) -> torch.Tensor:
        """Every layer of `reps` (consecutive layers ending with layer L, shaped as
        `layer_representations` returns them) as its exit reads it: a lens model's layers
        1..L-1 translated, everything else unchanged. The similarity analyses of a lens model
        compare these."""
        if self.lens is None:
            return reps
        first = self.num_layers + 1 - len(reps)
        return torch.stack([self.lens[layer - 1](h) if 0 < layer < self.num_layers else h
                            for layer, h in enumerate(reps, start=first)])

    # --- every layer's exit ---------------------------------------------------------------
    def exit_logits(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Logits of the exit at `layer`: its own head in a multi-exit model; with a lens, the
        model's whole output path (final norm and head, as for layer L) on the translated
        state; else the shared classifier. Layer 0 (the embedding) and layer L have no exit of
        their own and use the shared one."""
        if layer in (0, self.num_layers) or (self.exit_heads is None and self.lens is None):
            return self.classify(h, layer)
        if self.lens is not None:
            return self.classify(self.lens[layer - 1](h), self.num_layers)
        return self.exit_heads[layer - 1](h)

    def layer_exit_logits(self, reps: torch.Tensor) -> torch.Tensor:
        """`exit_logits` of every layer of `reps` (consecutive layers ending with layer L)."""
        if self.exit_heads is None and self.lens is None:
            return self.layer_logits(reps)
        first = self.num_layers + 1 - len(reps)
        return torch.stack([self.exit_logits(h, first + i) for i, h in enumerate(reps)])

    def forward(self, inputs) -> torch.Tensor:
        hidden = self.embed(inputs)
        for index in range(self.num_layers):
            hidden = self.block(index, hidden)
        return self.classify(self.pool(hidden), self.num_layers)
