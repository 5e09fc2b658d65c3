"""Early-exit greedy decoding with a key/value cache, against full-depth decoding, transformers'
own generate, and a cache-free recomputation of the whole sequence with the same copied states."""

from dataclasses import replace

import pytest
import torch

from layerwise.exits.decoding import (agreement, early_exit_decode, exit_step, greedy_decode,
                                      prefill, time_decoding)
from layerwise.exits.policies import POLICIES
from layerwise.models import build_model
from layerwise.train.runs import build_run_model

SPEC = dict(arch="gpt2", depth=3, width=32, heads=4, mlp_ratio=2.0, head_input="raw",
            pretrained="")
VOCAB, LAYERS, STEPS = 50, 3, 8
INFO = dict(vocab_size=VOCAB, num_classes=VOCAB, max_length=16, pad_id=0)


def make(method="aligned", seed=0):
    """A tiny random GPT-2 in double precision, so that no exit decision sits on rounding. Its
    weight matrices are drawn wider than GPT-2's init (std 0.02), under which the tied head
    mostly repeats the input token and any decoder would look right."""
    torch.manual_seed(seed)
    model = build_run_model({"method": method, "model": SPEC}, INFO).double().eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(std=0.2)
    return model


def prompt(length=4, seed=0):
    return torch.randint(1, VOCAB, (length,), generator=torch.Generator().manual_seed(seed))


def copied_layers(model, ids, exited):
    """(layer, block input, layer state) for layers 1..L of a sequence without a cache, each
    position having exited at `exited[p]` (L where it ran fully): above its exit layer, a
    position's block input and state are its exited state."""
    state = model.embed(ids[None])
    for layer in range(1, LAYERS + 1):
        out = model.block(layer - 1, state)
        copied = torch.tensor(exited) < layer
        kept = replace(out, hidden=torch.where(copied[None, :, None], state.hidden, out.hidden))
        yield layer, state, kept
        state = kept


@torch.no_grad()
def recomputed(model, prompt, steps, policy, threshold):
    """(tokens, layers) of early-exit decoding that recomputes the whole sequence at every step,
    the prompt but its last token at full depth."""
    ids, exited = prompt.clone(), [LAYERS] * (len(prompt) - 1)
    tokens, layers = [], []
    for _ in range(steps):
        rule = POLICIES[policy].rule(threshold)
        for layer, _, state in copied_layers(model, ids, exited + [LAYERS]):
            logits = model.exit_logits(state.hidden[:, -1], layer)
            if layer == LAYERS or bool(rule.decide(logits)):
                break
        token = logits.argmax(-1)
        ids, exited = torch.cat([ids, token]), exited + [layer]
        tokens.append(int(token))
        layers.append(layer)
    return torch.tensor(tokens), torch.tensor(layers)


def confidence_median(model, prompt):
    """A confidence threshold that some exits pass and others do not."""
    with torch.no_grad():
        logits = model.layer_exit_logits(model.layer_representations(prompt[None]))[1:-1]
    return POLICIES["confidence"].score(logits).median().item()


@pytest.mark.parametrize("method", ["aligned", "multi_exit"])
def test_a_threshold_that_never_exits_is_full_depth_greedy_decoding(method):
    model, ids = make(method), prompt()
    decoded = early_exit_decode(model, ids, STEPS, "confidence", float("inf"))
    assert torch.equal(decoded.tokens, greedy_decode(model, ids, STEPS))
    own = model.model.generate(ids[None], max_new_tokens=STEPS, do_sample=False, pad_token_id=0)
    assert torch.equal(decoded.tokens, own[0, len(ids):])
    assert decoded.layers.tolist() == [LAYERS] * STEPS
    assert (decoded.blocks, decoded.kv_only) == (STEPS * LAYERS, 0)
    assert decoded.exits_scored == STEPS * (LAYERS - 1)


