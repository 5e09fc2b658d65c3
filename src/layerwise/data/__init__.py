"""Datasets: each source is prepared once into a folder of safetensors splits and a JSON
description (`layerwise.data.prepared`); `layerwise.data.sources` says which sources exist, how
each is prepared and what it is scored with."""
