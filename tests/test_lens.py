"""The tuned lens: affine translators on a frozen model (models/base.py), their fit
(train/lens.py) and their parameter count (exits/parameters.py)."""

import pytest
import torch

from layerwise.data import IGNORE
from layerwise.exits.parameters import lens_parameters
from layerwise.io import load_tensors, save_tensors
from layerwise.models import build_model
from layerwise.train.lens import fit_lens_on_batches, fit_lens_on_states, lens_divergences
from layerwise.train.runs import build_run_model

SPECS = {
    "gpt2": dict(arch="gpt2", depth=3, width=16, heads=4, mlp_ratio=2.0, head_input="raw",
                 pretrained=""),
    "vit": dict(arch="vit", depth=3, width=16, heads=2, patch_size=2, mlp_ratio=2.0,
                head_input="final_norm"),
    "bert": dict(arch="bert", depth=3, width=16, heads=4, mlp_ratio=2.0,
                 head_input="final_norm", pretrained="", patch_size=1),
}
INFOS = {
    "gpt2": dict(vocab_size=50, num_classes=50, max_length=16, pad_id=0),
    "vit": dict(input_shape=[1, 8, 8], num_classes=10),
    "bert": dict(num_classes=3, pad_id=0, vocab_size=60, max_length=16, input_shape=[2, 16]),
}
LAYERS, WIDTH = 3, 16


@pytest.fixture(autouse=True)
def one_thread():
    """A fit here is hundreds of tiny operations, which a second thread only slows down (on a
    busy machine tenfold, waiting for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(arch, lens=True, seed=0):
    """A tiny random model whose weight matrices are drawn wider than at initialisation, so that
    its predictions are sharp and its layers differ (at init every layer predicts about the
    same flat distribution, and any lens would look right)."""
    torch.manual_seed(seed)
    model = build_model(SPECS[arch], INFOS[arch]).eval()
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() >= 2:
                weight.normal_(std=0.2)
    if lens:
        model.add_lens()
    return model


def inputs(arch, n, seed=0):
    generator = torch.Generator().manual_seed(seed)
    if arch == "vit":
        return torch.randn(n, 1, 8, 8, generator=generator)
    if arch == "gpt2":
        return torch.randint(1, INFOS["gpt2"]["vocab_size"], (n, 16), generator=generator)
    ids = torch.randint(5, INFOS["bert"]["vocab_size"], (n, 16), generator=generator)
    ids[:, 0] = 2  # [CLS], the token BERT's pool reads; no padding
    return torch.stack([ids, torch.zeros_like(ids)], dim=1)


def representations(model, arch, n=8, seed=0):
    with torch.no_grad():
        return model.layer_representations(inputs(arch, n, seed))


def randomise(lens, seed=1):
    """Translators far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in lens.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def lens_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("lens.")}


def other_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("lens.")}


def equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the lens on the model interface ---------------------------------------------------------
@pytest.mark.parametrize("arch", ["gpt2", "vit", "bert"])
def test_an_identity_lens_is_the_logit_lens(arch):
    """Unfitted, the lens reads layer l as the logit lens does: head(final_norm(h_l)), the final
    norm included even where the model's own intermediate path skips it (GPT-2's `raw`)."""
    model = make(arch)
    reps = representations(model, arch)
    with torch.no_grad():
        logits = model.layer_exit_logits(reps)
        for layer in range(1, LAYERS):
            logit_lens = model.head(model.final_norm(reps[layer]))
            assert torch.equal(logits[layer], logit_lens)
            assert torch.equal(model.exit_logits(reps[layer], layer), logit_lens)
        assert torch.equal(logits[0], model.classify(reps[0], 0))
        assert torch.equal(logits[LAYERS], model.classify(reps[LAYERS], LAYERS))
        assert torch.equal(model.exit_representations(reps), reps)


@pytest.mark.parametrize("arch", ["gpt2", "vit"])
def test_a_lens_exit_is_the_output_path_on_the_translated_state(arch):
    model = make(arch)
    randomise(model.lens)
    reps = representations(model, arch)
    with torch.no_grad():
        translated = model.exit_representations(reps)
        logits = model.layer_exit_logits(reps)
        for layer in range(1, LAYERS):
            lens = model.lens[layer - 1]
            expected = reps[layer] @ lens.weight.T + lens.bias  # A_l h + b_l
            torch.testing.assert_close(translated[layer], expected)
            torch.testing.assert_close(logits[layer], model.head(model.final_norm(expected)))
        for layer in (0, LAYERS):  # no translator: the embedding and the model's own output
            assert torch.equal(translated[layer], reps[layer])
            assert torch.equal(logits[layer], model.classify(reps[layer], layer))
        # A stack of the last layers (as training passes reps[1:]) is read layer by layer alike
        assert torch.equal(model.exit_representations(reps[1:]), translated[1:])
        assert torch.equal(model.layer_exit_logits(reps[1:]), logits[1:])
        assert not torch.allclose(logits[1], model.classify(reps[1], 1))


