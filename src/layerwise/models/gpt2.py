"""A transformers GPT-2 language model behind the LayeredClassifier interface.

Inputs are (B, T) int64 token ids, right-padded; targets are the (B, T) next tokens with IGNORE
at padding. The causal mask keeps padded positions from influencing real ones, so no padding
mask is needed. The stepping below is the body of `GPT2Model.forward` split so that blocks run one
at a time; the representation of layer l is every token's state after block l, which is
`hidden_states[l]` of transformers' `output_hidden_states` for l < L (transformers' last entry
already has `ln_f` applied). The tests check both that and the logits against transformers' own
forward pass.

Decisions (the first author's GPT-2 code):
- The shared classifier is the model's own `lm_head`, tied to the token embedding.
- transformers applies `ln_f` only to the last hidden state, so the author's intermediate layers
  reach `lm_head` without it: `head_input: raw` is this arm's default, and `final_norm` (the
  logit lens) is the alternative.
- A multi-exit model's own exits are bias-free vocabulary-wide linear heads, one per layer.

`embed` and `block` also take a transformers `Cache`, so that decoding (`layerwise.exits.
decoding`) runs one new token at a time; `fill_cache` writes a block's keys and values for a
state without running the block, which is what a layer skipped by an early exit still owes the
tokens after it.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel
from transformers.cache_utils import Cache
from transformers.masking_utils import create_causal_mask

from layerwise.models.base import LayeredClassifier, MaskedState, transformers_options

DROPOUT_KEYS = ("embd_pdrop", "attn_pdrop", "resid_pdrop")  # GPT2Config's dropout probabilities


class GPT2Classifier(LayeredClassifier):
    def __init__(self, model: GPT2LMHeadModel, head_input: str = "raw"):
        super().__init__(head_input)
        self.model = model
        self.num_layers = model.config.n_layer
        self.width = model.config.n_embd

    @classmethod
    def from_spec(cls, model_spec: dict, data_info: dict) -> "GPT2Classifier":
        """A pretrained checkpoint (`model.pretrained`), or a GPT-2 of the given size."""
        if model_spec["pretrained"]:
            options = transformers_options(model_spec, DROPOUT_KEYS)
            model = GPT2LMHeadModel.from_pretrained(model_spec["pretrained"], **options)
        else:
            model = GPT2LMHeadModel(config_of(model_spec, data_info))
        return cls(model, model_spec["head_input"])

    # --- the backbone interface -----------------------------------------------------------
    def embed(self, inputs: torch.Tensor, cache: Cache | None = None) -> MaskedState:
        """Token plus position embeddings, positions counted on from what `cache` holds."""
        transformer = self.model.transformer
        start = cache.get_seq_length() if cache is not None else 0
        positions = torch.arange(start, start + inputs.shape[1], device=inputs.device)[None]
        hidden = transformer.drop(transformer.wte(inputs) + transformer.wpe(positions))
        mask = create_causal_mask(config=self.model.config, inputs_embeds=hidden,
                                  attention_mask=None, cache=cache, position_ids=positions)
        return MaskedState(hidden, mask)

    def block(self, index: int, state: MaskedState, cache: Cache | None = None) -> MaskedState:
        """Run block `index`; with a `cache`, its keys and values are appended to it."""
        hidden = self.model.transformer.h[index](state.hidden, cache, state.attention_mask)
        return MaskedState(hidden, state.attention_mask)

    def pool(self, state: MaskedState) -> torch.Tensor:
        return state.hidden  # (B, T, d): every token predicts the next one

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.transformer.ln_f(h)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(h)

    def exit_head(self, num_outputs: int) -> nn.Module:
        """The author's multi-exit head: bias-free Linear, initialised as GPT-2 initialises its
        linear layers."""
        linear = nn.Linear(self.width, num_outputs, bias=False)
        nn.init.normal_(linear.weight, std=self.model.config.initializer_range)
        return linear

    # --- incremental decoding -------------------------------------------------------------
    def new_cache(self) -> Cache:
        """An empty key/value cache for `embed`, `block` and `fill_cache`."""
        return DynamicCache(config=self.model.config)

    def fill_cache(self, index: int, state: MaskedState, cache: Cache) -> None:
        """Append block `index`'s keys and values of `state` to `cache`, computing only their
        projection: no query, attention or MLP."""
        block = self.model.transformer.h[index]
        attention, width = block.attn, self.width
        projection = attention.c_attn
        keys_values = torch.addmm(projection.bias[width:],
                                  block.ln_1(state.hidden).reshape(-1, width),
                                  projection.weight[:, width:])
        keys, values = keys_values.view(*state.shape[:2], 2, -1, attention.head_dim).unbind(2)
        cache.update(keys.transpose(1, 2), values.transpose(1, 2), index)


def config_of(model_spec: dict, data_info: dict) -> GPT2Config:
    """A GPT-2 of the spec's size for a dataset's vocabulary and length. Special tokens the
    dataset does not name are None rather than GPT-2's 50256, outside a smaller vocabulary.
    The MLP's activation is GPT-2's tanh approximation of GELU as torch's one fused kernel
    (gelu_pytorch_tanh) rather than transformers' five-operation gelu_new: the same function,
    a sixth less CPU time per step of a small model."""
    width = model_spec["width"]
    return GPT2Config(vocab_size=data_info["vocab_size"], n_positions=data_info["max_length"],
                      n_embd=width, n_layer=model_spec["depth"], n_head=model_spec["heads"],
                      n_inner=round(width * model_spec["mlp_ratio"]), tie_word_embeddings=True,
                      activation_function="gelu_pytorch_tanh",
                      bos_token_id=data_info.get("bos_id"), eos_token_id=data_info.get("eos_id"),
                      pad_token_id=data_info.get("pad_id"),
                      **transformers_options(model_spec, DROPOUT_KEYS))
