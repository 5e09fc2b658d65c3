"""Generation with the exit fixed at layer k (nucleus sampling with a cache of k blocks), against
a cache-free recomputation, greedy decoding and torch.multinomial; SimCTG's diversity on
hand-computed texts; SimCSE coherence on a tiny BERT saved here, and its substitute against
transformers' own GPT-2 forward."""

import math

import pytest
import torch
import torch.nn.functional as F

from layerwise.exits.decoding import greedy_decode
from layerwise.exits.generation import (SIMCSE_MEASURE, SUBSTITUTE_MEASURE, SimCSE,
                                        continuation_cross_entropy, diversity, generate_at_exit,
                                        generation_frame, measure_coherence, ngram_counts,
                                        nucleus, sample_next)
from layerwise.train.runs import build_run_model

SPEC = dict(arch="gpt2", depth=3, width=32, heads=4, mlp_ratio=2.0, head_input="raw",
            pretrained="")
VOCAB, LAYERS, STEPS = 50, 3, 8
INFO = dict(vocab_size=VOCAB, num_classes=VOCAB, max_length=32, pad_id=0)


def make(method="aligned", seed=0):
    """A tiny random GPT-2 in double precision (no sampled token sits on rounding), its weight
    matrices drawn wider than GPT-2's init so that the layers predict different tokens."""
    torch.manual_seed(seed)
    model = build_run_model({"method": method, "model": SPEC}, INFO).double().eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.normal_(std=0.2)
    return model


def prefix(length=5, seed=0):
    return torch.randint(1, VOCAB, (length,), generator=torch.Generator().manual_seed(seed))


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def recomputed(model, ids, steps, layer, top_p, generator, head=None):
    """Generation that runs the whole sequence through `layer` blocks without a cache at every
    step; `head` replaces the exit's logits when given."""
    tokens = []
    for _ in range(steps):
        state = model.embed(ids[None])
        for index in range(layer):
            state = model.block(index, state)
        h = state.hidden[:, -1]
        logits = head(h) if head is not None else model.exit_logits(h, layer)
        token = sample_next(logits, top_p, generator)[0]
        ids = torch.cat([ids, token])
        tokens.append(int(token))
    return torch.tensor(tokens)


# --- diversity -----------------------------------------------------------------------------------
def test_all_distinct_words_have_diversity_one():
    scores = diversity(["a b c d e f g", "h i j k l"])
    assert scores == {"rep_2": 0.0, "rep_3": 0.0, "rep_4": 0.0, "diversity": 1.0}


def test_repetitive_text_has_low_diversity_counted_as_simctg_does():
    # "a b a b a b a b": bigrams ab ba ab ba ab ba ab; SimCTG drops the last one: 6 counted,
    # 2 unique. Trigrams: 6, 5 counted, 2 unique. 4-grams: 5, 4 counted, 2 unique.
    scores = diversity(["a b a b a b a b"])
    assert scores["rep_2"] == pytest.approx(1 - 2 / 6)
    assert scores["rep_3"] == pytest.approx(1 - 2 / 5)
    assert scores["rep_4"] == pytest.approx(1 - 2 / 4)
    assert scores["diversity"] == pytest.approx(2 / 6 * 2 / 5 * 2 / 4)


def test_counting_every_ngram_differs_from_simctg_by_the_last_one():
    scores = diversity(["a b a b a b a b"], drop_last=False)
    assert scores["rep_2"] == pytest.approx(1 - 2 / 7)
    assert scores["diversity"] == pytest.approx(2 / 7 * 2 / 6 * 2 / 5)
    # "x y z x y": SimCTG counts bigrams xy yz zx (the repeated xy at the end is dropped)
    assert ngram_counts("x y z x y".split(), 2) == (3, 3)
    assert ngram_counts("x y z x y".split(), 2, drop_last=False) == (3, 4)


def test_unique_ngrams_are_counted_per_text_and_summed():
    # the same text twice: each text's bigrams are unique within it, so no repetition
    scores = diversity(["a b c d e", "a b c d e"])
    assert scores["rep_2"] == 0.0 and scores["diversity"] == 1.0
    # whitespace of any kind splits words
    assert diversity(["a  b\nc\td e"]) == diversity(["a b c d e"])


