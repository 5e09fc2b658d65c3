"""The transformers BERT behind the backbone interface, checked against its own forward pass."""

import pytest
import torch

from layerwise.models import build_model
from layerwise.models.base import MaskedState
from layerwise.models.bert import BertClassifier
from layerwise.train.loop import TrainSpec, training_loss
from layerwise.train.methods import layer_weights

SPEC = dict(arch="bert", depth=3, width=32, heads=4, mlp_ratio=2.0, head_input="final_norm",
            pretrained="", patch_size=1)
INFO = dict(num_classes=3, pad_id=0, vocab_size=60, max_length=16, input_shape=[2, 16])
CLS, SEP = 2, 3


def make(head_input="final_norm", seed=0, **spec):
    torch.manual_seed(seed)
    return build_model({**SPEC, "head_input": head_input, **spec}, INFO).eval()


def batch(lengths, max_length=16, seed=0):
    """(B, 2, T) inputs: [CLS] tokens [SEP] padded with 0, a second segment after position 4."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, INFO["vocab_size"], (len(lengths), max_length), generator=generator)
    types = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, 0], ids[row, length - 1], ids[row, length:] = CLS, SEP, 0
        types[row, 4:length] = 1
    return torch.stack([ids, types], dim=1)


def reference(model, x):
    """transformers' own forward on the same tokens, with the mask it expects."""
    ids, types = x[:, 0], x[:, 1]
    return model.model(input_ids=ids, token_type_ids=types, attention_mask=(ids != 0).long(),
                       output_hidden_states=True)


@pytest.mark.parametrize("attention", [None, "eager", "sdpa"])
@pytest.mark.parametrize("lengths", [[16, 5, 9, 3, 12], [6, 5, 9, 3, 12]],
                         ids=["one-full-row", "all-padded-at-the-end"])
def test_layers_and_logits_match_transformers(lengths, attention):
    model = make(attention=attention)
    assert model.model.config._attn_implementation == (attention or "sdpa")
    x = batch(lengths)
    reps = model.layer_representations(x)
    assert reps.shape == (SPEC["depth"] + 1, len(lengths), SPEC["width"])
    own = reference(model, x)
    assert len(own.hidden_states) == SPEC["depth"] + 1
    for layer, hidden in enumerate(own.hidden_states):
        torch.testing.assert_close(reps[layer], hidden[:, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(model(x), own.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.layer_logits(reps)[-1], own.logits, rtol=0, atol=1e-6)


def test_unpadded_inputs_reproduce_transformers_exactly():
    model = make()
    x = batch([16, 16, 16])
    assert torch.equal(model(x), reference(model, x).logits)


def test_the_shared_head_is_the_pooler_and_classifier():
    model = make()
    h = torch.randn(7, SPEC["width"])
    bert = model.model
    expected = bert.classifier(bert.bert.pooler(h[:, None]))  # the pooler picks token 0 itself
    torch.testing.assert_close(model.head(h), expected)
    assert torch.equal(model.final_norm(h), h)  # post-LN: no final norm


def test_head_input_makes_no_difference_for_a_post_norm_model():
    x = batch([16, 5, 9])
    a, b = make("final_norm"), make("raw")
    torch.testing.assert_close(a.layer_logits(a.layer_representations(x)),
                               b.layer_logits(b.layer_representations(x)))


def test_state_compaction_keeps_hidden_states_and_masks_together():
    model = make()
    x = batch([16, 5, 9, 3])
    state = model.embed(x)
    assert state.shape[0] == 4 and state.device == x.device
    kept = state[torch.tensor([1, 3])]
    assert isinstance(kept, MaskedState)
    full = model.block(0, state)
    torch.testing.assert_close(model.block(0, kept).hidden, full.hidden[[1, 3]])


def test_early_exit_with_compaction_matches_the_offline_predictions():
    from layerwise.exits.online import early_exit

    model = make()
    x = batch([16, 5, 9, 3, 12, 7, 8, 15])
    logits = model.layer_logits(model.layer_representations(x))
    # A threshold halfway between two confidences at layer 1: half the samples leave there,
    # and none sits so close to it that float noise could change its decision.
    confidence = logits[1].softmax(-1).max(-1).values.sort().values
    threshold = (confidence[3] + confidence[4]).item() / 2
    predictions, layers = early_exit(model, x, "confidence", threshold)
    assert (layers == 1).any() and (layers > 1).any()
    assert torch.equal(predictions, logits.argmax(-1)[layers, torch.arange(len(x))])


@pytest.mark.parametrize("method", ["standard", "aligned"])
def test_training_methods_reach_every_layer(method):
    model = make().train()
    x, y = batch([16, 5, 9, 3]), torch.tensor([0, 1, 2, 1])
    spec = TrainSpec(method=method, seed=0, epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0)
    loss, logits = training_loss(model, x, y, spec, step=1, weights=layer_weights(3, "linear"))
    loss.backward()
    assert torch.isfinite(loss) and logits.shape == (4, INFO["num_classes"])
    first_layer = model.model.bert.encoder.layer[0].attention.self.query.weight.grad
    assert first_layer is not None and first_layer.abs().sum() > 0


def test_a_checkpoint_loads_by_name_as_the_paper_config_does(tmp_path):
    """The pretrained path, on a checkpoint folder saved here (transformers loads it offline)."""
    saved = make()
    saved.model.save_pretrained(tmp_path / "checkpoint")
    spec = {**SPEC, "pretrained": str(tmp_path / "checkpoint")}
    loaded = build_model(spec, INFO).eval()
    assert isinstance(loaded, BertClassifier) and loaded.num_layers == SPEC["depth"]
    x = batch([16, 5, 9])
    torch.testing.assert_close(loaded(x), saved(x))


def test_a_pretrained_multi_exit_model_sizes_its_exits_from_the_checkpoint(tmp_path):
    """The exit heads read the checkpoint's hidden size, whatever `model.width` says."""
    from layerwise.train.runs import build_run_model

    make().model.save_pretrained(tmp_path / "checkpoint")
    spec = {**SPEC, "pretrained": str(tmp_path / "checkpoint"), "width": 768}
    model = build_run_model({"method": "multi_exit", "model": spec}, INFO).eval()
    reps = model.layer_representations(batch([16, 5, 9]))
    assert model.width == reps.shape[-1] == SPEC["width"]
    assert model.layer_exit_logits(reps).shape == (SPEC["depth"] + 1, 3, INFO["num_classes"])


@pytest.mark.parametrize("dropout, attention", [(None, None), (0.0, "eager"), (0.3, "sdpa")])
def test_model_options_set_dropout_and_attention(tmp_path, dropout, attention):
    """Every dropout layer (embeddings, attention, hidden states, classifier) and the attention
    implementation, new or loaded; unset keeps transformers' 0.1 and sdpa."""
    spec = {**SPEC, "dropout": dropout, "attention": attention}
    make().model.save_pretrained(tmp_path / "checkpoint")
    for model in (build_model(spec, INFO),
                  build_model({**spec, "pretrained": str(tmp_path / "checkpoint")}, INFO)):
        layers = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        assert len(layers) > SPEC["depth"]
        assert {m.p for m in layers} == {0.1 if dropout is None else dropout}
        assert model.model.config._attn_implementation == (attention or "sdpa")
