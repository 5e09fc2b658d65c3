"""Self-speculative greedy decoding against full-depth decoding and transformers' generate, with
drafts that are always right, never right, or right only at times, that stop when unsure, and
the cache it leaves; the replay that predicts what a draft would accept, and the study."""

import math

import pytest
import torch

from layerwise.exits.decoding import greedy_decode, prefill
from layerwise.exits.speculative import (DraftPlan, choose_plans, draft_reader, replay,
                                         speculate_round, speculative_decode,
                                         speculative_study, time_plans, trace_drafts)
from layerwise.models import build_model

SPEC = dict(arch="gpt2", depth=3, width=32, heads=4, mlp_ratio=2.0, head_input="raw",
            pretrained="")
VOCAB, LAYERS, STEPS = 50, 3, 10
INFO = dict(vocab_size=VOCAB, num_classes=VOCAB, max_length=64, pad_id=0)
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
METHODS = ["standard", "aligned", "multi_exit"]


def make(method="standard", seed=0):
    """A tiny random GPT-2 in double precision (no argmax sits on rounding), its weight
    matrices drawn wider than GPT-2's init so that the tied head does not just repeat the
    input token (as in test_decoding)."""
    torch.manual_seed(seed)
    model = build_model(SPEC, INFO)
    if method == "multi_exit":  # the only method of the three with exit heads of its own
        model.add_exit_heads(VOCAB)
    model = model.double().eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(std=0.2)
    return model.to(DEVICE)


def prompt(length=4, seed=0):
    ids = torch.randint(1, VOCAB, (length,), generator=torch.Generator().manual_seed(seed))
    return ids.to(DEVICE)


def generated(model, ids, steps):
    own = model.model.generate(ids[None], max_new_tokens=steps, do_sample=False, pad_token_id=0)
    return own[0, len(ids):]


def layer_lengths(model, cache):
    return [cache.get_seq_length(index) for index in range(model.num_layers)]


@pytest.mark.parametrize("length", [1, 3, 6])
@pytest.mark.parametrize("method", METHODS)
def test_output_is_full_depth_greedy_decoding_and_transformers_generate(method, length):
    model, ids = make(method), prompt(length, seed=length)
    reference = greedy_decode(model, ids, STEPS)
    assert torch.equal(reference, generated(model, ids, STEPS))
    for exit_layer in (1, 2, LAYERS):
        for draft_length in (1, 2, 4):
            for head in ("exit", "final"):
                for stop in (0.0, 0.05, 0.3):
                    decoded = DraftPlan(exit_layer, draft_length, head, stop).decode(
                        model, ids, STEPS)
                    assert torch.equal(decoded.tokens, reference), (exit_layer, draft_length,
                                                                    head, stop)
            decoded = speculative_decode(model, ids, STEPS, exit_layer, draft_length)
            assert decoded.accepted + decoded.passes == STEPS
            assert decoded.draft_blocks == decoded.drafted * exit_layer
            assert decoded.verify_blocks == decoded.passes * LAYERS


def test_the_shared_exit_drafts_some_tokens_right_and_others_wrong():
    """Rounds that crop rejected drafts and rounds that take every draft and the bonus token
    both occur, and both give the full-depth output."""
    model, outcomes = make("standard"), set()
    for seed in range(6):
        ids = prompt(5, seed=seed)
        decoded = speculative_decode(model, ids, STEPS, 1, 4)
        assert torch.equal(decoded.tokens, greedy_decode(model, ids, STEPS))
        outcomes.add("all" if decoded.accepted == decoded.drafted else
                     "some" if decoded.accepted > 0 else "none")
    assert {"all", "some"} <= outcomes


@pytest.mark.parametrize("method", METHODS)
def test_the_full_model_as_draft_accepts_every_token(method):
    model, ids, draft_length = make(method), prompt(seed=1), 2
    decoded = speculative_decode(model, ids, STEPS, LAYERS, draft_length)
    assert torch.equal(decoded.tokens, greedy_decode(model, ids, STEPS))
    assert decoded.acceptance == 1.0 and decoded.accepted == decoded.drafted > 0
    # every round but the last emits its drafts and the bonus token
    assert decoded.passes == math.ceil(STEPS / (draft_length + 1))
    assert decoded.tokens_per_pass == STEPS / decoded.passes


