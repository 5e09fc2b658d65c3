"""Backbones behind one interface; `build_model` picks one from the config's `model.arch`."""

from __future__ import annotations

from layerwise.models.base import LayeredClassifier


def build_model(model_spec: dict, data_info: dict) -> LayeredClassifier:
    """Build the model an experiment's `model` section describes for a prepared dataset."""
    arch = model_spec["arch"]
    if arch == "vit":
        from layerwise.models.vit import ViTClassifier

        channels, height, width = data_info["input_shape"]
        return ViTClassifier(
            image_size=height, in_chans=channels, num_classes=data_info["num_classes"],
            depth=model_spec["depth"], width=model_spec["width"], heads=model_spec["heads"],
            patch_size=model_spec["patch_size"], mlp_ratio=model_spec["mlp_ratio"],
            head_input=model_spec["head_input"])
    raise ValueError(f"unknown model arch {arch!r}")


__all__ = ["LayeredClassifier", "build_model"]