def test_texts_too_short_for_an_ngram_give_nan():
    scores = diversity(["a b c d"])   # one 4-gram, dropped as SimCTG does
    assert scores["rep_2"] == pytest.approx(0.0) and math.isnan(scores["rep_4"])
    assert math.isnan(scores["diversity"])
    assert diversity(["a b c d"], drop_last=False)["diversity"] == 1.0


# --- nucleus sampling ----------------------------------------------------------------------------
def test_the_nucleus_is_the_smallest_set_reaching_p():
    logits = torch.tensor([0.15, 0.5, 0.05, 0.3], dtype=torch.float64).log()
    assert nucleus(logits, 0.45).tolist() == [0, 1, 0, 0]
    assert nucleus(logits, 0.79).tolist() == pytest.approx([0, 0.5 / 0.8, 0, 0.3 / 0.8])
    assert nucleus(logits, 0.81).tolist() == pytest.approx([0.15 / 0.95, 0.5 / 0.95, 0,
                                                            0.3 / 0.95])
    assert nucleus(logits, 1e-9).tolist() == [0, 1, 0, 0]
    # a set whose mass equals p exactly has reached it: the next token stays out
    ranked = logits.softmax(-1).sort(descending=True).values.cumsum(-1)
    assert nucleus(logits, ranked[0].item()).tolist() == [0, 1, 0, 0]
    assert (nucleus(logits, ranked[1].item()) > 0).tolist() == [False, True, False, True]
    with pytest.raises(ValueError):
        nucleus(logits, 0.0)


def test_the_nucleus_matches_a_loop_over_the_ranked_tokens():
    logits = torch.randn(4, 30, generator=seeded(1), dtype=torch.float64)
    for p in (0.3, 0.7, 0.95):
        kept = nucleus(logits, p) > 0
        for row, probs in enumerate(logits.softmax(-1)):
            mass, expected = 0.0, set()
            for token in probs.argsort(descending=True).tolist():
                expected.add(token)
                mass += probs[token].item()
                if mass >= p:
                    break
            assert set(kept[row].nonzero().flatten().tolist()) == expected


def test_p_one_draws_as_multinomial_on_the_full_softmax():
    logits = torch.randn(1, VOCAB, generator=seeded(2), dtype=torch.float64)
    ours, theirs = seeded(3), seeded(3)
    draws = [int(sample_next(logits, 1.0, ours)) for _ in range(200)]
    expected = [int(torch.multinomial(logits.softmax(-1), 1, generator=theirs))
                for _ in range(200)]
    assert draws == expected
    assert len(set(draws)) > 10   # the draws spread over the vocabulary, not one token


def test_tiny_p_is_greedy_decoding_at_full_depth():
    model, ids = make(), prefix()
    sampled = generate_at_exit(model, ids, STEPS, LAYERS, 1e-9, seeded())
    assert torch.equal(sampled, greedy_decode(model, ids, STEPS))


# --- generation at layer k -------------------------------------------------------------------
@pytest.mark.parametrize("method", ["aligned", "multi_exit"])
@pytest.mark.parametrize("layer", [1, 2, LAYERS])
@pytest.mark.parametrize("top_p", [0.9, 1.0])
def test_the_cache_of_k_blocks_gives_the_recomputed_tokens(method, layer, top_p):
    model, ids = make(method), prefix(seed=layer)
    sampled = generate_at_exit(model, ids, STEPS, layer, top_p, seeded(7))
    assert torch.equal(sampled, recomputed(model, ids, STEPS, layer, top_p, seeded(7)))
    assert len(set(sampled.tolist())) > 1


def test_blocks_above_k_never_run(monkeypatch):
    model, ran = make(), []
    block = model.block
    monkeypatch.setattr(model, "block", lambda index, *a: ran.append(index) or block(index, *a))
    generate_at_exit(model, prefix(), STEPS, 2, 0.9, seeded())
    assert set(ran) == {0, 1} and len(ran) == 2 * STEPS


