import math

import pytest
import torch
import torch.nn.functional as F

from layerwise.train import loop as training
from layerwise.models import build_model
from layerwise.seeding import seed_everything
from layerwise.train.loop import TrainSpec, lr_factor, train, training_loss
from layerwise.train.methods import (METHODS, AlignedSettings, CosRegularizedSettings,
                                     aligned_loss, layer_weights)

MODEL = dict(arch="vit", depth=3, width=16, heads=2, patch_size=4, mlp_ratio=2.0,
             head_input="final_norm")
INFO = dict(input_shape=[1, 8, 8], num_classes=4)


def spec(**overrides):
    base = dict(method="aligned", seed=0, epochs=3, batch_size=16, lr=1e-3, weight_decay=1e-4,
                schedule="cosine", warmup_epochs=1)
    return TrainSpec(**{**base, **overrides})


def test_linear_weights_match_the_paper():
    w = layer_weights(4, "linear")
    torch.testing.assert_close(w, torch.tensor([2 / 20, 4 / 20, 6 / 20, 8 / 20]))
    assert math.isclose(w.sum().item(), 1.0, rel_tol=1e-6)
    torch.testing.assert_close(layer_weights(4, "uniform"), torch.full((4,), 0.25))
    with pytest.raises(ValueError):
        layer_weights(4, "exponential")


def test_aligned_loss_equals_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 3)  # layers 1..3, batch 5, classes 3
    labels = torch.tensor([0, 2, 1, 1, 0])
    weights = layer_weights(3, "linear")
    expected = 0.0
    for layer in range(3):
        log_p = logits[layer] - logits[layer].exp().sum(-1, keepdim=True).log()
        ce = -log_p[torch.arange(5), labels].mean()
        expected += weights[layer] * ce
    torch.testing.assert_close(aligned_loss(logits, labels, weights), expected)


def test_alternating_schedule_starts_with_plain_cross_entropy():
    torch.manual_seed(0)
    model = build_model(MODEL, INFO)
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 4, (6,))
    weights = layer_weights(3, "linear")
    alt = spec(settings=AlignedSettings(alternate=True))
    plain = F.cross_entropy(model(x), y)
    aligned = aligned_loss(model.layer_logits(model.layer_representations(x))[1:], y, weights)
    torch.testing.assert_close(training_loss(model, x, y, alt, 0, weights)[0], plain)
    torch.testing.assert_close(training_loss(model, x, y, alt, 1, weights)[0], aligned)
    torch.testing.assert_close(training_loss(model, x, y, spec(), 0, weights)[0], aligned)
    torch.testing.assert_close(training_loss(model, x, y, spec(method="standard"), 1,
                                             weights)[0], plain)


def test_learning_rate_schedules():
    s = spec(epochs=4, warmup_epochs=1)
    assert lr_factor(0, 10, s) == pytest.approx(0.1)
    assert lr_factor(9, 10, s) == pytest.approx(1.0)
    assert lr_factor(10, 10, s) == pytest.approx(1.0)
    assert lr_factor(40, 10, s) == pytest.approx(0.0, abs=1e-12)
    m = spec(schedule="multistep", milestones=(2, 3), gamma=0.1, warmup_epochs=0)
    assert [lr_factor(e * 10, 10, m) for e in range(4)] == pytest.approx([1, 1, 0.1, 0.01])
    assert lr_factor(25, 10, spec(schedule="constant", warmup_epochs=0)) == 1.0
    # linear (transformers' get_linear_schedule_with_warmup): 1 after warm-up, 0 at the end
    lin = spec(schedule="linear", epochs=4, warmup_epochs=1)
    assert [lr_factor(t, 10, lin) for t in (0, 9, 10, 25, 40)] == pytest.approx(
        [0.1, 1.0, 1.0, 0.5, 0.0])


