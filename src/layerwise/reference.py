"""Numbers read from the paper's figures and tables, shipped as data with their source.

`src/layerwise/paper_reference_values.yaml` holds values digitized from arXiv:2406.14479v3
("exact" where printed, "approx" where read off a plot, about +/-0.02). They are drawn beside
reproduced curves, clearly labelled as the paper's, and used when checking claims; they are
never used as test oracles.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

PATH = Path(__file__).with_name("paper_reference_values.yaml")


@lru_cache(maxsize=1)
def paper_values() -> dict:
    return yaml.safe_load(PATH.read_text(encoding="utf-8"))


def fig8_curves(key: str, label: str) -> dict[str, list[float]]:
    """The paper's Fig 8 BERT-base curves of one GLUE task (`key`, e.g. "mrpc_f1"), as the
    reference lines of a layer-wise figure: {"<label>: standard": [...], "<label>: aligned": ...}."""
    curves = paper_values()["fig8_bert_base_glue_layerwise"][key]
    return {f"{label}: {method}": list(values) for method, values in curves.items()}


def curves(key: str, label: str, methods=None) -> dict[str, list[float]]:
    """Reference lines for a layer-wise figure, labelled "<label>: <method>".

    `key` is a Fig 8 task key (e.g. "mrpc_f1", see fig8_curves) or a (dotted) path into the
    reference values: to a mapping of method -> values (e.g. "fig4_deit_s_imagenet.test_acc")
    or to one list of values, which the paper drew for standard training (e.g.
    "fig12_mlp9_mnist.residual.acc"). With `methods`, only curves of those methods are kept.
    """
    if "." not in key and key not in paper_values():
        found = fig8_curves(key, label)
    else:
        node = paper_values()
        for part in key.split("."):
            node = node[part]
        node = node if isinstance(node, dict) else {"standard": node}
        found = {f"{label}: {method}": list(values) for method, values in node.items()}
    if methods is not None:
        keep = {f"{label}: {method}" for method in methods}
        found = {name: values for name, values in found.items() if name in keep}
    return found


# The paper's setting behind each figure's numbers, for the labels of reference curves.
SETTINGS = {
    "fig1_deit_s_pretrained_finetuned_cifar10": "DeiT-S fine-tuned CIFAR-10 (Fig 1)",
    "fig2_deit_s_scratch_standard": "DeiT-S from scratch (Fig 2)",
    "fig4_deit_s_imagenet": "DeiT-S ImageNet (Fig 4)",
    "fig5_cifar10_scratch_train_acc": "ViT CIFAR-10 from scratch (Fig 5)",
    "fig8_bert_base_glue_layerwise": "BERT-base GLUE (Fig 8)",
    "fig6_gpt2_wikitext103_saturation_counts": "GPT-2 WikiText-103 (Fig 6)",
    "fig9_gpt2_wikitext103_token_acc": "GPT-2 WikiText-103 (Fig 9)",
    "fig9_gpt2_wikitext103_token_loss": "GPT-2 WikiText-103 (Fig 9)",
    "fig11_deit_s_imagenet_val": "DeiT-S ImageNet (Fig 11)",
    "fig14_deit_s_imagenet_cos_regularization": "DeiT-S ImageNet (Fig 14)",
    "fig12_mlp9_mnist": "9-layer MLP MNIST (Fig 12)",
}


def reference_label(key: str) -> str:
    """"paper <setting>" for a dotted key of the reference values, e.g.
    "fig2_deit_s_scratch_standard.cifar10.acc" -> "paper DeiT-S from scratch (Fig 2) cifar10"."""
    figure, *rest = key.split(".")
    words = [part for part in rest if part not in ("acc", "test_acc")]
    return " ".join(["paper", SETTINGS.get(figure, figure), *words])


def similarity_curves(key: str) -> dict[str, list[float]]:
    """The paper's curves against the last layer at a dotted `key` whose mapping holds some of
    acc, cka, cos (e.g. "fig12_mlp9_mnist.no_residual"), for curves_vs_last panels."""
    node = paper_values()
    for part in key.split("."):
        node = node[part]
    return {name: list(node[name]) for name in ("acc", "cka", "cos") if name in node}
