import pytest
import torch

from layerwise.models import build_model

SPEC = dict(arch="vit", depth=3, width=16, heads=2, patch_size=2, mlp_ratio=2.0,
            head_input="final_norm")
INFO = dict(input_shape=[1, 8, 8], num_classes=10)


def make(head_input="final_norm", seed=0):
    torch.manual_seed(seed)
    return build_model({**SPEC, "head_input": head_input}, INFO).eval()


def test_stepping_reproduces_timm_forward():
    model = make()
    x = torch.randn(7, 1, 8, 8)
    assert torch.equal(model(x), model.vit(x))


def test_layer_representations_are_cls_tokens_of_every_block():
    model = make()
    x = torch.randn(5, 1, 8, 8)
    reps = model.layer_representations(x)
    assert reps.shape == (SPEC["depth"] + 1, 5, SPEC["width"])
    # timm's own per-block outputs, read through its public forward_intermediates
    blocks = model.vit.forward_intermediates(x, norm=False, output_fmt="NLC",
                                             intermediates_only=True, return_prefix_tokens=True)
    for layer, (_, prefix) in enumerate(blocks, start=1):
        torch.testing.assert_close(reps[layer], prefix[:, 0], rtol=0, atol=1e-6)


def test_final_norm_head_path_norms_every_layer():
    model = make("final_norm")
    x = torch.randn(4, 1, 8, 8)
    reps = model.layer_representations(x)
    logits = model.layer_logits(reps)
    torch.testing.assert_close(logits, model.vit.head(model.vit.norm(reps)))
    torch.testing.assert_close(logits[-1], model(x))


def test_raw_head_path_skips_norm_except_last_layer():
    model = make("raw")
    x = torch.randn(4, 1, 8, 8)
    reps = model.layer_representations(x)
    logits = model.layer_logits(reps)
    torch.testing.assert_close(logits[:-1], model.vit.head(reps[:-1]))
    torch.testing.assert_close(logits[-1], model(x))  # the model's own output is unchanged
    for layer in range(reps.shape[0]):
        torch.testing.assert_close(model.classify(reps[layer], layer), logits[layer])


def test_head_input_changes_intermediate_logits_only():
    a, b = make("final_norm"), make("raw")
    x = torch.randn(4, 1, 8, 8)
    la = a.layer_logits(a.layer_representations(x))
    lb = b.layer_logits(b.layer_representations(x))
    torch.testing.assert_close(la[-1], lb[-1])
    assert not torch.allclose(la[1], lb[1])


def test_unknown_head_input_rejected():
    with pytest.raises(ValueError, match="head_input"):
        make("pre_norm")


@pytest.mark.parametrize("residual", [True, False])
def test_mlp_layers_follow_their_definition(residual):
    torch.manual_seed(0)
    model = build_model(dict(arch="mlp", depth=3, width=8, residual=residual,
                             head_input="final_norm"), INFO)
    x = torch.randn(5, 1, 8, 8)
    reps = model.layer_representations(x)
    assert reps.shape == (4, 5, 8)
    h = model.embedding(x.flatten(1))
    torch.testing.assert_close(reps[0], h)
    for layer in range(3):
        out = torch.relu(model.layers[layer](h))
        h = h + out if residual else out
        torch.testing.assert_close(reps[layer + 1], h)
    torch.testing.assert_close(model(x), model.classifier(h))


def test_the_residual_ablation_changes_only_the_skip_connection():
    """Same seed, same weights: with and without residuals differ in the forward pass alone."""
    models = []
    for residual in (False, True):
        torch.manual_seed(0)
        models.append(build_model(dict(arch="mlp", depth=9, width=16, residual=residual,
                                       head_input="final_norm"), INFO))
    plain, residual = (dict(m.named_parameters()) for m in models)
    assert plain.keys() == residual.keys()
    assert all(torch.equal(plain[k], residual[k]) for k in plain)
    x = torch.randn(4, 1, 8, 8)
    assert not torch.allclose(models[0](x), models[1](x))