def test_a_model_without_a_lens_is_read_as_before():
    model = make("gpt2", lens=False)
    reps = representations(model, "gpt2")
    assert model.lens is None
    assert model.exit_representations(reps) is reps
    with torch.no_grad():
        assert torch.equal(model.layer_exit_logits(reps), model.layer_logits(reps))


def test_a_model_has_exit_heads_or_a_lens_not_both():
    multi_exit = build_run_model({"method": "multi_exit", "model": SPECS["vit"]}, INFOS["vit"])
    with pytest.raises(ValueError, match="exit heads or a lens, not both"):
        multi_exit.add_lens()
    with pytest.raises(ValueError, match="exit heads or a lens, not both"):
        make("vit").add_exit_heads(10)


def test_the_lens_saves_and_loads_with_the_model(tmp_path):
    """Through the project's safetensors files, with GPT-2's tied embedding and head beside it."""
    model = make("gpt2")
    randomise(model.lens)
    path = tmp_path / "model.safetensors"
    save_tensors(path, model.state_dict())
    loaded = make("gpt2", seed=5)
    loaded.load_state_dict(load_tensors(path)[0])  # strict: every key, the lens' included
    assert equal_states(lens_state(loaded), lens_state(model))
    assert len(lens_state(model)) == 2 * (LAYERS - 1)
    reps = representations(model, "gpt2")
    with torch.no_grad():
        assert torch.equal(loaded.layer_exit_logits(reps), model.layer_exit_logits(reps))


@pytest.mark.parametrize("arch", ["gpt2", "vit", "bert"])
def test_the_lens_parameter_count_is_the_translators(arch):
    model = make(arch)
    counted = sum(p.numel() for p in model.lens.parameters())
    assert counted == lens_parameters(LAYERS, WIDTH) == (LAYERS - 1) * (WIDTH ** 2 + WIDTH)


