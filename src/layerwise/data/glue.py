"""The six GLUE tasks of the paper's Fig 8, read through the `datasets` library.

The files are the hub's parquet layout of nyu-mll/glue (`<task>/train-*.parquet`,
`<task>/validation-*.parquet`, MNLI `mnli/validation_matched-*.parquet`); `glue.repository` may
also be a local folder with that layout. As the paper does, results are reported on the validation
set (MNLI: matched), which becomes our `test` split; our `val` split, for model selection, is a
stratified `val_fraction` of the training set, so nothing is tuned on what is reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from layerwise.data.text import write_text_dataset
from layerwise.data.sources import GLUE_TASKS, dataset_metric


def load_glue(task: str, repository: str, cache_dir: str | Path | None = None) -> dict:
    """{"train": ..., "eval": ...} as `datasets.Dataset`s of one task."""
    from datasets import load_dataset

    files = {"train": f"{task}/train-*.parquet",
             "eval": f"{task}/{GLUE_TASKS[task].eval_split}-*.parquet"}
    loaded = load_dataset(repository, data_files=files,
                          cache_dir=None if cache_dir is None else str(cache_dir))
    return {"train": loaded["train"], "eval": loaded["eval"]}


def _columns(dataset, task: str) -> tuple[list[str], list[str] | None, np.ndarray]:
    """First sentences, second sentences (None for single-sentence tasks) and labels."""
    names = GLUE_TASKS[task].text_columns
    first = list(dataset[names[0]])
    second = list(dataset[names[1]]) if len(names) == 2 else None
    return first, second, np.asarray(dataset["label"], dtype=np.int64)


def prepare_glue(spec: dict, out_dir: Path, cache_dir: Path | None = None) -> None:
    from sklearn.model_selection import train_test_split  # only data preparation needs it

    task = spec["glue"]["task"]
    loaded = load_glue(task, spec["glue"]["repository"], cache_dir)
    first, second, labels = _columns(loaded["train"], task)
    train, val = train_test_split(np.arange(len(labels)), test_size=spec["val_fraction"],
                                  stratify=labels, random_state=spec["split_seed"])

    def take(index):
        index = np.sort(index)
        return ([first[i] for i in index], None if second is None else [second[i] for i in index],
                labels[index])

    splits = {"train": take(train), "val": take(val), "test": _columns(loaded["eval"], task)}
    write_text_dataset(Path(out_dir), splits, spec["text"], {
        "source": "glue", "task": task, "num_classes": GLUE_TASKS[task].num_classes,
        "metric": dataset_metric(spec), "test_is": GLUE_TASKS[task].eval_split, "spec": spec,
    })
