"""WikiText-103 (raw) for a causal language model: the paper's GPT-2 setting.

The files are the hub's parquet layout of Salesforce/wikitext: `<config>/train-*.parquet` (two
shards for wikitext-103-raw-v1), `<config>/validation-*.parquet` and `<config>/test-*.parquet`,
read through the `datasets` library (`wikitext.repository` may also be a local folder with that
layout). Each has one column, `text`, one row per line of the original files, in order: a
non-empty line keeps its leading space and trailing newline, a blank line is "". An article
starts at its title, the one kind of line with a single '=' on each side (" = Valkyria Chronicles
III = \\n"; sections are " = = Gameplay = = \\n"), and runs to the next title; a document is an
article, its lines joined as they are, shards read in order so an article may cross them. Rows
before the first title belong to no article and are left out.

As in the first author's code, each article gives one sample, its first tokens: inputs ids[:-1]
and targets ids[1:] of its first `text.max_length` + 1 tokens (so `max_length` counts inputs; the
author's 256-token windows are max_length 255), a shorter article padded, its targets IGNORE.
No end-of-text token is added. An article is tokenized whole, as a tokenizer call with
truncation does, so that its first tokens are exactly those of the full text: roughly ten
minutes for the 540 MB of WikiText-103's training set on two cores. The official validation and test sets are
the val and test splits, so val_fraction, test_fraction and split_seed are unused. The
tokenizer is a transformers checkpoint's (`text.tokenizer`, gpt2 by default), or a byte-level
BPE trained on the training articles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from layerwise.data.prepared import SPLITS
from layerwise.data.running_text import encode_documents, lm_tokenizer, write_lm_dataset
from layerwise.data.sources import dataset_metric

TITLE = re.compile(r" = [^=](.*[^=])? = \n")
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def articles(lines: Iterable[str]) -> list[str]:
    """The articles of a split's lines, each its title line and the lines up to the next one."""
    found: list[list[str]] = []
    for line in lines:
        if TITLE.fullmatch(line):
            found.append([line])
        elif found:
            found[-1].append(line)
    return ["".join(article) for article in found]


def load_wikitext(repository: str, config: str, cache_dir: str | Path | None = None
                  ) -> dict[str, list[str]]:
    """The lines of each split (train, val, test) of one WikiText config."""
    from datasets import load_dataset

    files = {split: f"{config}/{hub}-*.parquet" for split, hub in HUB_SPLITS.items()}
    loaded = load_dataset(repository, data_files=files,
                          cache_dir=None if cache_dir is None else str(cache_dir))
    return {split: loaded[split].with_format("arrow")["text"].to_pylist() for split in SPLITS}


def prepare_wikitext(spec: dict, out_dir: Path, cache_dir: Path | None = None) -> None:
    settings, text_spec = spec["wikitext"], spec["text"]
    lines = load_wikitext(settings["repository"], settings["config"], cache_dir)
    split_articles = {split: articles(lines[split]) for split in SPLITS}
    tokenizer, eot_id, pad_id = lm_tokenizer(text_spec, split_articles["train"])
    limit = text_spec["max_length"] + 1
    sequences = {split: encode_documents(tokenizer, texts, limit)
                 for split, texts in split_articles.items()}
    write_lm_dataset(Path(out_dir), sequences, tokenizer, pad_id, text_spec, {
        "source": "wikitext", "metric": dataset_metric(spec), "eos_id": eot_id,
        "val_is": HUB_SPLITS["val"], "test_is": HUB_SPLITS["test"],
        "origin": {"repository": settings["repository"], "config": settings["config"]},
        "spec": spec,
    })
