"""Early exit against hand computations: policies, speed-up and FLOPs, the operating point
(chosen without test data), saturation, effective depth, parameter savings, and real early exit
with compaction against computing every layer."""

import inspect
import math

import pytest
import torch

from layerwise.exits import offline as exits
from layerwise.exits import policies
from layerwise.exits.online import early_exit, flop_profile, time_operating_points
from layerwise.exits.offline import (FlopProfile, LayerExits, candidate_thresholds, evaluate_policy,
                                     exit_layers, exit_metrics, select_threshold, speedup)
from layerwise.exits.parameters import multi_exit_parameters, parameter_saving
from layerwise.train.runs import build_run_model
from layerwise.reference import paper_values
from layerwise.exits.saturation import effective_depth, layer_histogram, saturation_layers

# Four layers, three samples, three classes, given as probabilities so that confidences and
# entropies are known exactly. Sample 0 is confident from layer 2, sample 1 only at layer 4,
# sample 2 never.
PROBS = torch.tensor([
    [[0.50, 0.25, 0.25], [0.40, 0.30, 0.30], [0.34, 0.33, 0.33]],
    [[0.90, 0.05, 0.05], [0.60, 0.20, 0.20], [0.34, 0.33, 0.33]],
    [[0.95, 0.03, 0.02], [0.70, 0.20, 0.10], [0.33, 0.34, 0.33]],
    [[0.98, 0.01, 0.01], [0.10, 0.85, 0.05], [0.33, 0.33, 0.34]],
])
LOGITS = PROBS.log()


def hand_entropy(p):
    return -sum(x * math.log(x) for x in p)


def test_confidence_policy_exits_at_the_first_confident_layer():
    # max p of sample 0: .5 .9 .95 .98; sample 1: .4 .6 .7 .85; sample 2: ~.34 throughout
    assert exit_layers("confidence", LOGITS, 0.8).tolist() == [2, 4, 4]
    assert exit_layers("confidence", LOGITS, 0.65).tolist() == [2, 3, 4]
    assert exit_layers("confidence", LOGITS, 0.5).tolist() == [1, 2, 4]
    assert exit_layers("confidence", LOGITS, math.inf).tolist() == [4, 4, 4]


def test_entropy_policy_uses_the_softmax_entropy():
    torch.testing.assert_close(policies.entropy(LOGITS[1, 0]),
                               torch.tensor(hand_entropy([0.9, 0.05, 0.05])))
    threshold = hand_entropy([0.9, 0.05, 0.05]) + 1e-4  # 0.394: only peaked layers pass
    assert exit_layers("entropy", LOGITS, threshold).tolist() == [2, 4, 4]
    threshold = hand_entropy([0.7, 0.2, 0.1]) + 1e-4  # 0.802
    assert exit_layers("entropy", LOGITS, threshold).tolist() == [2, 3, 4]
    assert exit_layers("entropy", LOGITS, -math.inf).tolist() == [4, 4, 4]


def test_patience_policy_counts_unchanged_predictions():
    # predictions per layer: sample 0: 0 0 0 0; sample 1: 0 0 0 1; sample 2: 0 0 1 2
    assert LOGITS.argmax(-1).T.tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 2]]
    assert exit_layers("patience", LOGITS, 1).tolist() == [2, 2, 2]
    assert exit_layers("patience", LOGITS, 2).tolist() == [3, 3, 4]
    assert exit_layers("patience", LOGITS, 3).tolist() == [4, 4, 4]
    assert exit_layers("patience", LOGITS, 0).tolist() == [1, 1, 1]


def test_speedup_is_the_papers_formula():
    layers = torch.tensor([1, 2, 3, 4, 4])
    assert speedup(layers, 4) == pytest.approx(4 * 5 / 14)
    assert speedup(torch.full((7,), 12), 12) == 1.0


