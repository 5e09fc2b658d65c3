"""The one interface every backbone is wrapped behind.

Training methods, hidden-state extraction, layer-wise accuracy and early exit are written once
against `LayeredClassifier` and never ask which backbone they hold. A backbone provides four
small pieces: `embed` (inputs -> hidden state before block 1), `block` (run block l),
`pool` (the hidden state -> one vector per sample, e.g. the [CLS] token), and the two steps
of its own classifier path, `final_norm` and `head`.
"""

from __future__ import annotations

import torch
from torch import nn

HEAD_INPUTS = ("final_norm", "raw")


class LayeredClassifier(nn.Module):
    """A classifier whose representation after every block can be read and classified.

    Layer 0 is the embedding output and layer l (1..L) the output of block l. The shared
    classifier path is the model's own: `head(final_norm(h))`. With `head_input="raw"`,
    intermediate layers skip the final norm (the GPT-2 convention of the paper's code) while the
    last layer keeps it, so the model's own output is unchanged.
    """

    num_layers: int

    def __init__(self, head_input: str = "final_norm"):
        super().__init__()
        if head_input not in HEAD_INPUTS:
            raise ValueError(f"head_input must be one of {HEAD_INPUTS}, got {head_input!r}")
        self.head_input = head_input

    # --- what a backbone implements -------------------------------------------------------
    def embed(self, inputs) -> torch.Tensor:
        raise NotImplementedError

    def block(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        """Run block `index` (0-based), giving layer `index + 1`."""
        raise NotImplementedError

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        """The model's norm after its last block (identity for post-norm models)."""
        raise NotImplementedError

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """The model's own classifier: pooled (normed) features -> logits."""
        raise NotImplementedError

    # --- written once for every backbone --------------------------------------------------
    def classify(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Logits of the shared classifier for representations `h` of layer `layer`."""
        if self.head_input == "final_norm" or layer == self.num_layers:
            h = self.final_norm(h)
        return self.head(h)

    def layer_representations(self, inputs) -> torch.Tensor:
        """(L+1, B, d): the pooled representation after the embedding and after every block."""
        hidden = self.embed(inputs)
        reps = [self.pool(hidden)]
        for index in range(self.num_layers):
            hidden = self.block(index, hidden)
            reps.append(self.pool(hidden))
        return torch.stack(reps)

    def layer_logits(self, reps: torch.Tensor) -> torch.Tensor:
        """The shared classifier applied to every layer of `reps` in one call.

        `reps` is a stack of consecutive layers ending with layer L (all L+1 layers, or 1..L).
        """
        if self.head_input == "final_norm":
            return self.head(self.final_norm(reps))
        return torch.cat([self.head(reps[:-1]), self.head(self.final_norm(reps[-1:]))])

    def forward(self, inputs) -> torch.Tensor:
        hidden = self.embed(inputs)
        for index in range(self.num_layers):
            hidden = self.block(index, hidden)
        return self.classify(self.pool(hidden), self.num_layers)
