"""A timm VisionTransformer behind the LayeredClassifier interface.

The stepping below is the body of timm's `VisionTransformer.forward_features`, split so that the
blocks can be run one at a time (early exit needs that; `forward_intermediates` returns all
layers at once). The tests check that it reproduces timm's own forward pass exactly.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer

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
        self.num_layers = depth

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
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