def test_gradients_are_clipped_before_each_update_when_asked(tmp_path, monkeypatch):
    real, seen = torch.nn.utils.clip_grad_norm_, []

    def clip(parameters, max_norm):
        parameters = list(parameters)
        total = real(parameters, max_norm)
        after = torch.linalg.vector_norm(torch.stack(
            [p.grad.norm() for p in parameters if p.grad is not None]))
        seen.append((max_norm, float(total), float(after)))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    train(fresh_model(), tiny_data(), spec(epochs=1), tmp_path / "a.pt", "h", torch.device("cpu"))
    assert seen == []  # no clipping unless grad_clip is set
    train(fresh_model(), tiny_data(), spec(epochs=1, grad_clip=1e-3), tmp_path / "b.pt", "h",
          torch.device("cpu"))
    assert len(seen) == 3  # every step: 48 samples in batches of 16
    assert all(max_norm == 1e-3 and total > 1e-3 and after == pytest.approx(1e-3, rel=1e-4)
               for max_norm, total, after in seen)


def test_an_epoch_of_fewer_steps_draws_a_fresh_part_of_the_split_each_time():
    from layerwise.train.batches import TrainBatches

    y = torch.arange(100)
    full = TrainBatches(y[:, None].float(), y, 8, torch.device("cpu"), seed=3)
    capped = TrainBatches(y[:, None].float(), y, 8, torch.device("cpu"), seed=3, max_steps=5)
    assert (full.steps, capped.steps) == (13, 5)
    for epoch in (0, 1):   # the first batches of the same shuffle
        assert [b.tolist() for b in capped.global_batches(epoch)] == [
            b.tolist() for b in full.global_batches(epoch)[:5]]
    first, second = (torch.cat(capped.global_batches(e)) for e in (0, 1))
    assert len(first) == 40 and set(first.tolist()) != set(second.tolist())


def test_a_run_with_fewer_steps_per_epoch_takes_that_many_steps(tmp_path, monkeypatch):
    steps = []
    real = training.run_epoch

    def counting(model, optimizer, scheduler, *args, **kwargs):
        before = scheduler.last_epoch
        result = real(model, optimizer, scheduler, *args, **kwargs)
        steps.append(scheduler.last_epoch - before)
        return result

    monkeypatch.setattr(training, "run_epoch", counting)
    log = train(fresh_model(), tiny_data(), spec(epochs=2, steps_per_epoch=2), tmp_path / "a.pt",
                "h", torch.device("cpu"))
    assert steps == [2, 2] and len(log) == 2 and all(math.isfinite(e["loss"]) for e in log)


def tiny_data():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 4, (64,), generator=g)
    x = torch.randn(64, 1, 8, 8, generator=g) + y[:, None, None, None]
    return {"train": (x[:48], y[:48]), "val": (x[48:], y[48:])}


def fresh_model(seed=0):
    seed_everything(seed)
    return build_model(MODEL, INFO)


def test_training_is_deterministic_and_learns(tmp_path):
    logs, states = [], []
    for run in range(2):
        model = fresh_model()
        logs.append(train(model, tiny_data(), spec(), tmp_path / f"run{run}.pt", "h",
                          torch.device("cpu")))
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    assert [r["loss"] for r in logs[0]] == [r["loss"] for r in logs[1]]
    assert logs[0][-1]["loss"] < logs[0][0]["loss"]


def test_resume_after_interruption_gives_identical_weights(tmp_path, monkeypatch):
    reference = fresh_model()
    train(reference, tiny_data(), spec(), tmp_path / "ref.pt", "h", torch.device("cpu"))

    real_save = training.save_checkpoint
    calls = []

    def save_then_die(path, state):
        calls.append(1)
        if len(calls) == 2:  # the job dies before the second checkpoint is written
            raise KeyboardInterrupt
        real_save(path, state)

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(fresh_model(), tiny_data(), spec(), tmp_path / "cut.pt", "h", torch.device("cpu"))
    monkeypatch.setattr(training, "save_checkpoint", real_save)

    resumed = fresh_model(seed=123)  # a different init: everything must come from the checkpoint
    log = train(resumed, tiny_data(), spec(), tmp_path / "cut.pt", "h", torch.device("cpu"))
    assert len(log) == 3
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_checkpoint_of_another_spec_is_not_resumed(tmp_path):
    path = tmp_path / "ckpt.pt"
    train(fresh_model(), tiny_data(), spec(epochs=1), path, "old", torch.device("cpu"))
    log = train(fresh_model(), tiny_data(), spec(epochs=1), path, "new", torch.device("cpu"))
    assert len(log) == 1 and log[0]["epoch"] == 1


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    data = tiny_data()
    data["train"] = (torch.full_like(data["train"][0], float("nan")), data["train"][1])
    with pytest.raises(training.TrainingError, match="loss became nan"):
        train(fresh_model(), data, spec(), tmp_path / "nan.pt", "h", torch.device("cpu"))


