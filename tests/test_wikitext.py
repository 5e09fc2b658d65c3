"""The wikitext language-model source, offline: parquet files in the hub's layout of
Salesforce/wikitext written here, and a GPT-2-like checkpoint tokenizer saved as a folder."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer

from layerwise.data import running_text
from layerwise.data.prepared import SPLITS, load_split
from layerwise.data.running_text import EOT, train_byte_level_bpe
from layerwise.data.sources import prepare_dataset
from layerwise.data.wikitext import articles, prepare_wikitext
from layerwise.data import IGNORE

CONFIG = "wikitext-103-raw-v1"
WORDS = ("the album was released in by band and song game city river station war army "
         "@-@ , . ( ) 1998 2011").split()
MAX_LENGTH = 24


def paragraph(rng, words):
    return " " + " ".join(rng.choice(WORDS, words)) + " \n"


def article_lines(title, rng, paragraphs):
    """An article as the hub stores it: title, blank, paragraphs and a section, one row each."""
    lines = ["", f" = {title} = \n", ""]
    for i, words in enumerate(paragraphs):
        if i == 1:
            lines += ["", f" = = Section {title} = = \n", ""]
        lines += [paragraph(rng, words), ""]
    return lines


def split_lines(titles, seed):
    rng = np.random.default_rng(seed)
    lines = []
    for i, title in enumerate(titles):
        paragraphs = [3] if i % 3 == 0 else [int(n) for n in rng.integers(5, 40, size=3)]
        lines += article_lines(title, rng, paragraphs)
    return lines


TITLES = {"train": [f"Train article {i}" for i in range(8)],
          "val": ["Valid one", "Valid two", "Valid three"],
          "test": ["Test one", "Test two"]}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """<config>/train-0000{0,1}-of-00002.parquet (an article crosses them), validation, test."""
    root = tmp_path_factory.mktemp("wikitext")
    folder = root / CONFIG
    folder.mkdir()
    lines = {split: split_lines(TITLES[split], seed) for seed, split in enumerate(SPLITS)}
    cut = len(lines["train"]) // 2 + 1
    shards = {"train-00000-of-00002": lines["train"][:cut],
              "train-00001-of-00002": lines["train"][cut:],
              "validation-00000-of-00001": lines["val"], "test-00000-of-00001": lines["test"]}
    for name, rows in shards.items():
        pd.DataFrame({"text": rows}).to_parquet(folder / f"{name}.parquet")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A GPT-2-like tokenizer folder: byte-level BPE, <|endoftext|>, no pad token."""
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("checkpoint")
    trained = train_byte_level_bpe([" ".join(WORDS)] * 20 + split_lines(["x"], 9), 300)
    PreTrainedTokenizerFast(tokenizer_object=trained, bos_token=EOT, eos_token=EOT,
                            unk_token=EOT).save_pretrained(folder)
    return folder


def spec_of(root, tokenizer):
    return {"source": "wikitext", "val_fraction": 0.15, "test_fraction": 0.25, "split_seed": 0,
            "wikitext": {"repository": str(root), "config": CONFIG},
            "text": {"tokenizer": str(tokenizer), "vocab_size": 300, "max_length": MAX_LENGTH,
                     "lowercase": True}}


def expected_articles(root, split):
    hub = {"train": "train-*", "val": "validation-*", "test": "test-*"}[split]
    files = sorted((root / CONFIG).glob(f"{hub}.parquet"))
    return articles(pd.concat([pd.read_parquet(f) for f in files])["text"])


def test_an_article_runs_from_its_title_to_the_next():
    lines = ["", " stray line before any title \n", " = First = \n", "", " Text . \n",
             " = = Part = = \n", " More . \n", " = Second = \n", " = = = Deep = = = \n"]
    assert articles(lines) == [" = First = \n Text . \n = = Part = = \n More . \n",
                               " = Second = \n = = = Deep = = = \n"]


def test_each_article_gives_its_first_tokens_shifted(root, checkpoint, tmp_path):
    prepare_wikitext(spec_of(root, checkpoint), tmp_path / "out", tmp_path / "cache")
    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    padded = 0
    for split in SPLITS:
        x, y, info = load_split(tmp_path / "out", split)
        texts = expected_articles(root, split)
        assert [t.split(" = ")[1] for t in texts] == TITLES[split]  # official splits, in order
        assert x.shape == y.shape == (len(texts), MAX_LENGTH)
        for row, text in enumerate(texts):
            ids = tokenizer.encode(text, add_special_tokens=False).ids[:MAX_LENGTH + 1]
            n = len(ids) - 1
            assert x[row, :n].tolist() == ids[:-1] and y[row, :n].tolist() == ids[1:]
            assert (x[row, n:] == info["pad_id"]).all() and (y[row, n:] == IGNORE).all()
            padded += n < MAX_LENGTH
        assert info["tokens"][split] == int((y != IGNORE).sum())
        assert info["documents"][split] == len(texts)
    assert 0 < padded < sum(len(t) for t in TITLES.values())  # short and long articles


def test_info_of_a_checkpoint_tokenizer_without_pad_token(root, checkpoint, tmp_path):
    spec = spec_of(root, checkpoint)
    prepare_dataset(spec, tmp_path / "out", tmp_path / "cache")
    info = json.loads((tmp_path / "out" / "info.json").read_text())
    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    eot = tokenizer.token_to_id(EOT)
    assert info["source"] == "wikitext" and info["kind"] == "lm" and info["task"] == "causal_lm"
    assert info["num_classes"] == info["vocab_size"] == tokenizer.get_vocab_size()
    assert info["pad_id"] == info["eos_id"] == eot  # GPT-2 pads with its end-of-text token
    assert info["max_length"] == MAX_LENGTH and info["input_shape"] == [MAX_LENGTH]
    assert info["tokenizer"] == {"name": str(checkpoint), "file": "tokenizer.json"}
    assert info["val_is"] == "validation" and info["test_is"] == "test"
    assert info["origin"] == {"repository": str(root), "config": CONFIG} and info["spec"] == spec
    assert info["documents"] == {split: len(TITLES[split]) for split in SPLITS}
    x, _, _ = load_split(tmp_path / "out", "train")
    assert not (x[:, 0] == eot).any()  # no end-of-text token is added


def test_preparing_twice_gives_identical_files(root, checkpoint, tmp_path):
    for out in ("a", "b"):
        prepare_wikitext(spec_of(root, checkpoint), tmp_path / out, tmp_path / "cache")
    for name in ("splits.safetensors", "tokenizer.json", "info.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_trained_tokenizer_sees_the_training_articles_only(root, tmp_path, monkeypatch):
    seen = []

    def spy(texts, vocab_size):
        seen.extend(texts)
        return train_byte_level_bpe(texts, vocab_size)

    monkeypatch.setattr(running_text, "train_byte_level_bpe", spy)
    prepare_wikitext(spec_of(root, "byte_level_bpe"), tmp_path / "out", tmp_path / "cache")
    assert seen == expected_articles(root, "train")
    x, y, info = load_split(tmp_path / "out", "test")
    assert info["pad_id"] == 1 and info["tokenizer"]["name"] == "byte_level_bpe"
    inner = (y[:, :-1] != IGNORE) & (y[:, 1:] != IGNORE)
    assert torch.equal(x[:, 1:][inner], y[:, :-1][inner])