@pytest.mark.parametrize("exit_layer", [1, 2, LAYERS])
@pytest.mark.parametrize("method", ["standard", "multi_exit"])
def test_a_draft_that_is_never_right_still_gives_full_depth_output(method, exit_layer):
    model, ids = make(method), prompt(seed=2)
    reference = greedy_decode(model, ids, STEPS)
    # a round's first draft follows committed tokens, so the full model's next token there is
    # the reference's: a token the reference never produces is always rejected
    unused = next(t for t in range(VOCAB) if t not in reference.tolist())

    def planted(h, layer):
        return torch.nn.functional.one_hot(torch.tensor([unused], device=h.device), VOCAB)

    decoded = speculative_decode(model, ids, STEPS, exit_layer, 3, draft=planted)
    assert torch.equal(decoded.tokens, reference)
    assert decoded.acceptance == 0.0 and decoded.drafted > 0
    assert decoded.passes == STEPS and decoded.tokens_per_pass == 1.0


def test_the_full_models_argmax_plus_one_is_rejected_everywhere():
    model, ids = make(), prompt(seed=3)

    def shifted(h, layer):  # at E = L the draft's state is the full model's own
        return torch.roll(model.classify(h, layer), 1, dims=-1)

    decoded = speculative_decode(model, ids, STEPS, LAYERS, 4, draft=shifted)
    assert torch.equal(decoded.tokens, greedy_decode(model, ids, STEPS))
    assert (decoded.accepted, decoded.passes) == (0, STEPS)


def test_a_draft_right_only_at_times_accepts_the_prefix_before_its_first_error():
    model, ids = make(), prompt(seed=4)
    calls = []

    def every_third_wrong(h, layer):
        calls.append(layer)
        logits = model.classify(h, layer)
        return torch.roll(logits, 1, dims=-1) if len(calls) % 3 == 0 else logits

    decoded = speculative_decode(model, ids, 3 * STEPS, LAYERS, 4, draft=every_third_wrong)
    assert torch.equal(decoded.tokens, greedy_decode(model, ids, 3 * STEPS))
    assert 0 < decoded.acceptance < 1
    # each round drafts until its first wrong token at the latest; every third call is wrong
    assert decoded.drafted == len(calls) and decoded.drafted - decoded.accepted >= 1


@pytest.mark.parametrize("exit_layer", [1, 2, LAYERS])
@pytest.mark.parametrize("method", ["standard", "multi_exit"])
def test_the_cache_holds_exactly_the_committed_positions(method, exit_layer):
    model, ids = make(method), prompt(5, seed=5)
    with torch.inference_mode():
        cache, token = prefill(model, ids)
        tokens = []
        while len(tokens) < STEPS:
            new, _, _ = speculate_round(model, cache, token, exit_layer,
                                        min(4, STEPS - len(tokens) - 1), stop_below=0.2)
            tokens += new.tolist()
            token = new[-1:].view(1, 1)
            assert layer_lengths(model, cache) == [len(ids) - 1 + len(tokens)] * LAYERS
        # the same keys and values as a full-depth encoding of the committed text
        text = torch.cat([ids, torch.tensor(tokens[:-1], device=DEVICE)])
        expected, _ = prefill(model, torch.cat([text, text[-1:]]))
        for index in range(LAYERS):
            torch.testing.assert_close(cache.layers[index].keys, expected.layers[index].keys)
            torch.testing.assert_close(cache.layers[index].values,
                                       expected.layers[index].values)
        # and full-depth decoding goes on from it as from the start
        more = []
        for _ in range(4):
            state = model.embed(token, cache)
            for index in range(LAYERS):
                state = model.block(index, state, cache)
            token = model.classify(state.hidden[:, -1], LAYERS).argmax(-1, keepdim=True)
            more.append(int(token))
    assert tokens + more == greedy_decode(model, ids, STEPS + 4).tolist()


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_fewer_steps_than_the_draft_length_draft_only_what_is_needed(steps):
    model, ids = make(), prompt(seed=6)
    decoded = speculative_decode(model, ids, steps, LAYERS, 4)
    assert torch.equal(decoded.tokens, greedy_decode(model, ids, steps))
    assert (decoded.drafted, decoded.passes) == (steps - 1, 1)
    short = speculative_decode(model, ids, steps, 1, 4)
    assert torch.equal(short.tokens, decoded.tokens)
    if steps == 1:
        assert math.isnan(decoded.acceptance)