def test_a_multi_exit_model_samples_from_its_own_head_at_k():
    model, ids, layer = make("multi_exit"), prefix(seed=4), 2
    sampled = generate_at_exit(model, ids, STEPS, layer, 1e-9, seeded())
    own = recomputed(model, ids, STEPS, layer, 1e-9, seeded(), head=model.exit_heads[layer - 1])
    shared = recomputed(model, ids, STEPS, layer, 1e-9, seeded(),
                        head=lambda h: model.classify(h, layer))
    assert torch.equal(sampled, own) and not torch.equal(sampled, shared)


def test_generation_is_deterministic_given_the_generator():
    model, ids = make(), prefix()
    first = generate_at_exit(model, ids, STEPS, 2, 0.95, seeded(5))
    assert torch.equal(first, generate_at_exit(model, ids, STEPS, 2, 0.95, seeded(5)))
    assert not torch.equal(first, generate_at_exit(model, ids, STEPS, 2, 0.95, seeded(6)))
    with pytest.raises(ValueError):
        generate_at_exit(model, ids, STEPS, LAYERS + 1, 0.95, seeded())


# --- coherence -----------------------------------------------------------------------------------
WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "fast", "red", "##s"]


@pytest.fixture(scope="module")
def tiny_simcse(tmp_path_factory):
    """A random tiny BERT and a WordPiece tokenizer, saved as transformers saves a checkpoint.
    At BERT's own init (std 0.02) every text's [CLS] state is nearly the same; a wider init
    gives embeddings whose cosines differ between texts."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("simcse")
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"   # outside the checkpoint folder
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        initializer_range=0.5)
    BertModel(config).save_pretrained(folder)
    return folder


def in_vocabulary(ids):
    """Token ids as words the tiny BERT's tokenizer knows."""
    return " ".join(WORDS[i % len(WORDS)] for i in ids)


def by_hand(folder, text, pooled=True):
    """A text's embedding from the model's outputs: the pooler (tanh of a dense layer) over the
    [CLS] state, or that state itself."""
    from transformers import AutoTokenizer, BertModel

    tokenizer, model = AutoTokenizer.from_pretrained(folder), BertModel.from_pretrained(folder)
    with torch.no_grad():
        cls = model.eval()(**tokenizer(text, return_tensors="pt")).last_hidden_state[0, 0]
        return torch.tanh(model.pooler.dense(cls)) if pooled else cls


def cosine(u, v):
    return (u @ v / (u.norm() * v.norm())).item()


def test_simcse_coherence_is_the_mean_pooler_cosine(tiny_simcse):
    prefixes = ["the cat sat on the mat", "a dog"]
    continuations = ["dogs ran fast", "the red cat sat on a mat"]
    encoder = SimCSE(tiny_simcse, device="cpu")
    pooled = [cosine(by_hand(tiny_simcse, p), by_hand(tiny_simcse, c))
              for p, c in zip(prefixes, continuations)]
    assert encoder.coherence(prefixes, continuations) == pytest.approx(sum(pooled) / 2, abs=1e-5)
    cls = [cosine(by_hand(tiny_simcse, p, False), by_hand(tiny_simcse, c, False))
           for p, c in zip(prefixes, continuations)]
    assert abs(sum(cls) / 2 - sum(pooled) / 2) > 1e-3   # the test tells the two embeddings apart


def test_the_substitute_is_transformers_cross_entropy_of_the_continuation():
    model, ids = make(), prefix()
    continuation = prefix(length=6, seed=9)
    with torch.no_grad():
        logits = model.model(torch.cat([ids, continuation])[None]).logits[0]
    log_probs = logits.log_softmax(-1)
    expected = -sum(log_probs[len(ids) - 1 + i, token] for i, token in
                    enumerate(continuation.tolist())) / len(continuation)
    assert continuation_cross_entropy(model, ids, continuation) == pytest.approx(
        float(expected), rel=1e-10)


def test_coherence_is_simcse_with_an_encoder_else_the_labelled_substitute(tiny_simcse):
    model = make()
    prefixes, continuations = [prefix(seed=1), prefix(seed=2)], [prefix(4, 3), prefix(4, 4)]
    measure, value = measure_coherence(model, prefixes, continuations, in_vocabulary)
    assert measure == SUBSTITUTE_MEASURE
    assert value == pytest.approx(sum(continuation_cross_entropy(model, p, c) for p, c in
                                      zip(prefixes, continuations)) / 2)
    encoder = SimCSE(tiny_simcse, device="cpu")
    measure, value = measure_coherence(model, prefixes, continuations, in_vocabulary, encoder)
    assert measure == SIMCSE_MEASURE
    texts = [[in_vocabulary(ids.tolist()) for ids in part] for part in (prefixes, continuations)]
    assert value == pytest.approx(encoder.coherence(*texts))


