"""Text to model inputs: a WordPiece tokenizer trained on the training split (or a checkpoint's
own), and the encoding every text dataset stores.

The inputs of a text split are one int64 tensor (N, 2, T): token ids and token type ids (segment
A or B of a sentence pair), truncated and padded to T = max_length; the model derives its
attention mask from `ids != pad_id`. The tokenizer that made them is saved as tokenizer.json
beside the splits, with its truncation and padding, so it reproduces the stored ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import (Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)

from layerwise.data.prepared import write_prepared
from layerwise.io import atomic_path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TRAINED_TOKENIZER = "wordpiece"  # the `text.tokenizer` value that means "train one here"
TOKENIZER_FILE = "tokenizer.json"


def _continuation_tokens(texts: Sequence[str], normalizer, pre_tokenizer) -> list[str]:
    """'##c' for every character c that follows another inside a word, sorted."""
    chars = set()
    for text in texts:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            chars.update(word[1:])
    return [f"##{c}" for c in sorted(chars)]


def train_wordpiece(texts: Sequence[str], vocab_size: int, lowercase: bool = True) -> Tokenizer:
    """A BERT-style WordPiece tokenizer (BERT's normalizer and pre-tokenizer) trained on `texts`.

    The trainer assigns ids to the '##c' continuation tokens in hash-map order, and those ids
    break ties between equally frequent merges, so two trainings on the same texts can differ
    (huggingface/tokenizers#1794). Handing them to the trainer up front, sorted, fixes their ids
    and makes training deterministic; the final tokenizer keeps only the real special tokens.
    """
    normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer_tokens = list(SPECIAL_TOKENS) + _continuation_tokens(texts, normalizer, pre_tokenizer)
    scratch = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    scratch.normalizer, scratch.pre_tokenizer = normalizer, pre_tokenizer
    scratch.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=trainer_tokens, show_progress=False))

    tokenizer = Tokenizer(models.WordPiece(scratch.get_vocab(), unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizer
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def pretrained_tokenizer(name: str) -> tuple[Tokenizer, str]:
    """The fast tokenizer of a transformers checkpoint (downloaded by transformers) and its pad
    token; it brings its own normalizer, vocabulary and [CLS]/[SEP] template."""
    from transformers import AutoTokenizer

    pretrained = AutoTokenizer.from_pretrained(name)
    return Tokenizer.from_str(pretrained.backend_tokenizer.to_str()), pretrained.pad_token


def encode(tokenizer: Tokenizer, first: Sequence[str], second: Sequence[str] | None = None,
           chunk: int = 4096) -> tuple[torch.Tensor, int]:
    """(N, 2, T) int64 token ids and token type ids, and how many samples were truncated.

    `tokenizer` must have truncation and padding to a fixed length enabled (see `fix_length`);
    a pair is truncated longest-first, as transformers does by default. Texts are encoded
    `chunk` at a time: an encoding object of 256 tokens takes about 48 KB, its ids 4 KB, so
    QQP's 364k training pairs in one batch would hold 17 GB.
    """
    batch = list(first) if second is None else list(zip(first, second))
    out, truncated = None, 0
    for start in range(0, len(batch), chunk):
        encodings = tokenizer.encode_batch(batch[start:start + chunk])
        ids = np.array([[e.ids, e.type_ids] for e in encodings], dtype=np.int64)
        if out is None:   # every encoding has the fixed length
            out = np.empty((len(batch), *ids.shape[1:]), np.int64)
        out[start:start + len(ids)] = ids
        truncated += sum(bool(e.overflowing) for e in encodings)
    return torch.from_numpy(out if out is not None else np.zeros((0, 2, 0), np.int64)), truncated


def fix_length(tokenizer: Tokenizer, max_length: int, pad_token: str = "[PAD]") -> int:
    """Truncate and pad every encoding to `max_length` tokens; returns the pad id."""
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise ValueError(f"the tokenizer has no pad token {pad_token!r}")
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token, length=max_length)
    return pad_id


def load_tokenizer(data_dir: str | Path) -> Tokenizer:
    """The tokenizer a prepared text dataset was encoded with."""
    return Tokenizer.from_file(str(Path(data_dir) / TOKENIZER_FILE))


def write_text_dataset(out_dir: Path, splits: dict[str, tuple], text_spec: dict,
                       info: dict) -> None:
    """Tokenize and write a text dataset: `splits` maps split -> (first, second or None, labels).

    With `text_spec["tokenizer"] == "wordpiece"` a tokenizer is trained on the training split's
    texts (both sentences of a pair); otherwise it names a checkpoint whose tokenizer is used.
    """
    if text_spec["tokenizer"] == TRAINED_TOKENIZER:
        first, second, _ = splits["train"]
        corpus = list(first) + (list(second) if second is not None else [])
        tokenizer = train_wordpiece(corpus, text_spec["vocab_size"], text_spec["lowercase"])
        pad_token = "[PAD]"
    else:
        tokenizer, pad_token = pretrained_tokenizer(text_spec["tokenizer"])
    max_length = text_spec["max_length"]
    pad_id = fix_length(tokenizer, max_length, pad_token)

    arrays, truncated = {}, {}
    for split, (first, second, labels) in splits.items():
        x, truncated[split] = encode(tokenizer, first, second)
        arrays[split] = (x, torch.tensor(np.asarray(labels), dtype=torch.int64))
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / TOKENIZER_FILE) as tmp:
        tokenizer.save(str(tmp))
    write_prepared(out_dir, arrays, {
        **info, "kind": "text", "input_shape": [2, max_length], "max_length": max_length,
        "vocab_size": tokenizer.get_vocab_size(), "pad_id": pad_id,
        "tokenizer": {"name": text_spec["tokenizer"], "file": TOKENIZER_FILE},
        "truncated": truncated,
    })