def test_flops_count_every_head_evaluated_up_to_the_exit():
    profile = FlopProfile(embed=10.0, blocks=(100.0, 100.0, 120.0, 120.0), heads=(5, 5, 5, 7))
    assert profile.full_depth == 10 + 440 + 7
    costs = profile.exit_cost(torch.tensor([1, 2, 4]))
    assert costs.tolist() == [10 + 105, 10 + 210, 10 + 105 + 105 + 125 + 127]
    labels = torch.tensor([0, 0, 2])
    metrics = exit_metrics(LayerExits.from_logits(LOGITS, labels), torch.tensor([1, 2, 4]), profile)
    assert metrics["flops_ratio"] == pytest.approx((115 + 220 + 472) / 3 / 457)
    assert metrics["mean_exit_layer"] == pytest.approx(7 / 3)
    # sample 0 exits at layer 1 predicting 0 (right), sample 1 at layer 2 predicting 0 (right),
    # sample 2 at layer 4 predicting 2 (right)
    assert metrics["accuracy"] == 1.0


def test_measured_flop_profile_matches_the_vit_formulas():
    spec = {"method": "multi_exit", "model": dict(arch="vit", depth=2, width=16, heads=2,
                                                  patch_size=4, mlp_ratio=2.0,
                                                  head_input="final_norm")}
    model = build_run_model(spec, {"input_shape": [1, 8, 8], "num_classes": 10})
    profile = flop_profile(model, torch.zeros(1, 1, 8, 8))
    tokens, d, hidden, k = 5, 16, 32, 10  # 4 patches + [CLS]
    block = 2 * tokens * d * (3 * d + d + 2 * hidden) + 4 * tokens * tokens * d
    assert profile.blocks == (block, block)
    assert profile.heads == (2 * d * k, 2 * d * k)
    assert profile.embed == 2 * 4 * (4 * 4) * d  # 4 patches, a 4x4x1 kernel per channel


# --- choosing the operating point ------------------------------------------------------------
def test_selection_takes_the_fastest_threshold_within_the_drop():
    # Confidence grows with depth; exiting at layer 1 costs accuracy, at layer 2 it does not.
    labels = torch.tensor([0, 0, 1, 1])
    logits = torch.zeros(3, 4, 2)
    logits[0, :, 1] = torch.tensor([3.0, 3.0, 3.0, 3.0])  # layer 1: confident, half wrong
    logits[1, :, :] = torch.tensor([[4.0, 0], [4.0, 0], [0, 4.0], [0, 4.0]])  # layer 2: right
    logits[2, :, :] = logits[1] * 2
    conf1, conf2 = policies.confidence(logits[0, 0]).item(), policies.confidence(logits[1, 0]).item()
    assert conf1 < conf2
    threshold = select_threshold("confidence", (logits, labels), max_drop=0.01, points=20)
    layers = exit_layers("confidence", logits, threshold)
    assert layers.tolist() == [2, 2, 2, 2]
    # with room for a 50-point drop the layer-1 exit qualifies
    threshold = select_threshold("confidence", (logits, labels), max_drop=0.5, points=20)
    assert exit_layers("confidence", logits, threshold).tolist() == [1, 1, 1, 1]


def test_selection_has_no_access_to_test_data():
    assert list(inspect.signature(select_threshold).parameters) == [
        "policy", "val", "max_drop", "points"]
    torch.manual_seed(0)
    val = (torch.randn(6, 80, 5) * torch.arange(1, 7).view(6, 1, 1), torch.randint(0, 5, (80,)))
    test = (torch.randn(6, 60, 5), torch.randint(0, 5, (60,)))
    poisoned = (torch.randn(6, 60, 5) * 100, (test[1] + 1) % 5)  # other logits, wrong labels
    for policy in policies.POLICIES:
        clean = evaluate_policy(policy, val, test, 0.02, 25)[1]
        dirty = evaluate_policy(policy, val, poisoned, 0.02, 25)[1]
        assert clean["threshold"] == dirty["threshold"]
        assert clean["val_accuracy"] == dirty["val_accuracy"]
        assert clean["val_mean_exit_layer"] == dirty["val_mean_exit_layer"]


def test_candidate_thresholds_span_every_exit_pattern():
    thresholds = candidate_thresholds("confidence", LOGITS, points=5)
    assert thresholds[-1] == math.inf and thresholds == sorted(thresholds)
    assert exit_layers("confidence", LOGITS, thresholds[0]).tolist() == [1, 1, 1]
    assert candidate_thresholds("entropy", LOGITS, points=5)[-1] == -math.inf
    assert candidate_thresholds("patience", LOGITS, points=5) == [0, 1, 2, 3, 4]