@pytest.mark.parametrize("exit_layer, draft_length, steps",
                         [(0, 2, 4), (LAYERS + 1, 2, 4), (1, 0, 4), (1, 2, 0)])
def test_arguments_out_of_range_are_refused(exit_layer, draft_length, steps):
    with pytest.raises(ValueError):
        speculative_decode(make(), prompt(), steps, exit_layer, draft_length)


def test_a_draft_that_is_never_sure_drafts_nothing_and_one_that_always_is_never_stops():
    model, ids = make("aligned"), prompt(seed=7)
    reference = greedy_decode(model, ids, STEPS)
    unsure = speculative_decode(model, ids, STEPS, 1, 4, stop_below=1.0)
    assert torch.equal(unsure.tokens, reference)
    assert (unsure.drafted, unsure.passes) == (0, STEPS)
    assert unsure.draft_heads == STEPS - 1     # every round but the last one tried once
    sure = speculative_decode(model, ids, STEPS, 1, 4, stop_below=1e-9)
    fixed = speculative_decode(model, ids, STEPS, 1, 4)
    assert (sure.drafted, sure.accepted, sure.passes) == (fixed.drafted, fixed.accepted,
                                                          fixed.passes)
    assert fixed.draft_heads == fixed.drafted
    with pytest.raises(ValueError, match="stop_below"):
        speculative_decode(model, ids, STEPS, 1, 4, stop_below=1.5)


def test_the_final_head_is_the_logit_lens_and_an_unknown_head_is_refused():
    model = make("multi_exit")
    h = torch.randn(2, 32, dtype=torch.double, device=DEVICE)
    torch.testing.assert_close(draft_reader(model, "final")(h, 1),
                               model.model.lm_head(model.model.transformer.ln_f(h)))
    torch.testing.assert_close(draft_reader(model, "exit")(h, 1), model.exit_heads[0](h))
    with pytest.raises(ValueError, match="draft head"):
        draft_reader(model, "lens")


@pytest.mark.parametrize("method", METHODS)
def test_the_replay_counts_what_decoding_with_a_fixed_draft_length_does(method):
    """Exact for a fixed length; with a stop threshold, exact where no draft is rejected."""
    model = make(method)
    for seed in range(3):
        ids = prompt(4, seed=10 + seed)
        trace = trace_drafts(model, ids, STEPS, [1, 2, LAYERS])
        assert torch.equal(trace.tokens, greedy_decode(model, ids, STEPS))
        for exit_layer in (1, 2, LAYERS):
            for head in ("exit", "final"):
                for length in (1, 3):
                    plan = DraftPlan(exit_layer, length, head)
                    counted, decoded = replay(trace, plan, LAYERS), plan.decode(model, ids,
                                                                                 STEPS)
                    assert (counted.drafted, counted.accepted, counted.passes,
                            counted.draft_heads) == (decoded.drafted, decoded.accepted,
                                                     decoded.passes, decoded.draft_heads)
        # the full model as draft is never wrong, so a stopped draft replays exactly too
        assert trace.right[LAYERS, "exit"].all()
        plan = DraftPlan(LAYERS, 4, "exit", 0.5)
        counted, decoded = replay(trace, plan, LAYERS), plan.decode(model, ids, STEPS)
        assert (counted.drafted, counted.passes, counted.draft_heads) == (
            decoded.drafted, decoded.passes, decoded.draft_heads)


