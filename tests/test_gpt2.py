"""The transformers GPT-2 behind the backbone interface: what is GPT-2's own. Its layers against
transformers' forward, its cache and decoding, which every causal decoder shares, are checked
in tests/test_causal_decoders.py."""

import pytest
import torch

from layerwise.models import BACKBONES, build_model
from layerwise.train.runs import build_run_model
from layerwise.models.gpt2 import GPT2Classifier

SPEC = dict(arch="gpt2", depth=3, width=32, heads=4, mlp_ratio=2.0, head_input="raw",
            pretrained="")
VOCAB, LENGTH = 50, 16
INFO = dict(vocab_size=VOCAB, num_classes=VOCAB, max_length=LENGTH, pad_id=0)


def make(head_input="raw", seed=0, **spec):
    torch.manual_seed(seed)
    return build_model({**SPEC, "head_input": head_input, **spec}, INFO).eval()


def tokens(batch=3, length=LENGTH, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=generator)


def test_the_shared_head_is_the_tied_lm_head():
    model = make()
    assert model.model.lm_head.weight is model.model.transformer.wte.weight
    assert model.model.lm_head.bias is None
    assert model.head_input == "raw"


@pytest.mark.parametrize("head_input", ["raw", "final_norm"])
def test_intermediate_layers_reach_lm_head_with_or_without_ln_f(head_input):
    model, ids = make(head_input), tokens()
    reps = model.layer_representations(ids)
    logits = model.layer_logits(reps)
    lm_head, ln_f = model.model.lm_head, model.model.transformer.ln_f
    for layer in range(SPEC["depth"]):
        h = reps[layer] if head_input == "raw" else ln_f(reps[layer])
        torch.testing.assert_close(logits[layer], lm_head(h))
        torch.testing.assert_close(model.classify(reps[layer], layer), lm_head(h))
    torch.testing.assert_close(logits[-1], model(ids))  # the model's own output either way


def test_a_locally_saved_checkpoint_loads_as_the_pretrained_model(tmp_path):
    saved, ids = make(), tokens()
    saved.model.save_pretrained(tmp_path)
    loaded = make(pretrained=str(tmp_path), depth=1, width=8, heads=3)  # size from checkpoint
    assert (loaded.num_layers, loaded.width) == (SPEC["depth"], SPEC["width"])
    torch.testing.assert_close(loaded(ids), saved(ids), rtol=0, atol=0)


@pytest.mark.parametrize("dropout, attention", [(None, None), (0.0, "eager"), (0.3, "sdpa")])
def test_model_options_set_dropout_and_attention(tmp_path, dropout, attention):
    expected = 0.1 if dropout is None else dropout  # transformers' defaults when unset
    make().model.save_pretrained(tmp_path)
    spec = {"dropout": dropout, "attention": attention}
    for model in (make(**spec), make(pretrained=str(tmp_path), **spec)):
        layers = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        assert layers and {m.p for m in layers} == {expected}
        config = model.model.config
        assert config.embd_pdrop == config.attn_pdrop == config.resid_pdrop == expected
        assert config._attn_implementation == (attention or "sdpa")


def test_multi_exit_heads_are_bias_free_and_vocabulary_wide():
    torch.manual_seed(0)
    model = build_run_model({"method": "multi_exit", "model": SPEC}, INFO).eval()
    assert len(model.exit_heads) == SPEC["depth"] - 1
    for head in model.exit_heads:
        assert isinstance(head, torch.nn.Linear) and head.bias is None
        assert (head.in_features, head.out_features) == (SPEC["width"], VOCAB)
        assert 0.01 < head.weight.std().item() < 0.03
    ids = tokens()
    logits = model.layer_exit_logits(model.layer_representations(ids))
    assert logits.shape == (SPEC["depth"] + 1, 3, LENGTH, VOCAB)
    torch.testing.assert_close(logits[-1], model.model(ids).logits)


def test_the_record_checks_heads_only_for_a_new_model():
    rules = BACKBONES["gpt2"].rules
    record = BACKBONES["gpt2"]
    assert record.inputs == "lm"
    # drawn beside it: the author's GPT-2 per-layer accuracy and loss (Fig 9)
    assert record.reference(SPEC)[0] == "fig9_gpt2_wikitext103_token_acc"
    assert record.loss_reference[0] == "fig9_gpt2_wikitext103_token_loss"
    assert not list(rules(SPEC, {}, "lm", None))
    assert [v[0] for v in rules({**SPEC, "heads": 5}, {}, "lm", None)] == ["width"]
    assert not list(rules({**SPEC, "heads": 5, "pretrained": "gpt2"}, {}, "lm", None))
    assert isinstance(make(), GPT2Classifier)


def test_a_new_model_computes_gpt2s_gelu_with_the_fused_kernel():
    """gelu_pytorch_tanh is the function gelu_new computes (the tanh approximation)."""
    from transformers.activations import ACT2FN

    model = make()
    assert model.model.config.activation_function == "gelu_pytorch_tanh"
    x = torch.linspace(-6, 6, 1001)
    torch.testing.assert_close(ACT2FN["gelu_pytorch_tanh"](x), ACT2FN["gelu_new"](x),
                               rtol=0, atol=1e-6)
