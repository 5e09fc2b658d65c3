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

A causal language model that decoding runs on (`layerwise.exits`: early exit, self-speculative
decoding, generation at an exit) is a `CausalDecoder`: a transformers causal LM whose `embed`
and `block` also take a key/value cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedConfig, PreTrainedModel
    from transformers.cache_utils import Cache

HEAD_INPUTS = ("final_norm", "raw")


@dataclass(frozen=True)
class MaskedState:
    """What flows between the blocks of a transformers model: the token states, the attention
    mask built for them (None where nothing is masked, or where the attention kernel applies
    causality itself) and, for a model whose every block rotates queries and keys by position
    (RoPE), the position embeddings the blocks take.

    It answers the tensor operations early exit applies to a hidden state: `shape`, `device`, and
    `state[index]`, which keeps the samples `index` selects (compaction); the position
    embeddings are shared by every sample and kept whole.
    """

    hidden: torch.Tensor                     # (B, T, d)
    attention_mask: torch.Tensor | None      # as transformers builds it
    # (cos, sin), each (1, T, head_dim), as transformers' rotary embedding gives them; None for a
    # model that adds positions once, at the embedding
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def shape(self) -> torch.Size:
        return self.hidden.shape

    @property
    def device(self) -> torch.device:
        return self.hidden.device

    def __getitem__(self, index) -> "MaskedState":
        mask = None if self.attention_mask is None else self.attention_mask[index]
        return replace(self, hidden=self.hidden[index], attention_mask=mask)

    def first(self, count: int) -> "MaskedState":
        """The state of its first `count` positions: their hidden states, their query rows of
        the mask with the keys up to the last of them (the mask's keys end with these
        positions), and their position embeddings."""
        planned = self.shape[1]
        if count == planned:
            return self
        mask = self.attention_mask
        if mask is not None:
            mask = mask[..., :count, :mask.shape[-1] - (planned - count)]
        positions = self.position_embeddings
        if positions is not None:
            positions = tuple(part[:, :count] for part in positions)
        return MaskedState(self.hidden[:, :count], mask, positions)


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


class CausalDecoder(LayeredClassifier):
    """A transformers causal language model (`model`, an `lm_class` such as GPT2LMHeadModel)
    behind the LayeredClassifier interface, that also steps a few new tokens at a time with a
    key/value cache, as decoding does (`layerwise.exits`: early exit, self-speculative
    decoding, generation at an exit).

    Inputs are (B, T) int64 token ids, right-padded; targets are the (B, T) next tokens with
    IGNORE at padding. The causal mask keeps padding from influencing real positions, so no
    padding mask is needed and every sample of a batch has the same positions. States are
    `MaskedState`s; `pool` keeps every token (each predicts the next one), and the shared
    classifier is the model's own `lm_head`.

    Positions and the cache (a transformers `Cache`, from `new_cache`, one layer per block):
    - `embed(inputs, cache)` places the T inputs at positions C..C+T-1, C being the positions
      the cache holds (its first layer's, `cache.get_seq_length()`), 0 without a cache. Its
      state carries what every block needs of those positions: the causal mask over the C
      cached and T new keys, and RoPE's position embeddings where the model has them.
    - `block(index, state, cache)` runs block `index`, appending its keys and values of the
      state's positions to the cache's layer `index` and attending over everything that layer
      then holds; without a cache a block attends over the state's positions alone.
    - `fill_cache(index, state, cache)` appends to layer `index` what `block(index, state,
      cache)` would, computing only the key and value projections (no query, attention or
      MLP): what a layer skipped by an early exit still owes the tokens after it.
    Each layer is filled by its own block, so layers may hold different numbers of positions
    between steps (a draft runs the first blocks ahead). A state's mask is built for layers
    holding C positions; the caller runs it only through such layers, and `cache.crop` drops
    positions from every layer.

    A backbone gives `lm_class`, `dropout_keys` and `config_of` (for `from_spec`),
    `embed_tokens`, `block`, `final_norm` and `fill_cache`; the rest is written here once.
    """

    lm_class: type[PreTrainedModel]
    dropout_keys: tuple[str, ...]  # its config's dropout probabilities, set by `model.dropout`

    def __init__(self, model: PreTrainedModel, head_input: str = "final_norm"):
        super().__init__(head_input)
        self.model = model
        self.num_layers = model.config.num_hidden_layers
        self.width = model.config.hidden_size

    @classmethod
    def from_spec(cls, model_spec: dict, data_info: dict) -> "CausalDecoder":
        """A pretrained checkpoint (`model.pretrained`, whose size it keeps), or a new model of
        the spec's size for the dataset's vocabulary (`config_of`)."""
        if model_spec["pretrained"]:
            options = transformers_options(model_spec, cls.dropout_keys)
            model = cls.lm_class.from_pretrained(model_spec["pretrained"], **options)
        else:
            model = cls.lm_class(cls.config_of(model_spec, data_info))
        return cls(model, model_spec["head_input"])

    # --- what a decoder implements --------------------------------------------------------
    @staticmethod
    def config_of(model_spec: dict, data_info: dict) -> PreTrainedConfig:
        """The transformers config of a new model of the spec's size for a dataset."""
        raise NotImplementedError

    def embed_tokens(self, inputs: torch.Tensor, positions: torch.Tensor
                     ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """The (B, T, d) embeddings of `inputs` at (1, T) `positions`, and the position
        embeddings every block takes (None for a model that adds positions here)."""
        raise NotImplementedError

    def block(self, index: int, state: MaskedState, cache: Cache | None = None) -> MaskedState:
        """Run block `index`; with a `cache`, its keys and values are appended to it."""
        raise NotImplementedError

    def fill_cache(self, index: int, state: MaskedState, cache: Cache) -> None:
        """Append block `index`'s keys and values of `state` to `cache`, computing only their
        projections."""
        raise NotImplementedError

    # --- written once for every decoder ---------------------------------------------------
    def embed(self, inputs: torch.Tensor, cache: Cache | None = None) -> MaskedState:
        """The state entering block 1, positions counted on from what `cache` holds."""
        # imported here: the backbones that are no decoders never pay for this import
        from transformers.masking_utils import create_causal_mask

        start = cache.get_seq_length() if cache is not None else 0
        positions = torch.arange(start, start + inputs.shape[1], device=inputs.device)[None]
        hidden, position_embeddings = self.embed_tokens(inputs, positions)
        mask = create_causal_mask(config=self.model.config, inputs_embeds=hidden,
                                  attention_mask=None, cache=cache, position_ids=positions)
        return MaskedState(hidden, mask, position_embeddings)

    def new_cache(self) -> Cache:
        """An empty key/value cache for `embed`, `block` and `fill_cache`."""
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def pool(self, state: MaskedState) -> torch.Tensor:
        return state.hidden  # (B, T, d): every token predicts the next one

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(h)

    def exit_head(self, num_outputs: int) -> nn.Module:
        """The first author's multi-exit head (for GPT-2): a bias-free Linear, initialised as
        the model initialises its linear layers."""
        linear = nn.Linear(self.width, num_outputs, bias=False)
        nn.init.normal_(linear.weight, std=self.model.config.initializer_range)
        return linear