def test_sweep_marks_the_selected_threshold_on_both_splits():
    torch.manual_seed(1)
    data = (torch.randn(4, 30, 3) * 3, torch.randint(0, 3, (30,)))
    curves, point, layers = evaluate_policy("confidence", data, data, 0.05, 10)
    assert set(curves["split"]) == {"val", "test"}
    assert curves.groupby("split")["selected"].sum().tolist() == [1, 1]
    assert point["mean_exit_layer"] == pytest.approx(layers.double().mean().item())
    assert point["full_depth_accuracy"] == point["val_full_depth_accuracy"]


# --- saturation and effective depth --------------------------------------------------------
def test_saturation_layer_of_hand_made_prediction_sequences():
    sequences = [[1, 1, 1, 1],   # settled from the start
                 [0, 1, 1, 1],   # settles at layer 2
                 [1, 0, 1, 1],   # was right at layer 1 but changed: settles at layer 3
                 [0, 0, 0, 1],   # only the last layer has the final prediction
                 [2, 1, 2, 2]]
    predictions = torch.tensor(sequences).T  # (L, N)
    layers = saturation_layers(predictions)
    assert layers.tolist() == [1, 2, 3, 4, 3]
    assert layer_histogram(layers, 4).tolist() == [1, 1, 2, 1]


def test_effective_depth_absolute_and_relative():
    accuracy = [0.5, 0.96, 0.97, 0.98]
    assert effective_depth(accuracy, 0.03) == 3
    assert effective_depth(accuracy, 0.03, relative=True) == 2  # bar 0.97 * 0.98 = 0.9506
    assert effective_depth([0.5, 0.6], 0.03) == 2  # never reaches the bar: L
    assert effective_depth([0.5, 0.6], 0.03, relative=True) == 2


# --- parameters ----------------------------------------------------------------------------
def test_parameter_savings_reproduce_the_papers_table():
    rows = {r["model"]: r for r in paper_values()["table1_parameter_savings"]}
    for name in ("DeiT-S", "DeiT-B"):
        row = rows[name]
        multi = multi_exit_parameters(row["single_M"] * 1e6, row["layers"], row["classes"],
                                      row["hidden_dim"])
        assert multi / 1e6 == pytest.approx(row["multi_M"], abs=0.005)
        saving = 100 * parameter_saving(row["single_M"] * 1e6, multi)
        assert saving == pytest.approx(row["saving_pct"], abs=0.01)  # the paper truncates
    # GPT-2: the printed multi-exit size and saving agree with the formula's head count
    # ((L-1) K d = 424.57M), but its printed single size does not (541.57 - 424.57 = 117.00).
    gpt2 = rows["GPT-2"]
    heads = multi_exit_parameters(0, gpt2["layers"], gpt2["classes"], gpt2["hidden_dim"])
    assert heads == 11 * 50257 * 768
    assert 100 * heads / (gpt2["multi_M"] * 1e6) == pytest.approx(gpt2["saving_pct"], abs=0.01)
    assert (gpt2["multi_M"] * 1e6 - heads) / 1e6 == pytest.approx(117.00, abs=0.005)


def test_built_multi_exit_model_has_one_head_per_layer_but_the_last():
    model_spec = dict(arch="vit", depth=3, width=16, heads=2, patch_size=4, mlp_ratio=2.0,
                      head_input="final_norm")
    info = {"input_shape": [1, 8, 8], "num_classes": 10}
    single = build_run_model({"method": "standard", "model": model_spec}, info)
    multi = build_run_model({"method": "multi_exit", "model": model_spec}, info)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # each extra exit: LayerNorm (2d) + Linear (K d + K)
    assert count(multi) - count(single) == 2 * (2 * 16 + 10 * 16 + 10)
    assert single.exit_heads is None and len(multi.exit_heads) == 2


# --- real early exit -----------------------------------------------------------------------
MODEL = dict(arch="vit", depth=4, width=16, heads=2, patch_size=4, mlp_ratio=2.0,
             head_input="final_norm")


def midpoint_threshold(scores: torch.Tensor, quantile: float) -> float:
    """A threshold halfway between two neighbouring scores, so float noise cannot flip it."""
    values = scores.flatten().sort().values
    i = int(quantile * (len(values) - 2))
    return float((values[i] + values[i + 1]) / 2)