def test_cos_regularized_loss_equals_hand_computation():
    """CE of the last layer + beta * sum_l lambda_l mean_i (1 - cos(h_i^(l), h_i^(L)))."""
    torch.manual_seed(0)
    model = build_model(MODEL, INFO)
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 4, (6,))
    weights = layer_weights(3, "linear")
    cos_spec = spec(method="cos_regularized",
                    settings=CosRegularizedSettings(beta=0.7, alternate=False))
    loss, logits = training_loss(model, x, y, cos_spec, 1, weights)
    reps = model.layer_representations(x)
    penalty = 0.0
    for layer in (1, 2, 3):
        a, b = reps[layer], reps[3]
        cosine = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
        penalty += weights[layer - 1] * (1 - cosine).mean()
    expected = F.cross_entropy(model(x), y) + 0.7 * penalty
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, model(x))
    # plain steps of the alternating schedule are the last layer's cross-entropy alone
    alternating = CosRegularizedSettings(beta=0.7, alternate=True)
    torch.testing.assert_close(training_loss(model, x, y, spec(method="cos_regularized",
                                                               settings=alternating), 0,
                                             weights)[0], F.cross_entropy(model(x), y))


def test_aligned_uniform_trains_with_uniform_weights_whatever_aligned_says():
    from layerwise.study.config import load_config_file, validate_config
    from layerwise.study.plan import StudyPlan

    config = validate_config(load_config_file("config/config.yaml"))
    config["experiments"][0]["aligned"]["weights"] = "linear"
    plan = StudyPlan(config)
    run = plan.run_spec("vit_digits", "aligned_uniform", 0)
    assert run["aligned_uniform"] == {**config["experiments"][0]["aligned"], "weights": "uniform"}
    assert "aligned" not in run   # its own entry: an aligned change reruns it, nothing else
    train_spec = TrainSpec.from_config("aligned_uniform", 0, run["train"], run["aligned_uniform"])
    assert train_spec.settings == AlignedSettings(weights="uniform", alternate=True)
    assert plan.run_spec("vit_digits", "cos_regularized", 0)["cos_regularized"]["beta"] == 1.0


def test_length_grouped_batches_cover_the_epoch_and_hold_similar_lengths():
    from layerwise.train import batches as batching
    from layerwise.train.batches import TrainBatches

    n, size = 2_000, 16
    lengths = torch.randint(1, 33, (n,), generator=torch.Generator().manual_seed(0))
    x, y = torch.arange(n), torch.zeros(n, dtype=torch.long)
    plain = TrainBatches(x, y, size, torch.device("cpu"), seed=3)
    grouped = TrainBatches(x, y, size, torch.device("cpu"), seed=3, lengths=lengths)
    for epoch in range(2):
        batches = grouped.global_batches(epoch)
        assert len(batches) == plain.steps and sum(map(len, batches)) == n
        assert torch.equal(torch.cat(batches).sort().values, torch.arange(n))  # each once
        # the padding a batch trimmed to its longest sample holds: far less than at random
        def padding(bs):
            return sum(int((lengths[b].max() - lengths[b]).sum()) for b in bs)
        assert padding(batches) < 0.2 * padding(plain.global_batches(epoch))
        # the runs sorted by length come from the plain epoch order, batches shuffled after
        group = size * batching.LENGTH_GROUP_BATCHES
        order = torch.randperm(n, generator=batching.epoch_generator(3, epoch))
        first_run = set(order[:group].tolist())
        assert sum(set(b.tolist()) <= first_run for b in batches) == batching.LENGTH_GROUP_BATCHES
        assert [b.tolist() for b in batches] == [b.tolist() for b in
                                                 grouped.global_batches(epoch)]  # deterministic
    assert grouped.global_batches(0)[0].tolist() != grouped.global_batches(1)[0].tolist()


