"""A transformers BERT sequence classifier behind the LayeredClassifier interface.

Inputs are one int64 tensor per batch, (B, 2, T): token ids and token type ids (segment A or B of
a sentence pair); the attention mask is `ids != pad_id`, as the tokenizer padded. The stepping
below is the body of `BertModel.forward` split so that encoder layers run one at a time, and the
representation of layer l is the [CLS] hidden state after layer l: `hidden_states[l][:, 0]` of
transformers' `output_hidden_states` (layer 0: the embedding output). The tests check both that
and the logits against transformers' own forward pass.

Decisions (docs/method.md §4):
- The pooler belongs to the shared head. `BertForSequenceClassification` never classifies the raw
  [CLS] vector: its classifier path is classifier(dropout(tanh(W_p h + b_p))), and the paper's
  "last-layer classifier" is that path, applied unchanged to every layer's [CLS] vector.
- BERT is post-LN (each layer ends with its own LayerNorm), so `final_norm` is the identity and
  `head_input` (final_norm or raw) makes no difference.
"""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForSequenceClassification
from transformers.masking_utils import create_bidirectional_mask

from layerwise.models.base import LayeredClassifier, MaskedState, transformers_options


# BertConfig's dropout probabilities (the classifier's follows the hidden states')
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob")


class BertClassifier(LayeredClassifier):
    def __init__(self, model: BertForSequenceClassification, pad_id: int,
                 head_input: str = "final_norm"):
        super().__init__(head_input)
        self.model = model
        self.pad_id = pad_id
        self.num_layers = model.config.num_hidden_layers
        self.width = model.config.hidden_size

    @classmethod
    def from_spec(cls, model_spec: dict, data_info: dict) -> "BertClassifier":
        """A pretrained checkpoint (`model.pretrained`), or a BERT of the given size."""
        common = dict(num_classes=data_info["num_classes"], pad_id=data_info["pad_id"],
                      head_input=model_spec["head_input"],
                      options=transformers_options(model_spec, DROPOUT_KEYS))
        if model_spec["pretrained"]:
            return cls.from_pretrained(model_spec["pretrained"], **common)
        return cls.from_config(
            vocab_size=data_info["vocab_size"], max_length=data_info["max_length"],
            depth=model_spec["depth"], width=model_spec["width"], heads=model_spec["heads"],
            mlp_ratio=model_spec["mlp_ratio"], **common)

    @classmethod
    def from_config(cls, *, vocab_size: int, max_length: int, num_classes: int, depth: int,
                    width: int, heads: int, mlp_ratio: float, pad_id: int,
                    head_input: str = "final_norm", options: dict | None = None
                    ) -> "BertClassifier":
        """A randomly initialised BERT of the given size (the default study trains one)."""
        config = BertConfig(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=depth,
                            num_attention_heads=heads, intermediate_size=round(width * mlp_ratio),
                            max_position_embeddings=max_length, type_vocab_size=2,
                            pad_token_id=pad_id, num_labels=num_classes, **(options or {}))
        return cls(BertForSequenceClassification(config), pad_id, head_input)

    @classmethod
    def from_pretrained(cls, name: str, *, num_classes: int, pad_id: int,
                        head_input: str = "final_norm", options: dict | None = None
                        ) -> "BertClassifier":
        """A pretrained checkpoint (e.g. bert-base-uncased) with a new classifier, as transformers
        loads it; the tokens must come from the same checkpoint's tokenizer."""
        model = BertForSequenceClassification.from_pretrained(name, num_labels=num_classes,
                                                              **(options or {}))
        return cls(model, pad_id, head_input)

    def sample_lengths(self, inputs: torch.Tensor) -> torch.Tensor:
        """Tokens before the padding (what `_trim_padding` keeps of a batch's longest)."""
        return (inputs[:, 0] != self.pad_id).sum(dim=1)

    def _trim_padding(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and token types without the columns that are padding in every sample.

        The [CLS] states do not depend on them (padded keys get zero attention weight), and
        review snippets are far shorter than the fixed length they are padded to.
        """
        ids, token_types = inputs[:, 0], inputs[:, 1]
        used = (ids != self.pad_id).any(dim=0).nonzero()
        length = int(used.max()) + 1 if len(used) else 1
        return ids[:, :length], token_types[:, :length]

    def embed(self, inputs: torch.Tensor) -> MaskedState:
        ids, token_types = self._trim_padding(inputs)
        hidden = self.model.bert.embeddings(input_ids=ids, token_type_ids=token_types)
        mask = create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden,
                                         attention_mask=ids != self.pad_id)
        return MaskedState(hidden, mask)

    def block(self, index: int, state: MaskedState) -> MaskedState:
        hidden = self.model.bert.encoder.layer[index](state.hidden, state.attention_mask)
        return MaskedState(hidden, state.attention_mask)

    def pool(self, state: MaskedState) -> torch.Tensor:
        return state.hidden[:, 0]

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return h  # post-LN: every layer's output is already normed

    def head(self, h: torch.Tensor) -> torch.Tensor:
        # BertPooler's dense + tanh on the given [CLS] vectors (its forward would pick token 0
        # of a (B, T, d) input itself), then the model's dropout and classifier.
        pooler = self.model.bert.pooler
        return self.model.classifier(self.model.dropout(pooler.activation(pooler.dense(h))))
