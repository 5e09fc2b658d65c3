"""Speed measurements (not tests); each prints one JSON object as its last line."""

from __future__ import annotations

import tempfile

from layerwise.study.config import experiment_by_name, load_config_file, validate_config
from layerwise.data.prepared import load_split
from layerwise.data.sources import prepare_dataset


def experiment_split(config_path: str, name: str | None, split: str):
    """(experiment, inputs, labels, data info) of the experiment `name` of a config (the first
    when None), its dataset prepared in a temporary folder and `split` read back."""
    config = validate_config(load_config_file(config_path))
    exp = experiment_by_name(config, name) if name else config["experiments"][0]
    with tempfile.TemporaryDirectory() as data_dir:
        prepare_dataset(config["datasets"][exp["dataset"]], data_dir)
        x, y, info = load_split(data_dir, split)
    return exp, x, y, info
