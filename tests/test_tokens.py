"""The language model's streaming token analysis against the in-memory path on a tiny GPT-2:
per-layer metrics against a direct computation, exits against LayerExits of the stored logits,
streamed similarity frames against the in-memory ones, and the tied weights' round trip."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from layerwise.data import IGNORE
from layerwise.exits.offline import LayerExits, evaluate_policy
from layerwise.exits.policies import POLICIES
from layerwise.hidden.extract import predict_layers
from layerwise.data.prepared import subset_order
from layerwise.hidden.tokens import (finish_similarity, sample_positions, summarize_split,
                                     train_subset)
from layerwise.io import load_tensors, save_tensors
from layerwise.train.runs import build_run_model
from layerwise.similarity.measures import similarity_frame, streamed_similarity_frame
from layerwise.similarity.streaming import StreamingSimilarity

SPEC = dict(arch="gpt2", depth=3, width=16, heads=2, mlp_ratio=2.0, head_input="raw",
            pretrained="")
VOCAB, LENGTH = 40, 12
INFO = dict(vocab_size=VOCAB, num_classes=VOCAB, max_length=LENGTH, pad_id=0)


def model_of(method="standard"):
    torch.manual_seed(0)
    return build_run_model({"method": method, "model": SPEC}, INFO).eval()


def blocks(n=7, seed=0):
    """Token blocks whose last ones are padded like cut_blocks pads a document's end."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(1, VOCAB, (n, LENGTH), generator=generator)
    y = torch.randint(1, VOCAB, (n, LENGTH), generator=generator)
    for row, real in ((n - 1, 5), (n - 2, 1)):
        x[row, real:], y[row, real:] = 0, IGNORE
    return x, y


@pytest.mark.parametrize("method", ["standard", "multi_exit"])
def test_split_summary_matches_the_stored_logits(method):
    model, (x, y) = model_of(method), blocks()
    summary, _ = summarize_split(model, x, y, list(POLICIES), batch_size=3)
    _, logits, targets = predict_layers(model, x, y)
    assert summary.tokens == int((y != IGNORE).sum()) == len(targets)
    log_p = logits.double().log_softmax(-1)
    nll = -log_p.gather(-1, targets.expand(len(logits), -1)[..., None])[..., 0]
    np.testing.assert_allclose(summary.cross_entropy, nll.mean(1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(summary.perplexity, np.exp(nll.mean(1).numpy()), rtol=1e-5)
    np.testing.assert_allclose(summary.accuracy,
                               (logits.argmax(-1) == targets).double().mean(1).numpy())
    stored = LayerExits.from_logits(logits[1:], targets, list(POLICIES), nll=True)
    assert torch.equal(summary.exits.predictions, stored.predictions)
    assert torch.equal(summary.exits.labels, stored.labels)
    for policy in POLICIES:
        torch.testing.assert_close(summary.exits.score(policy), stored.score(policy))
    torch.testing.assert_close(summary.exits.nll, stored.nll)


def test_streamed_similarity_equals_the_in_memory_frame():
    model, (x, y) = model_of(), blocks()
    similarity = StreamingSimilarity()
    summarize_split(model, x, y, ["confidence"], batch_size=2, similarity=similarity)
    finish_similarity(model, x, y, 4, similarity)  # another batching: same tokens
    reps, _, _ = predict_layers(model, x, y)
    cka = ("linear_biased", "linear_unbiased")
    expected = similarity_frame(reps.double(), cka)
    got = streamed_similarity_frame(similarity, cka + ("rbf",))  # rbf cannot be streamed
    assert list(got["measure"].unique()) == list(expected["measure"].unique())
    pd.testing.assert_frame_equal(got[["measure", "layer_a", "layer_b"]],
                                  expected[["measure", "layer_a", "layer_b"]])
    np.testing.assert_allclose(got["value"], expected["value"], rtol=1e-6, atol=1e-9)


def test_kept_states_are_the_sampled_tokens():
    model, (x, y) = model_of(), blocks()
    total = int((y != IGNORE).sum())
    keep = sample_positions(total, 10, seed=3)
    assert keep.tolist() == sorted(set(keep.tolist())) and len(keep) == 10
    assert sample_positions(total, 10, seed=3).tolist() == keep.tolist()
    assert sample_positions(5, 10, seed=3).tolist() == [0, 1, 2, 3, 4]
    _, states = summarize_split(model, x, y, ["confidence"], batch_size=2, keep=keep)
    reps, _, _ = predict_layers(model, x, y)
    torch.testing.assert_close(states, reps[:, keep])


def test_exit_sweep_reports_the_cross_entropy_at_the_exits():
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 50, 6) * 3, torch.randint(0, 6, (50,))
    exits = LayerExits.from_logits(logits, labels, ["confidence"], nll=True)
    never = LayerExits.from_logits(logits, labels, ["confidence"], nll=True)
    _, point, layers = evaluate_policy("confidence", exits, never, 1.0, 10)
    # the exit layer of every token reads that layer's loss
    expected = -logits.log_softmax(-1)[layers - 1, torch.arange(50), labels].double().mean()
    assert point["cross_entropy"] == pytest.approx(expected.item())
    assert point["full_depth_cross_entropy"] == pytest.approx(
        -logits[-1].log_softmax(-1)[torch.arange(50), labels].double().mean().item())
    # pairs of (logits, labels) still work and give the same operating point, without loss
    _, plain, _ = evaluate_policy("confidence", (logits, labels), (logits, labels), 1.0, 10)
    assert plain["threshold"] == point["threshold"] and "cross_entropy" not in plain
    assert math.isclose(plain["accuracy"], point["accuracy"])


@pytest.mark.parametrize("tokens", [1, 12, 13, 30, 60])
def test_the_training_subset_is_the_fewest_blocks_holding_the_tokens(tokens):
    x, y = blocks(n=7)                       # 6 blocks of 12 targets each, minus the padded ones
    order = subset_order(len(y))
    sub_x, sub_y = train_subset(x, y, tokens)
    held = int((sub_y != IGNORE).sum())
    assert held >= tokens
    chosen = order[:len(sub_y)].sort().values
    assert torch.equal(sub_x, x[chosen]) and torch.equal(sub_y, y[chosen])
    fewer = order[:len(sub_y) - 1]
    assert int((y[fewer] != IGNORE).sum()) < tokens       # one block fewer would not do


@pytest.mark.parametrize("tokens", [None, 66, 10_000])
def test_the_training_subset_is_everything_when_the_split_is_short(tokens):
    x, y = blocks(n=7)                       # 66 targets in all
    sub_x, sub_y = train_subset(x, y, tokens)
    assert sub_x is x and sub_y is y


def test_tied_weights_survive_a_save_and_load(tmp_path):
    model = model_of("multi_exit")
    path = tmp_path / "model.safetensors"
    save_tensors(path, model.state_dict(), {"spec_hash": "x"})
    loaded = model_of("multi_exit")
    torch.nn.init.zeros_(loaded.model.transformer.wte.weight)
    loaded.load_state_dict(load_tensors(path)[0])
    assert loaded.model.lm_head.weight is loaded.model.transformer.wte.weight
    x, _ = blocks()
    torch.testing.assert_close(loaded(x), model(x))
