"""Backbones behind one interface; `build_model` picks one from the config's `model.arch`."""

from __future__ import annotations

import math

from layerwise.models.base import LayeredClassifier


def build_model(model_spec: dict, data_info: dict) -> LayeredClassifier:
    """Build the model an experiment's `model` section describes for a prepared dataset."""
    arch = model_spec["arch"]
    if arch == "vit":
        from layerwise.models.vit import ViTClassifier

        channels, height, width = data_info["input_shape"]
        size = model_spec.get("input_size") or height  # inputs are resized to it in the model
        if model_spec.get("pretrained"):
            model = ViTClassifier.from_timm(
                model_spec["pretrained"], num_classes=data_info["num_classes"],
                in_chans=channels, image_size=size, head_input=model_spec["head_input"])
            vit = model.vit
            built = {"depth": len(vit.blocks), "width": vit.embed_dim,
                     "heads": vit.blocks[0].attn.num_heads,
                     "patch_size": vit.patch_embed.patch_size[0]}
            wrong = {k: (model_spec[k], v) for k, v in built.items() if model_spec.get(k) != v}
            if wrong:
                from layerwise.config import ConfigError

                raise ConfigError(f"model.pretrained {model_spec['pretrained']} has " + ", ".join(
                    f"{k} {v} (the config says {c})" for k, (c, v) in wrong.items()))
            return model
        return ViTClassifier(
            image_size=size, in_chans=channels, num_classes=data_info["num_classes"],
            depth=model_spec["depth"], width=model_spec["width"], heads=model_spec["heads"],
            patch_size=model_spec["patch_size"], mlp_ratio=model_spec["mlp_ratio"],
            head_input=model_spec["head_input"])
    if arch == "mlp":
        from layerwise.models.mlp import MLPClassifier

        return MLPClassifier(
            in_features=math.prod(data_info["input_shape"]), num_classes=data_info["num_classes"],
            depth=model_spec["depth"], width=model_spec["width"],
            residual=model_spec["residual"], head_input=model_spec["head_input"])
    if arch == "bert":
        from layerwise.models.bert import BertClassifier

        common = dict(num_classes=data_info["num_classes"], pad_id=data_info["pad_id"],
                      head_input=model_spec["head_input"])
        if model_spec["pretrained"]:
            return BertClassifier.from_pretrained(model_spec["pretrained"], **common)
        return BertClassifier.from_config(
            vocab_size=data_info["vocab_size"], max_length=data_info["max_length"],
            depth=model_spec["depth"], width=model_spec["width"], heads=model_spec["heads"],
            mlp_ratio=model_spec["mlp_ratio"], **common)
    raise ValueError(f"unknown model arch {arch!r}")


def build_run_model(run_spec: dict, data_info: dict) -> LayeredClassifier:
    """The model of one run: a multi_exit run gets its per-layer exit heads, so its weights
    (saved with them) load back into the model the run spec describes."""
    model = build_model(run_spec["model"], data_info)
    if run_spec["method"] == "multi_exit":
        model.add_exit_heads(data_info["num_classes"])
    return model


__all__ = ["LayeredClassifier", "build_model", "build_run_model"]
