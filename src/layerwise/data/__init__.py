"""Datasets: each source is prepared once into a folder of safetensors splits and a JSON
description (`layerwise.data.prepared`); `layerwise.data.sources` says which sources exist, how
each is prepared and what it is scored with."""

#: The target of a position that has none (a padding position of a token sequence): it carries
#: no loss, no accuracy and no class count. -100 is also what PyTorch's cross-entropy ignores.
IGNORE = -100
