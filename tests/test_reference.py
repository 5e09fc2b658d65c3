"""The paper's digitized values as reference curves: lookup by key, labels that name the
paper's setting, and figures that draw them beside ours."""

import numpy as np
import pandas as pd
import pytest

from layerwise.report import figures as plots
from layerwise.models import backbone
from layerwise.reference import curves, paper_values, reference_label, similarity_curves


def image_reference(model):
    return backbone(model).reference(model)


def test_curves_by_dotted_key_fig8_key_and_method_filter():
    fig4 = curves("fig4_deit_s_imagenet.test_acc", "paper X")
    assert set(fig4) == {"paper X: standard", "paper X: aligned", "paper X: multi_exit"}
    assert fig4["paper X: aligned"] == paper_values()["fig4_deit_s_imagenet"]["test_acc"]["aligned"]
    only = curves("fig4_deit_s_imagenet.test_acc", "paper X", {"standard", "aligned"})
    assert set(only) == {"paper X: standard", "paper X: aligned"}
    # A single list is the paper's standard training; a Fig 8 task key still works.
    assert list(curves("fig12_mlp9_mnist.residual.acc", "p")) == ["p: standard"]
    assert set(curves("sst2_acc", "p")) == {"p: standard", "p: aligned"}
    with pytest.raises(KeyError):
        curves("fig4_deit_s_imagenet.no_such_key", "p")


def test_labels_name_the_papers_setting():
    assert image_reference({"arch": "vit"}) == ("fig4_deit_s_imagenet.test_acc",
                                                "paper DeiT-S ImageNet (Fig 4)")
    key, label = image_reference({"arch": "mlp", "residual": False})
    assert key == "fig12_mlp9_mnist.no_residual.acc" and "without residuals" in label
    assert image_reference({"arch": "bert"}) is None
    assert reference_label("fig2_deit_s_scratch_standard.cifar10.acc") == \
        "paper DeiT-S from scratch (Fig 2) cifar10"


def test_layerwise_and_residual_ablation_figures_draw_the_paper_dashed():
    layers = range(4)
    acc = pd.DataFrame([{"method": m, "seed": s, "split": "test", "layer": l,
                         "accuracy": 0.2 + 0.2 * l} for m in ("standard", "aligned")
                        for s in (0, 1) for l in layers])
    fig = plots.layerwise_accuracy_figure(
        acc, "test", reference=curves("fig4_deit_s_imagenet.test_acc", "paper DeiT-S",
                                      set(acc["method"])))
    labels = fig.legends[0].get_texts()
    assert {"paper DeiT-S: standard", "paper DeiT-S: aligned"} <= {t.get_text() for t in labels}
    sim = pd.DataFrame([{"method": "standard", "seed": s, "measure": m, "layer_a": a,
                         "layer_b": b, "value": 1.0 if a == b else 0.5}
                        for s in (0, 1) for m in ("cos", "cka_linear_biased")
                        for a in range(1, 4) for b in range(1, 4)])
    reference = {"plain": ("paper MLP (Fig 12)", similarity_curves("fig12_mlp9_mnist.no_residual"))}
    fig = plots.curves_vs_last_panels_figure({"plain": (acc, sim)}, "standard", "test", "t",
                                             reference=reference)
    ax = fig.axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert {line.get_label() for line in dashed} == {"paper: COS(l, L)", "paper: CKA(l, L)",
                                                     "paper: accuracy"}
    assert "paper MLP (Fig 12)" in ax.get_title()
    np.testing.assert_allclose(dashed[0].get_xdata()[-1], 3.0)  # drawn at relative depth
