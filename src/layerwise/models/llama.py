"""A transformers Llama language model (`LlamaForCausalLM`: RMSNorm, rotary position
embeddings, a SwiGLU MLP, grouped-query attention) behind the CausalDecoder interface.

The stepping below is the body of `LlamaModel.forward` split so that blocks run one at a time:
the token embedding, then RoPE's position embeddings computed once (`rotary_emb`) and handed to
every decoder layer with the causal mask; the representation of layer l is every token's state
after decoder layer l, which is `hidden_states[l]` of transformers' `output_hidden_states` for
l < L. `model.norm` is the final norm and `lm_head` the shared classifier. The tests check the
layers, the logits and the cached stepping against transformers' own forward and `generate`.

Decisions:
- A new model is Llama as its config builds it by default (the checkpoints' choices): an
  untied `lm_head`, RoPE theta 10000, no dropout but on the attention weights. Its MLP is
  `mlp_ratio` times the width and `kv_heads` key/value heads serve the query heads (all of
  them, multi-head attention, when unset).
- `head_input` as GPT-2's: `final_norm` (the logit lens through the final RMSNorm) is the
  default here, `raw` the alternative; multi-exit heads are GPT-2's bias-free linear heads.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.cache_utils import Cache
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from layerwise.models.base import CausalDecoder, MaskedState, transformers_options

DROPOUT_KEYS = ("attention_dropout",)  # LlamaConfig's only dropout probability


class LlamaClassifier(CausalDecoder):
    lm_class = LlamaForCausalLM
    dropout_keys = DROPOUT_KEYS

    @staticmethod
    def config_of(model_spec: dict, data_info: dict) -> LlamaConfig:
        """A Llama of the spec's size for a dataset's vocabulary and length; special tokens the
        dataset does not name are None."""
        width, heads = model_spec["width"], model_spec["heads"]
        return LlamaConfig(vocab_size=data_info["vocab_size"], hidden_size=width,
                           intermediate_size=round(width * model_spec["mlp_ratio"]),
                           num_hidden_layers=model_spec["depth"], num_attention_heads=heads,
                           num_key_value_heads=model_spec.get("kv_heads") or heads,
                           max_position_embeddings=data_info["max_length"],
                           bos_token_id=data_info.get("bos_id"),
                           eos_token_id=data_info.get("eos_id"),
                           pad_token_id=data_info.get("pad_id"),
                           **transformers_options(model_spec, DROPOUT_KEYS))

    # --- the backbone interface -----------------------------------------------------------
    def embed_tokens(self, inputs: torch.Tensor, positions: torch.Tensor
                     ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Token embeddings, and RoPE's (cos, sin) at `positions`, which every block rotates
        its queries and keys by."""
        decoder = self.model.model
        hidden = decoder.embed_tokens(inputs)
        return hidden, decoder.rotary_emb(hidden, position_ids=positions)

    def block(self, index: int, state: MaskedState, cache: Cache | None = None) -> MaskedState:
        hidden = self.model.model.layers[index](
            state.hidden, attention_mask=state.attention_mask,
            position_embeddings=state.position_embeddings, cache=cache)
        return replace(state, hidden=hidden)

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.model.norm(h)

    def fill_cache(self, index: int, state: MaskedState, cache: Cache) -> None:
        """The key and value projections of the normed state, the keys rotated by position."""
        layer = self.model.model.layers[index]
        attention = layer.self_attn
        normed = layer.input_layernorm(state.hidden)
        heads_shape = (*state.shape[:2], -1, attention.head_dim)
        keys = attention.k_proj(normed).view(heads_shape).transpose(1, 2)
        values = attention.v_proj(normed).view(heads_shape).transpose(1, 2)
        cos, sin = state.position_embeddings
        _, keys = apply_rotary_pos_emb(keys, keys, cos, sin)  # keys stand in for the queries
        cache.update(keys, values, index)