def test_group_by_length_trains_a_text_model_on_the_lengths_it_reports(tmp_path):
    """A BERT's samples report their unpadded length, and a run grouped by length trains."""
    bert_spec = dict(arch="bert", depth=2, width=16, heads=2, mlp_ratio=2.0,
                     head_input="final_norm", pretrained="", dropout=0.0)
    info = dict(num_classes=2, pad_id=0, vocab_size=30, max_length=12, input_shape=[2, 12])
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 30, (64, 12), generator=generator)
    real = torch.randint(2, 13, (64,), generator=generator)
    ids[torch.arange(12)[None, :] >= real[:, None]] = 0
    x, y = torch.stack([ids, torch.zeros_like(ids)], dim=1), (real > 6).long()
    seed_everything(0)
    model = build_model(bert_spec, info)
    assert torch.equal(model.sample_lengths(x), real)
    log = train(model, {"train": (x, y), "val": (x, y)},
                spec(method="standard", batch_size=8, group_by_length=True),
                tmp_path / "c.pt", "h", torch.device("cpu"))
    assert len(log) == 3 and all(math.isfinite(r["loss"]) for r in log)


def test_a_run_starts_from_its_pretraining_and_its_exit_heads_stay_fresh(tmp_path):
    """start_from loads every weight of the pretraining into a multi-exit model but its own
    exit heads; weights of another spec, or of another model, are refused by name."""
    from layerwise.errors import ArtifactError
    from layerwise.io import save_tensors
    from layerwise.train.runs import build_run_model

    spec = {"method": "multi_exit", "model": dict(arch="gpt2", depth=2, width=16, heads=2,
                                                  mlp_ratio=2.0, head_input="raw",
                                                  pretrained="")}
    info = dict(vocab_size=20, num_classes=20, max_length=8, pad_id=0)
    torch.manual_seed(0)
    pretrained = build_run_model({**spec, "method": "standard"}, info)
    path = tmp_path / "pretrain.safetensors"
    save_tensors(path, pretrained.state_dict(), {"spec_hash": "abc"})
    torch.manual_seed(1)
    model = build_run_model(spec, info)
    heads = {k: v.clone() for k, v in model.exit_heads.state_dict().items()}
    training.start_from(model, path, "abc")
    for name, value in pretrained.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert all(torch.equal(model.exit_heads.state_dict()[k], v) for k, v in heads.items())
    with pytest.raises(ArtifactError, match="spec_hash"):
        training.start_from(model, path, "another")
    wider = build_run_model({**spec, "model": {**spec["model"], "width": 32}}, info)
    with pytest.raises(ArtifactError, match="pretrain.safetensors"):
        training.start_from(wider, path, "abc")


# --- gradient accumulation (train.micro_batch_size) ---------------------------------------
TINY_LM = dict(arch="gpt2", depth=2, width=16, heads=2, mlp_ratio=2.0, head_input="raw",
               pretrained="", dropout=0.0)   # no dropout: the same draws whatever the passes
TINY_LM_INFO = dict(vocab_size=20, num_classes=20, max_length=8, pad_id=0)


def tiny_lm_data():
    """12 sequences whose targets end at random lengths (IGNORE after): any two parts of a
    batch hold different numbers of targets."""
    from layerwise.data import IGNORE

    g = torch.Generator().manual_seed(2)
    x, y = torch.randint(1, 20, (12, 8), generator=g), torch.randint(1, 20, (12, 8), generator=g)
    y[torch.arange(8)[None, :] >= torch.randint(1, 9, (12, 1), generator=g)] = IGNORE
    return {"train": (x, y), "val": (x, y)}