def test_timing_and_the_choice_report_complete_records():
    model, prompts = make(), [prompt(length, seed=length) for length in (1, 4)]
    plans = {"fixed": DraftPlan(2, 2), "adaptive": DraftPlan(1, 3, "final", 0.2)}
    timed = time_plans(model, prompts, 6, plans, warmup=0, repeats=1)
    assert list(timed["plan"]) == ["fixed", "adaptive"] and timed["equal_to_full_depth"].all()
    assert (timed["tokens_per_s_speculative"] > 0).all()
    assert (timed["wall_speedup_q1"] <= timed["wall_speedup"]).all()
    assert (timed["wall_speedup"] <= timed["wall_speedup_q3"]).all()
    assert timed["acceptance"].between(0, 1).all() and timed["tokens_per_pass"].between(1, 3).all()
    assert (timed["device"] == DEVICE.type).all() and (timed["prompts"] == 2).all()
    assert list(timed["head"]) == ["exit", "final"] and list(timed["stop_below"]) == [0.0, 0.2]

    chosen, grid = choose_plans(model, prompts, 6, [1, LAYERS], [1, 2], [0.3], warmup=0,
                                repeats=1)
    # every exit, head, length and threshold (0: never stop) replayed
    assert len(grid) == 2 * 2 * 2 * 2 and grid["predicted_speedup"].gt(0).all()
    assert set(chosen) == {"fixed", "adaptive"}
    assert chosen["fixed"].stop_below == 0 and chosen["adaptive"].stop_below == 0.3
    # of each kind the plan predicted fastest is chosen, and timed
    timed = grid.dropna(subset=["timed_tokens_per_s"])
    assert sorted(timed["kind"]) == ["adaptive", "fixed"]
    for kind, plan in chosen.items():
        rows = grid[grid["kind"] == kind]
        best = rows.loc[rows["predicted_speedup"].idxmax()]
        assert plan == DraftPlan(int(best["exit_layer"]), int(best["draft_length"]),
                                 best["head"], float(best["stop_below"]))
        assert timed.loc[timed["kind"] == kind, "predicted_speedup"].item() == pytest.approx(
            best["predicted_speedup"])


def test_the_study_times_the_drafts_chosen_on_validation_and_replays_every_exit(monkeypatch):
    """The fixed and the adaptive draft chosen on the validation prompts timed on test, the
    one faster on validation marked; then one row per exit layer at the fixed draft's head
    and length, beside the share of test tokens whose prediction at E equals layer L's."""
    import layerwise.exits.speculative as speculative

    model = make("aligned")
    seen = {}
    real = speculative.choose_plans

    def choose(model, prompts, *args, **kwargs):
        seen["prompts"], seen["repeats"] = prompts, kwargs.get("repeats")
        return real(model, prompts, *args, **kwargs)

    monkeypatch.setattr(speculative, "choose_plans", choose)
    val, test = [prompt(3, seed=1)], [prompt(4, seed=2), prompt(5, seed=3)]
    predictions = torch.tensor([[1, 2, 3, 4], [1, 2, 0, 4], [1, 0, 3, 0]])   # (L, N)
    frame = speculative_study(model, val, test, 5, [1, 2], [2, 4], [0.2], predictions,
                              warmup=0, repeats=2)
    assert seen["prompts"] is val and seen["repeats"] == 1   # validation only ranks two plans
    timed, exits = frame[frame["kind"] != "exit"], frame[frame["kind"] == "exit"]
    assert list(timed["kind"]) == ["fixed", "adaptive"] and timed["chosen"].sum() == 1
    assert timed["equal_to_full_depth"].all() and (timed["prompts"] == 2).all()
    assert timed["val_predicted_speedup"].gt(0).all()
    fixed = timed.iloc[0]
    assert list(exits["exit_layer"]) == [1, 2] and not exits["chosen"].any()
    assert (exits["draft_length"] == fixed["draft_length"]).all()
    assert (exits["head"] == fixed["head"]).all()
    assert exits["layer_agreement"].tolist() == pytest.approx([2 / 4, 1 / 4])
    with pytest.raises(ValueError, match="stop thresholds"):
        speculative_study(model, val, test, 5, [1], [2], [], predictions, warmup=0, repeats=1)
