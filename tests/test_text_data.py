"""Text datasets, offline: the WordPiece tokenizer, the encoding, the GLUE loader on parquet files
in the hub's layout, and the Rotten Tomatoes preparer on a small wheel built here."""

import bz2
import hashlib
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer

from layerwise.data.prepared import load_split
from layerwise.data.sources import prepare_dataset
from layerwise.data.glue import prepare_glue
from layerwise.data.rotten_tomatoes import MEMBER, prepare_rotten_tomatoes, read_snippets
from layerwise.data.text import (SPECIAL_TOKENS, encode, fix_length, load_tokenizer,
                                 train_wordpiece, write_text_dataset)
from layerwise.data.downloads import DownloadError, PinnedWheel

WORDS = ("good bad great awful film plot actors boring moving funny dull brilliant story "
         "scenes director music slow charming mess delight").split()


def sentences(n, seed=0, words=(4, 12)):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(*words))) for _ in range(n)]


TEXT = {"max_length": 16, "tokenizer": "wordpiece", "vocab_size": 120, "lowercase": True}


# --- tokenizer and encoding ----------------------------------------------------------------------
def test_wordpiece_training_is_deterministic_and_keeps_special_ids():
    corpus = sentences(200) + ["Unbelievably, the Cinematography was gorgeous!"]
    first, second = train_wordpiece(corpus, 150), train_wordpiece(corpus, 150)
    assert first.to_str() == second.to_str()
    assert [first.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert first.get_vocab_size() <= 150
    tokens = first.encode("GOOD film").tokens
    assert tokens == ["[CLS]", "good", "film", "[SEP]"]  # lowercased, wrapped


def test_saved_tokenizer_reloads_offline_with_the_same_encodings(tmp_path):
    tokenizer = train_wordpiece(sentences(100), 120)
    fix_length(tokenizer, 12)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    reloaded = load_tokenizer(tmp_path)
    texts = sentences(20, seed=1)
    assert torch.equal(encode(tokenizer, texts)[0], encode(reloaded, texts)[0])
    # transformers reads the same file as a fast tokenizer (and pads only when asked to)
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    stored = reloaded.encode(texts[0])
    unpadded = [i for i, keep in zip(stored.ids, stored.attention_mask) if keep]
    assert fast(texts[0])["input_ids"] == unpadded


def test_encoding_pads_truncates_and_marks_segments():
    tokenizer = train_wordpiece(sentences(100), 120)
    pad_id = fix_length(tokenizer, 10)
    x, truncated = encode(tokenizer, ["good film", " ".join(["dull"] * 20)])
    assert x.shape == (2, 2, 10) and x.dtype == torch.int64 and truncated == 1
    ids, types = x[:, 0], x[:, 1]
    good, film = tokenizer.token_to_id("good"), tokenizer.token_to_id("film")
    assert ids[0].tolist()[:4] == [2, good, film, 3]
    assert (ids[0, 4:] == pad_id).all() and (types == 0).all()
    pair, _ = encode(tokenizer, ["good film"], ["bad plot"])
    # [CLS] good film [SEP] are segment A, bad plot [SEP] segment B
    assert pair[0, 1].tolist()[:7] == [0, 0, 0, 0, 1, 1, 1]
    assert (pair[0, 0] == 3).sum() == 2
    # encoded a few at a time (bounded memory), the same ids and truncation count
    texts = ["good film", " ".join(["dull"] * 20), "bad plot", " ".join(["good"] * 12), "film"]
    whole, cut = encode(tokenizer, texts, texts[::-1]), encode(tokenizer, texts, texts[::-1], 2)
    assert torch.equal(whole[0], cut[0]) and whole[1] == cut[1] > 0


def test_a_checkpoint_tokenizer_is_used_as_transformers_loads_it(tmp_path):
    """The pretrained path (bert-base-uncased in the paper config) on a checkpoint folder made
    here: transformers loads it by path, offline."""
    from transformers import PreTrainedTokenizerFast

    checkpoint = tmp_path / "checkpoint"
    trained = train_wordpiece(sentences(100), 120)
    PreTrainedTokenizerFast(tokenizer_object=trained, pad_token="[PAD]", unk_token="[UNK]",
                            cls_token="[CLS]", sep_token="[SEP]").save_pretrained(checkpoint)
    labels = np.array([0, 1] * 10)
    splits = {split: (sentences(20, seed=i), None, labels)
              for i, split in enumerate(("train", "val", "test"))}
    write_text_dataset(tmp_path / "out", splits, {**TEXT, "tokenizer": str(checkpoint)},
                       {"source": "glue", "num_classes": 2, "metric": "accuracy", "spec": {}})
    x, _, info = load_split(tmp_path / "out", "test")
    assert info["tokenizer"]["name"] == str(checkpoint)
    assert info["vocab_size"] == trained.get_vocab_size()
    fix_length(trained, TEXT["max_length"])
    assert torch.equal(x, encode(trained, splits["test"][0])[0])


# --- GLUE in the hub's parquet layout ------------------------------------------------------------
def write_glue(root, task, columns, files, rows=(60, 20), seed=0):
    rng = np.random.default_rng(seed)
    folder = root / task
    folder.mkdir(parents=True, exist_ok=True)
    classes = 3 if task == "mnli" else 2
    for split, n in zip(files, rows):
        frame = {c: sentences(n, seed=seed + i + len(split)) for i, c in enumerate(columns)}
        frame["label"] = np.resize(np.arange(classes), n)
        rng.shuffle(frame["label"])
        frame["idx"] = np.arange(n, dtype=np.int32)
        pd.DataFrame(frame).to_parquet(folder / f"{split}-00000-of-00001.parquet")


@pytest.fixture(scope="module")
def glue_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    write_glue(root, "sst2", ["sentence"], ["train", "validation", "test"])
    write_glue(root, "mrpc", ["sentence1", "sentence2"], ["train", "validation"])
    write_glue(root, "mnli", ["premise", "hypothesis"],
               ["train", "validation_matched", "validation_mismatched"], rows=(60, 21, 23))
    return root


def glue_spec(root, task):
    return {"source": "glue", "glue": {"task": task, "repository": str(root)},
            "val_fraction": 0.2, "test_fraction": 0.25, "split_seed": 0, "text": TEXT}


def test_glue_single_sentences_become_train_val_and_the_validation_set(glue_root, tmp_path):
    prepare_glue(glue_spec(glue_root, "sst2"), tmp_path, tmp_path / "cache")
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["metric"] == "accuracy" and info["num_classes"] == 2
    assert info["sizes"] == {"train": 48, "val": 12, "test": 20}
    assert info["class_counts"]["val"] == [6, 6]  # stratified
    x, y, _ = load_split(tmp_path, "test")
    validation = pd.read_parquet(glue_root / "sst2" / "validation-00000-of-00001.parquet")
    assert y.tolist() == validation["label"].tolist()
    assert torch.equal(x, encode(load_tokenizer(tmp_path), validation["sentence"].tolist())[0])
    assert (x[:, 1] == 0).all()


def test_glue_pairs_are_two_segments_scored_by_f1(glue_root, tmp_path):
    prepare_glue(glue_spec(glue_root, "mrpc"), tmp_path, tmp_path / "cache")
    x, _, info = load_split(tmp_path, "train")
    assert info["metric"] == "f1" and x.shape[1:] == (2, TEXT["max_length"])
    assert (x[:, 1] == 1).any(dim=1).all()  # every sample has a second segment
    assert ((x[:, 0] == 3).sum(dim=1) == 2).all()  # and two [SEP]


def test_mnli_is_evaluated_on_the_matched_validation_set(glue_root, tmp_path):
    prepare_dataset(glue_spec(glue_root, "mnli"), tmp_path, tmp_path / "cache")
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["sizes"]["test"] == 21 and info["num_classes"] == 3
    assert info["test_is"] == "validation_matched"


# --- Rotten Tomatoes from a wheel ----------------------------------------------------------------
def corpus_wheel(folder):
    rows = ([("plot", "A man walks into a bar.")] * 3
            + [("fresh", t) for t in sentences(40, seed=3, words=(3, 6))]
            + [("rotten", t) for t in sentences(40, seed=4, words=(7, 11))]
            + [("fresh", "good film")] * 2                                # a duplicate
            + [("fresh", "ambiguous"), ("rotten", "ambiguous")])          # conflicting labels
    frame = pd.DataFrame(rows, columns=["category", "text"]).assign(
        movie_name="m", has_plot_and_reviews=False)
    path = folder / "corpus-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(MEMBER, bz2.compress(frame.to_csv(index=False).encode()))
    return path


def test_snippets_drop_plots_duplicates_and_conflicts(tmp_path):
    snippets = read_snippets(corpus_wheel(tmp_path))
    assert "A man walks into a bar." not in set(snippets["text"])
    assert "ambiguous" not in set(snippets["text"])
    assert snippets["text"].is_unique and (snippets["text"] == "good film").sum() == 1
    assert set(snippets["label"]) == {0, 1}


def test_rotten_tomatoes_preparer_checks_the_pinned_hash(tmp_path):
    wheel = corpus_wheel(tmp_path)
    pin = PinnedWheel("corpus==0.1", wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest())
    spec = {"source": "rotten_tomatoes", "val_fraction": 0.2, "test_fraction": 0.25,
            "split_seed": 0, "text": TEXT}
    prepare_rotten_tomatoes(spec, tmp_path / "out", tmp_path, wheel=pin)
    info = json.loads((tmp_path / "out" / "info.json").read_text())
    assert info["source"] == "rotten_tomatoes" and sum(info["sizes"].values()) == 81
    assert (tmp_path / "out" / "tokenizer.json").exists()
    tampered = PinnedWheel(pin.requirement, pin.filename, "f" * 64)
    with pytest.raises(DownloadError, match="does not match the pinned ffff"):
        prepare_rotten_tomatoes(spec, tmp_path / "again", tmp_path, wheel=tampered)
    assert not (tmp_path / "again").exists()


def test_tokenizer_is_trained_on_the_training_split_only(tmp_path):
    labels = np.array([0, 1] * 10)
    splits = {"train": (sentences(20), None, labels),
              "val": (["zebra"] * 20, None, labels), "test": (["zebra"] * 20, None, labels)}
    write_text_dataset(tmp_path, splits, TEXT, {"source": "glue", "num_classes": 2,
                                                "metric": "accuracy", "spec": {}})
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert tokenizer.token_to_id("zebra") is None
