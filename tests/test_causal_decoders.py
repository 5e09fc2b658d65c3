"""The CausalDecoder contract (`layerwise.models.base`) on every language-model backbone (GPT-2,
Llama with grouped-query attention), each a tiny random model: its layers and logits are
transformers' own forward; cached stepping, from position 0 and on from a prompt, is the whole
sequence's forward; `fill_cache` writes what the block would; self-speculative decoding is
greedy decoding is transformers' `generate`, and so is batched generation at the last exit. And
a Llama experiment takes GPT-2's place in the language-model arm by config alone."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from layerwise.exits.decoding import early_exit_decode, greedy_decode
from layerwise.exits.generation import generate_at_exit
from layerwise.exits.speculative import DRAFT_HEADS, DraftPlan
from layerwise.models import BACKBONES, build_model
from layerwise.models.base import CausalDecoder, MaskedState
from layerwise.study.config import ConfigError, load_config_file, merge_configs, validate_config
from layerwise.study.plan import StudyPlan
from layerwise.train.runs import build_run_model

ROOT = Path(__file__).resolve().parents[1]
LM_BACKBONES = [name for name, record in BACKBONES.items() if record.inputs == "lm"]
# keys only one backbone takes: Llama's 4 query heads share 2 key/value heads
OWN_KEYS = {"llama": {"kv_heads": 2}}
VOCAB, LAYERS, STEPS = 60, 3, 10
INFO = dict(vocab_size=VOCAB, num_classes=VOCAB, max_length=64, pad_id=0)


def spec(arch: str, **changes) -> dict:
    return {"arch": arch, "depth": LAYERS, "width": 32, "heads": 4, "mlp_ratio": 2.0,
            "head_input": "final_norm", "pretrained": "", **OWN_KEYS.get(arch, {}), **changes}


def make(arch: str, seed: int = 0, **changes) -> CausalDecoder:
    torch.manual_seed(seed)
    return build_model(spec(arch, **changes), INFO).eval()


def decoding_model(arch: str, method: str = "standard") -> CausalDecoder:
    """A tiny random model in double precision (no argmax sits on rounding), its weight matrices
    drawn wider than the usual init, under which the head mostly repeats the input token and any
    decoder would look right (as in test_decoding)."""
    torch.manual_seed(0)
    model = build_run_model({"method": method, "model": spec(arch)}, INFO).double().eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(std=0.2)
    return model


def tokens(batch: int = 2, length: int = 12, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=generator)


def run_blocks(model, state, cache=None, blocks=None) -> list[MaskedState]:
    """The states after each of the first `blocks` blocks (all of them by default)."""
    states = []
    for index in range(model.num_layers if blocks is None else blocks):
        state = model.block(index, state, cache)
        states.append(state)
    return states


def generated(model, ids: torch.Tensor, steps: int) -> torch.Tensor:
    """The (B, steps) tokens of transformers' own greedy `generate` after (B, T) prompts."""
    own = model.model.generate(ids, max_new_tokens=steps, do_sample=False, pad_token_id=0)
    return own[:, ids.shape[1]:]