def two_steps(tmp_path, method, model_spec, info, data, batch_size, micro_batch_size):
    """The weights after two optimizer steps (the alternating schedule's plain one, then the
    method's), and the epoch's log."""
    from layerwise.train.runs import build_run_model

    seed_everything(0)
    model = build_run_model({"method": method, "model": model_spec}, info)
    run = spec(method=method, epochs=1, batch_size=batch_size, steps_per_epoch=2, grad_clip=1.0,
               settings=METHODS[method].parse_settings({"alternate": True}),
               micro_batch_size=micro_batch_size)
    log = train(model, data, run, tmp_path / f"{method}{micro_batch_size}.pt", "h",
                torch.device("cpu"))
    return model.state_dict(), log[0]


ACCUMULATED = [("classifier", MODEL, INFO, tiny_data, 16, 5),
               ("language model", TINY_LM, TINY_LM_INFO, tiny_lm_data, 6, 4),
               ("language model", TINY_LM, TINY_LM_INFO, tiny_lm_data, 6, 1)]


@pytest.mark.parametrize("method", ["standard", "aligned", "multi_exit"])
@pytest.mark.parametrize("model_spec, info, data, batch_size, micro", [a[1:] for a in ACCUMULATED],
                         ids=[f"{a[0]}-micro{a[-1]}" for a in ACCUMULATED])
def test_micro_batches_add_up_to_the_whole_batchs_step(tmp_path, method, model_spec, info, data,
                                                       batch_size, micro):
    whole, whole_log = two_steps(tmp_path, method, model_spec, info, data(), batch_size, None)
    parts, parts_log = two_steps(tmp_path, method, model_spec, info, data(), batch_size, micro)
    for key in whole:
        torch.testing.assert_close(parts[key], whole[key], msg=key)
    assert parts_log["loss"] == pytest.approx(whole_log["loss"], rel=1e-6)
    assert parts_log["train_accuracy"] == whole_log["train_accuracy"]


def test_micro_batches_of_a_language_model_weigh_their_targets_not_their_samples(tmp_path,
                                                                                 monkeypatch):
    """The control of the test above: weighted by samples, a language model's micro-batches
    (of different numbers of targets) do not add up to the whole batch's step."""
    from layerwise.train.batches import TrainBatches

    args = ("standard", TINY_LM, TINY_LM_INFO, tiny_lm_data(), 6)
    whole = two_steps(tmp_path, *args, None)[0]
    def by_samples(self, index, part=None):
        return len(index if part is None else part) / len(index)

    monkeypatch.setattr(TrainBatches, "share", by_samples)
    parts = two_steps(tmp_path, *args, 4)[0]
    with pytest.raises(AssertionError):
        for key in whole:
            torch.testing.assert_close(parts[key], whole[key], msg=key)


def test_a_micro_batch_not_smaller_than_the_batch_is_the_one_pass_path(tmp_path):
    """micro_batch_size absent, equal to the batch or larger: the very same arithmetic."""
    runs = [two_steps(tmp_path, "aligned", TINY_LM, TINY_LM_INFO, tiny_lm_data(), 6, micro)
            for micro in (None, 6, 100)]
    for state, log in runs[1:]:
        assert all(torch.equal(state[k], runs[0][0][k]) for k in state)
        assert log["loss"] == runs[0][1]["loss"]


def test_micro_batch_size_is_a_positive_integer_or_absent_and_part_of_the_run_spec():
    from layerwise.study.config import ConfigError, load_config_file, validate_config
    from layerwise.study.plan import StudyPlan

    config = load_config_file("config/config.yaml")
    run = StudyPlan(validate_config(config)).run_spec("vit_digits", "aligned", 0)
    assert "micro_batch_size" not in run["train"]   # absent: the runs' specs are unchanged
    for value in (0, -8, 2.5):
        config["experiments"][0]["train"]["micro_batch_size"] = value
        with pytest.raises(ConfigError, match=r"train.micro_batch_size: .* expected an integer "
                                              r">= 1 \(or null\)"):
            validate_config(config)
    for value in (None, 8):
        config["experiments"][0]["train"]["micro_batch_size"] = value
        run = StudyPlan(validate_config(config)).run_spec("vit_digits", "aligned", 0)
        assert run["train"]["micro_batch_size"] == value   # a change reruns the training
        assert TrainSpec.from_config("aligned", 0, run["train"]).micro_batch_size == value