# --- fitting ----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["gpt2", "vit"])
def test_a_planted_affine_map_is_recovered(arch):
    """Layer l's states are a known invertible affine map of layer L's, h_l = A^-1 (h_L - b),
    so the lens (A, b) reads layer l exactly as the model reads layer L. The fit, which starts
    from the identity, gets there: KL near zero and the final layer's predictions."""
    model = make(arch)
    with torch.no_grad():  # a sharp final prediction, which the planted layers must match
        (model.model.lm_head if arch == "gpt2" else model.vit.head).weight.mul_(10)
    if arch == "gpt2":  # the model's own last-layer states of 256 tokens
        final = representations(model, arch, n=16)[-1].reshape(-1, WIDTH)
    else:
        # Constructed ones: a random ViT's [CLS] states barely vary between images (their
        # variances span three orders of magnitude), which slows any first-order fit tenfold
        final = torch.randn(256, WIDTH, generator=torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(2)
    planted = [final]  # layer 0: no translator, not fitted
    for _ in range(1, LAYERS):
        rotation, _ = torch.linalg.qr(torch.randn(WIDTH, WIDTH, generator=generator))
        scales = torch.rand(WIDTH, generator=generator) * (1.25 - 0.8) + 0.8
        a, b = rotation * scales, 0.5 * torch.randn(WIDTH, generator=generator)
        planted.append(torch.linalg.solve(a, (final - b).T).T)
    reps = torch.stack(planted + [final])
    with torch.no_grad():
        before = lens_divergences(model, reps)
    torch.manual_seed(0)
    fit_lens_on_states(model, reps, steps=500, lr=0.1)
    with torch.no_grad():
        after = lens_divergences(model, reps)
        probs = model.layer_exit_logits(reps).softmax(-1)
    assert before.min() > 4  # the logit lens reads the planted layers badly
    assert after.max() < 0.01
    # Equal predictions wherever the final layer's is decided (its top two probabilities more
    # than 0.1 apart), which is almost every sample
    top2 = probs[-1].topk(2).values
    decided = top2[:, 0] - top2[:, 1] > 0.1
    assert decided.float().mean() > 0.9
    predictions = probs.argmax(-1)[:, decided]
    assert torch.equal(predictions[1:-1], predictions[-1].expand(LAYERS - 1, -1))


def test_fitting_on_states_runs_only_the_head_path(monkeypatch):
    model = make("vit")
    reps = representations(model, "vit", n=32)

    def never(*args, **kwargs):
        raise AssertionError("the backbone ran")

    for name in ("embed", "block", "pool", "layer_representations", "forward"):
        monkeypatch.setattr(model, name, never)
    log = fit_lens_on_states(model, reps, steps=5, lr=1e-2, batch_size=8, log_every=2)
    assert [row["step"] for row in log] == [0, 2, 4]


def test_the_fit_depends_only_on_its_training_states():
    """Two fits from the same seed on the same training states are byte-identical, whatever
    test split was read in between; other training states give another lens."""
    train = representations(make("vit", lens=False), "vit", n=64, seed=0)

    def fitted(states, test_seed):
        model = make("vit")
        with torch.no_grad():  # an analysis of some test split, as a workflow would run one
            model.layer_exit_logits(representations(model, "vit", n=16, seed=test_seed))
        torch.manual_seed(0)
        fit_lens_on_states(model, states, steps=20, lr=1e-2, batch_size=16)
        return lens_state(model)

    first = fitted(train, test_seed=10)
    assert equal_states(fitted(train, test_seed=11), first)
    assert not equal_states(fitted(train + 0.01, test_seed=10), first)


def language_batches(count, seed=0, size=4):
    """(inputs, targets) blocks of the tiny GPT-2: next tokens, the last position IGNORE."""
    batches = []
    for index in range(count):
        ids = inputs("gpt2", size, seed=seed + index)
        targets = torch.cat([ids[:, 1:], torch.full((size, 1), IGNORE)], dim=1)
        batches.append((ids, targets))
    return batches


@pytest.mark.parametrize("path", ["states", "batches"])
def test_a_fit_changes_the_lens_only(path):
    model = make("gpt2")
    model.model.transformer.wpe.requires_grad_(False)  # a caller's own freezing is kept
    model.train()
    frozen, lens = other_state(model), lens_state(model)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    if path == "states":
        reps = representations(model, "gpt2").flatten(1, 2)
        fit_lens_on_states(model, reps, steps=5, lr=1e-2)
    else:
        fit_lens_on_batches(model, language_batches(2), steps=5, lr=1e-2)
    assert equal_states(other_state(model), frozen)
    assert not equal_states(lens_state(model), lens)
    assert all(p.grad is None for name, p in model.named_parameters()
               if not name.startswith("lens."))
    # The model is handed back as it came: trainable flags and training mode
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert model.training


def test_the_language_model_fit_lowers_the_kl():
    model = make("gpt2")
    train, held_out = language_batches(8), language_batches(2, seed=100)

    def kl(batches):
        with torch.no_grad():
            return sum(lens_divergences(model, model.layer_representations(x)[:, y != IGNORE])
                       .sum() for x, y in batches) / len(batches)

    identity = kl(held_out)
    torch.manual_seed(0)
    log = fit_lens_on_batches(model, train, steps=40, lr=1e-2)
    assert [row["step"] for row in log] == [0, 10, 20, 30, 39]
    assert log[-1]["kl"] < log[0]["kl"]
    assert kl(held_out) < 0.5 * identity


def test_positions_without_a_target_do_not_reach_the_fit():
    """The last position has no target; changing its token changes no other position's state
    (the model is causal), so the fitted lens stays byte-identical."""
    batches = language_batches(2)
    changed = [(x.clone(), y) for x, y in batches]
    for x, _ in changed:
        x[:, -1] = (x[:, -1] % 40) + 5

    def fitted(data):
        model = make("gpt2")
        fit_lens_on_batches(model, data, steps=3, lr=1e-2)
        return lens_state(model)

    assert equal_states(fitted(changed), fitted(batches))


def test_batches_are_read_again_until_the_last_step():
    model = make("gpt2")
    log = fit_lens_on_batches(model, language_batches(2), steps=5, lr=1e-2, log_every=1)
    assert len(log) == 5
    with pytest.raises(ValueError, match="ran out"):
        fit_lens_on_batches(model, iter(language_batches(2)), steps=5, lr=1e-2)


def test_a_fit_needs_a_lens_and_the_training_states_of_every_layer():
    model = make("vit", lens=False)
    reps = representations(model, "vit")
    with pytest.raises(ValueError, match="add_lens"):
        fit_lens_on_states(model, reps, steps=1, lr=1e-2)
    model.add_lens()
    with pytest.raises(ValueError, match=r"\(L\+1, N, d\)"):
        fit_lens_on_states(model, reps[1:], steps=1, lr=1e-2)