# --- the backbone interface against transformers' forward ---------------------------------
@pytest.mark.parametrize("attention", [None, "eager", "sdpa"])
@pytest.mark.parametrize("arch", LM_BACKBONES)
def test_layers_and_logits_are_transformers_hidden_states_and_logits(arch, attention):
    model, ids = make(arch, attention=attention), tokens(batch=3, length=16)
    assert isinstance(model, CausalDecoder)
    assert model.model.config._attn_implementation == (attention or "sdpa")
    reps = model.layer_representations(ids)
    assert reps.shape == (LAYERS + 1, 3, 16, 32)
    own = model.model(ids, output_hidden_states=True)
    for layer in range(LAYERS):
        torch.testing.assert_close(reps[layer], own.hidden_states[layer], rtol=0, atol=1e-6)
    # transformers' last entry is after the final norm
    torch.testing.assert_close(model.final_norm(reps[-1]), own.hidden_states[-1],
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(model.classify(reps[-1], LAYERS), own.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(model(ids), own.logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", LM_BACKBONES)
def test_right_padding_leaves_real_positions_unchanged(arch):
    model, ids = make(arch), tokens(batch=3, length=16)
    padded = ids.clone()
    padded[1, 9:], padded[2, 4:] = 0, 0
    full, short = model.layer_representations(ids), model.layer_representations(padded)
    torch.testing.assert_close(short[:, 1, :9], full[:, 1, :9], rtol=0, atol=1e-6)
    torch.testing.assert_close(short[:, 2, :4], full[:, 2, :4], rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", LM_BACKBONES)
def test_state_compaction_keeps_samples_and_shares_positions(arch):
    model = make(arch)
    state = model.embed(tokens(batch=3))
    assert isinstance(state, MaskedState) and state.shape == (3, 12, 32)
    kept = state[torch.tensor([2])]
    assert torch.equal(kept.hidden, state.hidden[2:])
    assert kept.position_embeddings is state.position_embeddings  # every sample's positions
    with torch.no_grad():
        torch.testing.assert_close(model.block(0, kept).hidden, model.block(0, state).hidden[2:])


# --- the cache ------------------------------------------------------------------------------
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("arch", LM_BACKBONES)
@torch.no_grad()
def test_cached_stepping_is_the_whole_sequence_layer_by_layer(arch, attention):
    """A prompt from position 0, then single tokens and a chunk from later positions: every
    layer's states and the logits are those of one pass over the whole sequence."""
    model, ids = make(arch, attention=attention), tokens()
    cache, layers = model.new_cache(), []
    for chunk in ids.split([4, 1, 1, 3, 1, 2], dim=1):
        state = model.embed(chunk, cache)
        layers.append(torch.stack([state.hidden] + [s.hidden for s in
                                                     run_blocks(model, state, cache)]))
    assert cache.get_seq_length() == ids.shape[1]
    stepped, whole = torch.cat(layers, dim=2), model.layer_representations(ids)
    torch.testing.assert_close(stepped, whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.classify(stepped[-1], LAYERS), model.model(ids).logits,
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("start", [0, 5])
@pytest.mark.parametrize("arch", LM_BACKBONES)
@torch.no_grad()
def test_fill_cache_appends_the_keys_and_values_the_block_would(arch, start):
    model, ids = make(arch), tokens(length=start + 3)
    ran, filled = model.new_cache(), model.new_cache()
    if start:  # both caches hold the prompt at every layer: the new positions start at 5
        for cache in (ran, filled):
            run_blocks(model, model.embed(ids[:, :start], cache), cache)
    state = model.embed(ids[:, start:], ran)
    config = model.model.config
    kv_heads = getattr(config, "num_key_value_heads", config.num_attention_heads)
    for index in range(LAYERS):
        model.fill_cache(index, state, filled)
        state = model.block(index, state, ran)
        assert filled.layers[index].keys.shape == (2, kv_heads, start + 3, 32 // 4)
        torch.testing.assert_close(filled.layers[index].keys, ran.layers[index].keys)
        torch.testing.assert_close(filled.layers[index].values, ran.layers[index].values)
    assert kv_heads == OWN_KEYS.get(arch, {}).get("kv_heads", 4)


@pytest.mark.parametrize("arch", LM_BACKBONES)
@torch.no_grad()
def test_the_first_positions_of_a_state_are_the_state_of_those_positions(arch):
    """What speculative verification cuts from a state built for more positions than it checks:
    the mask and position embeddings of the first ones."""
    model, ids = make(arch, attention="eager"), tokens(batch=1)
    cache = model.new_cache()
    run_blocks(model, model.embed(ids[:, :4], cache), cache)
    planned = model.embed(ids[:, 4:9], cache)
    assert planned.first(5) is planned
    for count in range(1, 5):
        cut, own = planned.first(count), model.embed(ids[:, 4:4 + count], cache)
        assert torch.equal(cut.hidden, own.hidden)
        assert torch.equal(cut.attention_mask, own.attention_mask)
        if own.position_embeddings is None:
            assert cut.position_embeddings is None
        else:
            for part, expected in zip(cut.position_embeddings, own.position_embeddings):
                assert torch.equal(part, expected)


# --- decoding -----------------------------------------------------------------------------
# a one-token prompt (everything decoded) with the shared exit, and a longer one with exit heads
@pytest.mark.parametrize("method, length", [("standard", 1), ("multi_exit", 6)])
@pytest.mark.parametrize("arch", LM_BACKBONES)
def test_self_speculative_decoding_is_greedy_decoding_and_transformers_generate(
        arch, method, length):
    model = decoding_model(arch, method)
    prompt = tokens(batch=1, length=length, seed=length)[0]
    reference = greedy_decode(model, prompt, STEPS)
    assert torch.equal(reference, generated(model, prompt[None], STEPS)[0])
    never_exits = early_exit_decode(model, prompt, STEPS, "confidence", float("inf"))
    assert torch.equal(never_exits.tokens, reference)
    plans = [DraftPlan(1, 1)] + [DraftPlan(exit_layer, 3, head, stop)
                                 for exit_layer in range(1, LAYERS + 1)
                                 for head in DRAFT_HEADS for stop in (0.0, 0.3)]
    drafted = accepted = 0
    for plan in plans:
        decoded = plan.decode(model, prompt, STEPS)
        assert torch.equal(decoded.tokens, reference), plan
        drafted, accepted = drafted + decoded.drafted, accepted + decoded.accepted
    assert 0 < accepted < drafted  # drafts were both taken and rejected (the cache cropped)


@pytest.mark.parametrize("arch", LM_BACKBONES)
def test_batched_generation_at_the_last_exit_is_transformers_generate(arch):
    """Prompts of one length decoded as one batch (what generation batches): a vanishing
    nucleus at layer L is greedy decoding, row by row."""
    model, ids = decoding_model(arch), tokens(batch=3, length=5, seed=3)
    draws = [torch.Generator().manual_seed(i) for i in range(3)]
    sampled = generate_at_exit(model, ids, STEPS, LAYERS, 1e-9, draws)
    assert torch.equal(sampled, generated(model, ids, STEPS))
    assert torch.equal(sampled, torch.stack([greedy_decode(model, row, STEPS) for row in ids]))


# --- the backbone's settings ----------------------------------------------------------------
def test_a_saved_llama_loads_as_the_pretrained_model_with_its_options(tmp_path):
    saved, ids = make("llama"), tokens()
    saved.model.save_pretrained(tmp_path)
    loaded = make("llama", pretrained=str(tmp_path), depth=1, kv_heads=None, dropout=0.25,
                  attention="eager")  # its size from the checkpoint
    config = loaded.model.config
    assert (loaded.num_layers, loaded.width, config.num_key_value_heads) == (LAYERS, 32, 2)
    assert (config.attention_dropout, config._attn_implementation) == (0.25, "eager")
    torch.testing.assert_close(loaded(ids), saved(ids), rtol=0, atol=1e-5)
    new = make("llama", dropout=0.25).model.config
    assert new.attention_dropout == 0.25 and not new.tie_word_embeddings


def smoke_with_llama(**model) -> dict:
    """The smoke study with a copy of its GPT-2 experiment on Llama beside it."""
    smoke = load_config_file(ROOT / "config" / "smoke.yaml")
    gpt2 = next(e for e in smoke["experiments"] if e["model"]["arch"] == "gpt2")
    llama = copy.deepcopy(gpt2)
    llama["name"] = "llama_smoke"
    llama["model"].update({"arch": "llama", **model})
    smoke["experiments"].append(llama)
    return merge_configs(load_config_file(ROOT / "config" / "config.yaml"), smoke)


def test_a_llama_experiment_plans_as_the_gpt2_one_it_replaces():
    plan = StudyPlan(validate_config(smoke_with_llama(kv_heads=1)))
    gpt2 = next(name for name, exp in plan.experiments.items()
                if exp["model"]["arch"] == "gpt2")
    assert "llama_smoke" in plan.pretrained_experiments
    assert plan.runs("llama_smoke") == plan.runs(gpt2)
    spec = plan.run_spec("llama_smoke", "aligned", 0)
    assert spec["model"]["arch"] == "llama" and spec["model"]["kv_heads"] == 1
    # every table and figure of the GPT-2 arm, but the paper's GPT-2 curves drawn beside it
    renamed = {target.replace(gpt2, "llama_smoke") for target in plan.experiment_targets(gpt2)}
    assert set(plan.experiment_targets("llama_smoke")) <= renamed
    assert any("speculative" in target for target in plan.experiment_targets("llama_smoke"))


@pytest.mark.parametrize("model, key", [
    ({"kv_heads": 3}, "kv_heads"),                        # 2 query heads
    ({"width": 12, "heads": 4}, "width"),                 # 3 dimensions a head: RoPE rotates pairs
    ({"arch": "gpt2", "kv_heads": 1}, "kv_heads"),        # GPT-2 has no grouped-query attention
])
def test_a_llama_config_breaking_a_rule_is_refused(model, key):
    with pytest.raises(ConfigError, match=rf"\.model\.{key}\b"):
        validate_config(smoke_with_llama(**model))
