"""A multi-layer perceptron behind the LayeredClassifier interface: the paper's residual ablation.

Layer 0 is a linear embedding of the flattened input; each of the `depth` layers is
ReLU(Linear(h)), added to its input when `residual` (h + f(h)) or replacing it otherwise.
The head is one linear classifier; there is no final norm. Without residual connections the
layers need not share a basis, which is where CKA (invariant to that) and COS (not) part ways.
Both variants are initialised alike (PyTorch's default for every layer, the same weights for
the same seed), so the ablation changes the skip connection and nothing else.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from layerwise.models.base import LayeredClassifier


class MLPClassifier(LayeredClassifier):
    def __init__(self, *, in_features: int, num_classes: int, depth: int, width: int,
                 residual: bool, head_input: str = "final_norm"):
        super().__init__(head_input)
        self.num_layers, self.width = depth, width
        self.residual = residual
        self.embedding = nn.Linear(in_features, width)
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.classifier = nn.Linear(width, num_classes)

    @classmethod
    def from_spec(cls, model_spec: dict, data_info: dict) -> "MLPClassifier":
        return cls(in_features=math.prod(data_info["input_shape"]),
                   num_classes=data_info["num_classes"], depth=model_spec["depth"],
                   width=model_spec["width"], residual=model_spec["residual"],
                   head_input=model_spec["head_input"])

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.embedding(inputs.flatten(1))

    def block(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.layers[index](hidden))
        return hidden + out if self.residual else out

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(h)