def test_full_depth_greedy_decoding_is_transformers_generate_in_float32():
    torch.manual_seed(1)
    model, ids = build_model(SPEC, INFO).eval(), prompt(seed=1)
    own = model.model.generate(ids[None], max_new_tokens=STEPS, do_sample=False, pad_token_id=0)
    assert torch.equal(greedy_decode(model, ids, STEPS), own[0, len(ids):])


def test_exiting_everything_at_layer_1_copies_the_state_into_the_deeper_caches():
    model, ids = make(), prompt()
    decoded = early_exit_decode(model, ids, STEPS, "confidence", 0.0)
    tokens, layers = recomputed(model, ids, STEPS, "confidence", 0.0)
    assert torch.equal(decoded.tokens, tokens)
    assert decoded.layers.tolist() == layers.tolist() == [1] * STEPS
    assert (decoded.blocks, decoded.kv_only) == (STEPS, STEPS * (LAYERS - 1))


@pytest.mark.parametrize("method", ["aligned", "multi_exit"])
def test_mixed_exit_layers_match_the_recomputation(method):
    model, ids = make(method), prompt(seed=2)
    threshold = confidence_median(model, ids)
    decoded = early_exit_decode(model, ids, STEPS, "confidence", threshold)
    tokens, layers = recomputed(model, ids, STEPS, "confidence", threshold)
    assert torch.equal(decoded.tokens, tokens) and torch.equal(decoded.layers, layers)
    assert len(set(layers.tolist())) > 1
    assert decoded.blocks == int(layers.sum())
    assert decoded.kv_only == int((LAYERS - layers).sum())


@pytest.mark.parametrize("method", ["aligned", "multi_exit"])
def test_skipped_layers_cache_the_keys_and_values_of_the_copied_state(method):
    model, ids = make(method), prompt(seed=2)
    threshold = confidence_median(model, ids)
    with torch.no_grad():
        cache, token = prefill(model, ids)
        fed, layers = [ids[:-1]], []
        for _ in range(STEPS):
            fed.append(token[0])
            token, layer = exit_step(model, token, cache, POLICIES["confidence"].rule(threshold))
            layers.append(layer)
        assert min(layers) < LAYERS
        exited = [LAYERS] * (len(ids) - 1) + layers
        for layer, block_input, _ in copied_layers(model, torch.cat(fed), exited):
            expected = model.new_cache()
            model.block(layer - 1, block_input, expected)
            torch.testing.assert_close(cache.layers[layer - 1].keys,
                                       expected.layers[layer - 1].keys)
            torch.testing.assert_close(cache.layers[layer - 1].values,
                                       expected.layers[layer - 1].values)


@pytest.mark.parametrize("patience", [0, 1, 2])
def test_patience_exits_after_its_run_of_equal_predictions(patience):
    model, ids = make(), prompt(seed=3)
    decoded = early_exit_decode(model, ids, STEPS, "patience", patience)
    tokens, layers = recomputed(model, ids, STEPS, "patience", patience)
    assert torch.equal(decoded.tokens, tokens) and torch.equal(decoded.layers, layers)
    assert bool((decoded.layers >= min(patience + 1, LAYERS)).all())


def test_agreement_counts_the_prefix_before_the_first_divergence():
    ours = [torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8])]
    reference = [torch.tensor([1, 2, 0, 4]), torch.tensor([5, 6, 7, 8])]
    assert agreement(ours, reference) == (6 / 8, 7 / 8)


def test_timing_reports_speed_exit_pattern_and_agreement():
    model = make()
    prompts = [prompt(seed=s) for s in range(2)]
    result = time_decoding(model, prompts, 4, "confidence", 0.0, warmup=0, repeats=1)
    assert result["tokens"] == 8 and result["mean_exit_layer"] == 1.0
    assert result["speedup"] == LAYERS and result["kv_only_per_token"] == LAYERS - 1
    assert result["tokens_per_s_early_exit"] > 0 and result["tokens_per_s_full_depth"] > 0
    assert 0 <= result["agreement_prefix"] <= result["agreement"] <= 1
