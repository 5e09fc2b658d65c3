"""A transformers GPT-2 language model behind the CausalDecoder interface.

The stepping below is the body of `GPT2Model.forward` split so that blocks run one at a time;
the representation of layer l is every token's state after block l, which is `hidden_states[l]`
of transformers' `output_hidden_states` for l < L (transformers' last entry already has `ln_f`
applied). The tests check both that and the logits against transformers' own forward pass.

Decisions (the first author's GPT-2 code):
- The shared classifier is the model's own `lm_head`, tied to the token embedding.
- transformers applies `ln_f` only to the last hidden state, so the author's intermediate layers
  reach `lm_head` without it: `head_input: raw` is this arm's default, and `final_norm` (the
  logit lens) is the alternative.
- A multi-exit model's own exits are bias-free vocabulary-wide linear heads, one per layer
  (`CausalDecoder.exit_head`).
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.cache_utils import Cache

from layerwise.models.base import CausalDecoder, MaskedState, transformers_options

DROPOUT_KEYS = ("embd_pdrop", "attn_pdrop", "resid_pdrop")  # GPT2Config's dropout probabilities


class GPT2Classifier(CausalDecoder):
    lm_class = GPT2LMHeadModel
    dropout_keys = DROPOUT_KEYS

    def __init__(self, model: GPT2LMHeadModel, head_input: str = "raw"):
        super().__init__(model, head_input)

    @staticmethod
    def config_of(model_spec: dict, data_info: dict) -> GPT2Config:
        """A GPT-2 of the spec's size for a dataset's vocabulary and length. Special tokens the
        dataset does not name are None rather than GPT-2's 50256, outside a smaller vocabulary.
        The MLP's activation is GPT-2's tanh approximation of GELU as torch's one fused kernel
        (gelu_pytorch_tanh) rather than transformers' five-operation gelu_new: the same
        function, a sixth less CPU time per step of a small model."""
        width = model_spec["width"]
        return GPT2Config(vocab_size=data_info["vocab_size"],
                          n_positions=data_info["max_length"], n_embd=width,
                          n_layer=model_spec["depth"], n_head=model_spec["heads"],
                          n_inner=round(width * model_spec["mlp_ratio"]),
                          tie_word_embeddings=True, activation_function="gelu_pytorch_tanh",
                          bos_token_id=data_info.get("bos_id"),
                          eos_token_id=data_info.get("eos_id"),
                          pad_token_id=data_info.get("pad_id"),
                          **transformers_options(model_spec, DROPOUT_KEYS))

    # --- the backbone interface -----------------------------------------------------------
    def embed_tokens(self, inputs: torch.Tensor, positions: torch.Tensor
                     ) -> tuple[torch.Tensor, None]:
        """Token plus learned position embeddings: no block needs the positions again."""
        transformer = self.model.transformer
        return transformer.drop(transformer.wte(inputs) + transformer.wpe(positions)), None

    def block(self, index: int, state: MaskedState, cache: Cache | None = None) -> MaskedState:
        hidden = self.model.transformer.h[index](state.hidden, cache, state.attention_mask)
        return MaskedState(hidden, state.attention_mask)

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.transformer.ln_f(h)

    def fill_cache(self, index: int, state: MaskedState, cache: Cache) -> None:
        """The key and value thirds of the block's fused projection (`c_attn`) alone."""
        block = self.model.transformer.h[index]
        attention, width = block.attn, self.width
        projection = attention.c_attn
        keys_values = torch.addmm(projection.bias[width:],
                                  block.ln_1(state.hidden).reshape(-1, width),
                                  projection.weight[:, width:])
        keys, values = keys_values.view(*state.shape[:2], 2, -1, attention.head_dim).unbind(2)
        cache.update(keys.transpose(1, 2), values.transpose(1, 2), index)
