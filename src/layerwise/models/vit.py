"""A timm VisionTransformer behind the LayeredClassifier interface.

The stepping below is the body of timm's `VisionTransformer.forward_features`, split so that the
blocks can be run one at a time (early exit needs that; `forward_intermediates` returns all
layers at once). The tests check that it reproduces timm's own forward pass exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from layerwise.errors import ConfigError
from layerwise.models.base import LayeredClassifier


class ViTClassifier(LayeredClassifier):
    def __init__(self, *, image_size: int, in_chans: int, num_classes: int, depth: int,
                 width: int, heads: int, patch_size: int, mlp_ratio: float,
                 head_input: str = "final_norm"):
        super().__init__(head_input)
        self.vit = VisionTransformer(
            img_size=image_size, patch_size=patch_size, in_chans=in_chans,
            num_classes=num_classes, embed_dim=width, depth=depth, num_heads=heads,
            mlp_ratio=mlp_ratio, global_pool="token", class_token=True)
        self.num_layers, self.width = depth, width

    @classmethod
    def from_spec(cls, model_spec: dict, data_info: dict) -> "ViTClassifier":
        """The model an experiment's `model` section describes: a timm checkpoint (whose
        size must match the section) or a randomly initialised ViT of the given size."""
        channels, height, _ = data_info["input_shape"]
        size = model_spec.get("input_size") or height  # inputs are resized to it in the model
        if not model_spec.get("pretrained"):
            return cls(image_size=size, in_chans=channels, num_classes=data_info["num_classes"],
                       depth=model_spec["depth"], width=model_spec["width"],
                       heads=model_spec["heads"], patch_size=model_spec["patch_size"],
                       mlp_ratio=model_spec["mlp_ratio"], head_input=model_spec["head_input"])
        model = cls.from_timm(model_spec["pretrained"], num_classes=data_info["num_classes"],
                              in_chans=channels, image_size=size,
                              head_input=model_spec["head_input"])
        vit = model.vit
        built = {"depth": len(vit.blocks), "width": vit.embed_dim,
                 "heads": vit.blocks[0].attn.num_heads, "patch_size": vit.patch_embed.patch_size[0]}
        wrong = {k: (model_spec[k], v) for k, v in built.items() if model_spec.get(k) != v}
        if wrong:
            raise ConfigError(f"model.pretrained {model_spec['pretrained']} has " + ", ".join(
                f"{k} {v} (the config says {c})" for k, (c, v) in wrong.items()))
        return model

    @classmethod
    def from_timm(cls, name: str, *, num_classes: int, in_chans: int, image_size: int,
                  head_input: str = "final_norm", pretrained: bool = True) -> "ViTClassifier":
        """A timm VisionTransformer by name (e.g. deit_small_patch16_224), with its pretrained
        weights (downloaded by timm) and a new head for `num_classes`; timm resamples the
        position embedding when `image_size` differs from the pretraining size."""
        import timm

        vit = timm.create_model(name, pretrained=pretrained, num_classes=num_classes,
                                in_chans=in_chans, img_size=image_size)
        if not isinstance(vit, VisionTransformer) or vit.global_pool != "token":
            raise ValueError(f"timm model {name!r} is not a VisionTransformer with a class token")
        model = cls.__new__(cls)
        LayeredClassifier.__init__(model, head_input)
        model.vit, model.num_layers, model.width = vit, len(vit.blocks), vit.embed_dim
        return model

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        size = tuple(self.vit.patch_embed.img_size)
        if tuple(inputs.shape[-2:]) != size:  # model.input_size: e.g. 32x32 CIFAR for a 224 DeiT
            inputs = F.interpolate(inputs, size=size, mode="bilinear", align_corners=False)
        x = self.vit.patch_embed(inputs)
        x = self.vit._pos_embed(x)
        x = self.vit.patch_drop(x)
        return self.vit.norm_pre(x)

    def block(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        return self.vit.blocks[index](hidden)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden[:, 0]

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.vit.norm(h)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        # timm's forward_head after pooling; fc_norm is Identity with token pooling.
        return self.vit.head(self.vit.head_drop(self.vit.fc_norm(h)))
