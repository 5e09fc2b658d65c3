"""The backbone interface with one representation per token, as a causal language model has:
targets are next tokens with IGNORE at padding, exit heads are vocabulary-wide, and training,
accuracy and extraction count only the positions that have a target."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from layerwise.hidden.extract import predict_layers
from layerwise.models.base import LayeredClassifier
from layerwise.train.loop import TrainSpec, accuracy, training_loss
from layerwise.data import IGNORE
from layerwise.train.methods import layer_weights

VOCAB, WIDTH, LAYERS = 11, 8, 3


class TokenToy(LayeredClassifier):
    """Token embedding, residual linear blocks, a vocabulary-wide head: every position is read."""

    def __init__(self):
        super().__init__("raw")
        self.num_layers, self.width = LAYERS, WIDTH
        self.embedding = nn.Embedding(VOCAB, WIDTH)
        self.blocks = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS))
        self.norm = nn.LayerNorm(WIDTH)
        self.lm_head = nn.Linear(WIDTH, VOCAB, bias=False)

    def embed(self, inputs):
        return self.embedding(inputs)

    def block(self, index, hidden):
        return hidden + torch.tanh(self.blocks[index](hidden))

    def pool(self, hidden):
        return hidden  # (B, T, d): one representation per token

    def final_norm(self, h):
        return self.norm(h)

    def head(self, h):
        return self.lm_head(h)


def tokens():
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (4, 6))
    targets = ids.roll(-1, dims=1)
    targets[:, -1] = IGNORE            # the last position has no next token
    targets[2, 3:] = IGNORE            # a shorter sequence, padded
    return ids, targets


def test_the_aligned_loss_averages_each_layer_over_the_tokens_that_have_a_target():
    model, (ids, targets) = TokenToy(), tokens()
    spec = TrainSpec(method="aligned", seed=0, epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0)
    weights = layer_weights(LAYERS, "linear")
    loss, last = training_loss(model, ids, targets, spec, step=1, weights=weights)
    reps = model.layer_representations(ids)
    keep = targets != IGNORE
    expected = sum(w * F.cross_entropy(model.classify(reps[layer], layer)[keep], targets[keep])
                   for w, layer in zip(weights, range(1, LAYERS + 1)))
    torch.testing.assert_close(loss, expected)
    assert last.shape == (4, 6, VOCAB)


def test_multi_exit_heads_are_vocabulary_wide_and_accuracy_counts_tokens():
    model, (ids, targets) = TokenToy(), tokens()
    model.add_exit_heads(VOCAB)
    assert all(head[-1].out_features == VOCAB for head in model.exit_heads)
    keep = targets != IGNORE
    predicted = model(ids).argmax(-1)
    expected = (predicted[keep] == targets[keep]).double().mean().item()
    assert abs(accuracy(model, ids, targets, batch_size=3) - expected) < 1e-12


def test_extraction_keeps_one_sample_per_position_with_a_target():
    model, (ids, targets) = TokenToy(), tokens()
    reps, logits, labels = predict_layers(model, ids, targets, batch_size=3)
    keep = targets != IGNORE
    assert reps.shape == (LAYERS + 1, int(keep.sum()), WIDTH)
    assert torch.equal(labels, targets[keep])
    full = model.layer_representations(ids)
    torch.testing.assert_close(reps, full[:, keep])
    torch.testing.assert_close(logits[-1], model(ids)[keep])