@pytest.mark.parametrize("method", ["multi_exit", "aligned"])
def test_compaction_gives_the_exits_of_computing_every_layer(method):
    torch.manual_seed(0)
    model = build_run_model({"method": method, "model": MODEL},
                            {"input_shape": [1, 8, 8], "num_classes": 10}).eval()
    x = torch.randn(64, 1, 8, 8) * 2
    with torch.no_grad():
        logits = model.layer_exit_logits(model.layer_representations(x))[1:]
    seen = []  # the batch each block runs on
    for block in model.vit.blocks:
        block.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[0]))
    for policy in policies.POLICIES:
        scores = exits.policy_scores(policy, logits[:-1])
        threshold = 1 if policy == "patience" else midpoint_threshold(scores, 0.6)
        expected = exit_layers(policy, logits, threshold)
        seen.clear()
        predictions, layers = early_exit(model, x, policy, threshold)
        assert torch.equal(layers, expected), policy
        assert torch.equal(predictions, exits.exit_predictions(logits, expected)), policy
        # compute is saved: block l only sees the samples that have not exited before it
        assert seen == [int((expected >= layer).sum()) for layer in range(1, len(seen) + 1)]
        assert sum(seen) == int(expected.sum())


def test_timing_reports_both_paths_and_the_theoretical_speedup():
    torch.manual_seed(0)
    model = build_run_model({"method": "multi_exit", "model": MODEL},
                            {"input_shape": [1, 8, 8], "num_classes": 10}).eval()
    x = torch.randn(8, 1, 8, 8)
    table = time_operating_points(model, x, {"confidence": ("confidence", 0.0)}, [1, 8],
                                  warmup=0, repeats=1)
    assert table["batch_size"].tolist() == [1, 8]
    assert (table["mean_exit_layer"] == 1).all() and (table["speedup"] == 4).all()
    assert (table["seconds_early_exit"] > 0).all() and (table["wall_speedup"] > 0).all()


# --- training and extraction of the multi-exit model -----------------------------------------
def test_multi_exit_loss_alternates_and_uses_each_layers_own_head():
    import torch.nn.functional as F

    from layerwise.hidden.extract import predict_layers
    from layerwise.train.loop import TrainSpec, training_loss
    from layerwise.train.methods import MultiExitSettings, layer_weights

    torch.manual_seed(0)
    model = build_run_model({"method": "multi_exit", "model": MODEL},
                            {"input_shape": [1, 8, 8], "num_classes": 10})
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    spec = TrainSpec(method="multi_exit", seed=0, epochs=1, batch_size=6, lr=1e-3,
                     weight_decay=0.0, settings=MultiExitSettings(weights="uniform", alternate=True))
    weights = layer_weights(4, spec.weighting)
    reps = model.layer_representations(x)
    own = [model.exit_heads[layer - 1](reps[layer]) for layer in (1, 2, 3)]
    own.append(model.vit.head(model.vit.norm(reps[4])))  # the last exit is the model's head
    expected = sum(F.cross_entropy(logits, y) for logits in own) / 4
    torch.testing.assert_close(training_loss(model, x, y, spec, 1, weights)[0], expected)
    torch.testing.assert_close(training_loss(model, x, y, spec, 0, weights)[0],
                               F.cross_entropy(model(x), y))  # BERxiT: plain steps first
    _, logits, targets = predict_layers(model, x, y)
    assert torch.equal(targets, y)
    torch.testing.assert_close(logits[1:], torch.stack(own))


def test_multi_exit_weights_load_only_into_a_multi_exit_model():
    info = {"input_shape": [1, 8, 8], "num_classes": 10}
    trained = build_run_model({"method": "multi_exit", "model": MODEL}, info).state_dict()
    build_run_model({"method": "multi_exit", "model": MODEL}, info).load_state_dict(trained)
    with pytest.raises(RuntimeError, match="exit_heads"):
        build_run_model({"method": "standard", "model": MODEL}, info).load_state_dict(trained)


def test_multi_exit_run_starts_from_the_standard_runs_backbone():
    from layerwise.seeding import seed_everything

    info = {"input_shape": [1, 8, 8], "num_classes": 10}
    models = {}
    for method in ("standard", "multi_exit"):
        seed_everything(3)
        models[method] = build_run_model({"method": method, "model": MODEL}, info).state_dict()
    for key, value in models["standard"].items():  # exit heads are drawn after the backbone
        assert torch.equal(value, models["multi_exit"][key]), key