# --- the figure's table --------------------------------------------------------------------------
def words(ids):
    return " ".join(f"w{i % 7}" for i in ids)   # few words, so that n-grams repeat


@pytest.mark.parametrize("method", ["aligned", "multi_exit"])
def test_the_frame_has_one_row_per_layer_on_the_same_draws(method):
    model, prefixes = make(method), [prefix(seed=s) for s in range(3)]
    frame = generation_frame(model, prefixes, words, [1, 2, 3], 12, 0.95, seed=10)
    assert frame["exit_layer"].tolist() == [1, 2, 3]
    assert set(frame["coherence_measure"]) == {SUBSTITUTE_MEASURE}
    for row in frame.itertuples():
        generated = [generate_at_exit(model, p, 12, row.exit_layer, 0.95, seeded(10 + i))
                     for i, p in enumerate(prefixes)]
        scores = diversity(words(g.tolist()) for g in generated)
        assert (row.rep_2, row.rep_3, row.rep_4, row.diversity) == (
            scores["rep_2"], scores["rep_3"], scores["rep_4"], scores["diversity"])
        assert row.coherence == pytest.approx(
            sum(continuation_cross_entropy(model, p, g) for p, g in zip(prefixes, generated)) / 3)
    assert frame["diversity"].between(0, 1).all() and frame["diversity"].nunique() > 1


def test_one_judge_scores_every_method_s_text():
    """With a judge, the substitute is the judge's cross-entropy of each method's text, so two
    methods sampling the same text score the same whatever their own models say of it."""
    judge, prefixes = make("standard", seed=7), [prefix(seed=s) for s in range(2)]
    for method in ("aligned", "multi_exit"):
        model = make(method)
        frame = generation_frame(model, prefixes, words, [1, 3], 8, 0.95, seed=4, judge=judge)
        own = generation_frame(model, prefixes, words, [1, 3], 8, 0.95, seed=4)
        for row in frame.itertuples():
            generated = [generate_at_exit(model, p, 8, row.exit_layer, 0.95, seeded(4 + i))
                         for i, p in enumerate(prefixes)]
            assert row.coherence == pytest.approx(sum(
                continuation_cross_entropy(judge, p, g) for p, g in zip(prefixes, generated)) / 2)
        assert frame["diversity"].tolist() == own["diversity"].tolist()   # the same texts
        assert frame["coherence"].tolist() != pytest.approx(own["coherence"].tolist())


def test_the_frame_with_an_encoder_path_reports_simcse(tiny_simcse):
    model, prefixes = make(), [prefix(seed=s) for s in range(2)]
    frame = generation_frame(model, prefixes, in_vocabulary, [2], 6, 0.95, seed=0,
                             coherence=tiny_simcse)
    assert len(frame) == 1 and frame.loc[0, "coherence_measure"] == SIMCSE_MEASURE
    generated = [generate_at_exit(model, p, 6, 2, 0.95, seeded(i)) for i, p in enumerate(prefixes)]
    texts = [[in_vocabulary(ids.tolist()) for ids in part] for part in (prefixes, generated)]
    expected = SimCSE(tiny_simcse, device="cpu").coherence(*texts)
    assert frame.loc[0, "coherence"] == pytest.approx(expected, abs=1e-6)


def test_a_batch_of_prefixes_samples_what_each_prefix_alone_does():
    model, ids = make(), torch.stack([prefix(seed=s) for s in range(3)])
    batched = generate_at_exit(model, ids, STEPS, 2, 0.95, [seeded(s) for s in range(3)])
    alone = [generate_at_exit(model, row, STEPS, 2, 0.95, seeded(s)) for s, row in enumerate(ids)]
    assert batched.shape == (3, STEPS) and torch.equal(batched, torch.stack(alone))
    with pytest.raises(ValueError, match="one generator each"):
        generate_at_exit(model, ids, STEPS, 2, 0.95, [seeded()])
