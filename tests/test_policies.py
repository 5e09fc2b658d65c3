"""The exit policies' records: the margin policy against a hand computation, and for every
policy the online rule against the offline exit layers, the never-exiting threshold, the
registry's order and titles, and an import that leaves torch alone."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from layerwise.exits.offline import (candidate_thresholds, evaluate_policy, exit_layers, passes,
                                     policy_scores)
from layerwise.exits.policies import POLICIES, lookup, margin

ROOT = Path(__file__).resolve().parents[1]

# Three layers, three samples, three classes, as probabilities so that margins are known.
# Layer 1: sample 0 is the more confident (.50 > .40) but sample 1 has the wider margin
# (.10 > .05), so margin and confidence disagree on who leaves first.
PROBS = torch.tensor([
    [[0.50, 0.45, 0.05], [0.40, 0.30, 0.30], [0.60, 0.20, 0.20]],
    [[0.60, 0.38, 0.02], [0.70, 0.15, 0.15], [0.45, 0.44, 0.11]],
    [[0.90, 0.05, 0.05], [0.34, 0.33, 0.33], [0.50, 0.30, 0.20]],
])
LOGITS = PROBS.log()
MARGINS = torch.tensor([[0.05, 0.10, 0.40], [0.22, 0.55, 0.01], [0.85, 0.01, 0.20]])


def test_margin_is_top1_minus_top2_probability():
    torch.testing.assert_close(margin(LOGITS), MARGINS)
    torch.testing.assert_close(policy_scores("margin", LOGITS), MARGINS)


def test_margin_policy_exits_at_the_first_layer_with_a_wide_margin():
    assert exit_layers("margin", LOGITS, 0.08).tolist() == [2, 1, 1]
    assert exit_layers("margin", LOGITS, 0.3).tolist() == [3, 2, 1]
    assert exit_layers("margin", LOGITS, 0.5).tolist() == [3, 2, 3]
    assert exit_layers("margin", LOGITS, 0.6).tolist() == [3, 3, 3]
    assert exit_layers("margin", LOGITS, math.inf).tolist() == [3, 3, 3]
    # confidence lets sample 0 out at layer 1 and keeps sample 1: the other way round
    assert exit_layers("confidence", LOGITS, 0.45).tolist() == [1, 2, 1]


def test_margin_thresholds_are_quantiles_of_layers_before_the_last():
    thresholds = candidate_thresholds("margin", LOGITS, points=5)
    assert thresholds[-1] == math.inf and thresholds == sorted(thresholds)
    # float32 softmax: a few ulps apart on some CPUs
    assert thresholds[0] == pytest.approx(0.01, abs=1e-6)
    assert thresholds[-2] == pytest.approx(0.55, abs=1e-6)
    assert exit_layers("margin", LOGITS, thresholds[0]).tolist() == [1, 1, 1]


def test_margin_has_an_operating_point_chosen_on_validation():
    torch.manual_seed(2)
    val = (torch.randn(5, 60, 4) * torch.arange(1, 6).view(5, 1, 1), torch.randint(0, 4, (60,)))
    test = (torch.randn(5, 40, 4) * 3, torch.randint(0, 4, (40,)))
    curves, point, layers = evaluate_policy("margin", val, test, 0.05, 20)
    assert point["threshold"] in candidate_thresholds("margin", val[0], 20)
    assert torch.equal(layers, exit_layers("margin", test[0], point["threshold"]))
    assert curves.groupby("split")["selected"].sum().tolist() == [1, 1]


# --- every policy ----------------------------------------------------------------------------
def online_exit_layers(policy: str, logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Exit layers of the online rule run as real early exit does: layer by layer on the samples
    still in the batch, those that exit removed; each decision is checked against the offline
    pass flags of the same samples."""
    rule = lookup(policy).rule(threshold)
    offline = passes(policy, policy_scores(policy, logits), threshold)
    last, batch = logits.shape[:2]
    remaining = torch.arange(batch)
    layers = torch.full((batch,), last)
    for layer in range(1, last):
        out = rule.decide(logits[layer - 1, remaining])
        assert torch.equal(out, offline[layer - 1, remaining]), (policy, threshold, layer)
        layers[remaining[out]] = layer
        stay = (~out).nonzero().squeeze(1)
        remaining = remaining[stay]
        rule.keep(stay)
    return layers


@pytest.mark.parametrize("policy", list(POLICIES))
def test_online_rule_decides_as_the_offline_exit_layers(policy):
    torch.manual_seed(0)
    logits = torch.randn(6, 300, 3) * torch.linspace(0.5, 3, 6).view(6, 1, 1)
    patterns = set()
    for threshold in candidate_thresholds(policy, logits, points=15):
        expected = exit_layers(policy, logits, threshold)
        assert torch.equal(online_exit_layers(policy, logits, threshold), expected), threshold
        patterns.add(len(expected.unique()))
    assert max(patterns) >= 4  # some threshold spreads the exits over many layers


@pytest.mark.parametrize("policy", list(POLICIES))
def test_last_candidate_threshold_never_exits_early(policy):
    torch.manual_seed(1)
    logits = torch.randn(5, 50, 4) * 4
    never = candidate_thresholds(policy, logits, points=10)[-1]
    assert (exit_layers(policy, logits, never) == 5).all()
    expected = {True: math.inf, False: -math.inf}[POLICIES[policy].higher_passes]
    assert never == (5 if policy == "patience" else expected)


def test_registry_order_and_figure_titles():
    assert list(POLICIES) == ["confidence", "entropy", "patience", "margin"]
    assert {name: p.label for name, p in POLICIES.items()} == {
        "confidence": "max-softmax confidence (paper)", "entropy": "entropy (DeeBERT)",
        "patience": "patience (PABEE)", "margin": "top-1 − top-2 margin (CALM)"}
    assert all(p.name == name for name, p in POLICIES.items())


def test_unknown_policy_names_the_known_ones():
    with pytest.raises(ValueError, match="known: confidence, entropy, patience, margin"):
        exit_layers("fastest", LOGITS, 0.5)


def test_registry_imports_without_torch():
    code = "import sys, layerwise.exits.policies; print('torch' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
