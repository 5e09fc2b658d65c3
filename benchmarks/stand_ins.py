"""Offline stand-ins for what the paper's experiments download, at the downloads' shapes.

`benchmarks.paper_shapes` runs config/paper.yaml without a network. What it would download is
replaced here by local files of the same kind, layout and size where size matters to a model:

- hub checkpoints (timm's DeiT-S, bert-base-uncased, gpt2, the SimCSE coherence encoder) by a
  random initialisation of the same architecture, saved under the hub's name in a private hub
  cache (HF_HOME) as the hub's own files, so the config's names load unchanged;
- their tokenizers by tokenizers of the same vocabulary size built here: a WordPiece vocabulary
  of BERT's 30,522 entries, a byte-level BPE of GPT-2's 50,257 trained on generated words;
- GLUE and WikiText by parquet files in the hub datasets' layout (a local `repository`), of
  generated words, long enough to fill the paper's 256-token windows;
- ImageNet by an ImageFolder tree of 1,000 classes of generated JPEGs.

CIFAR and MNIST become the `generated` source (layerwise.data.generated): their downloads are
md5-pinned, so no local file can stand in for them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

BERT_VOCAB = 30522
GPT2_VOCAB = 50257
CLIP_VOCAB = 49408   # its last two ids: start and end of text
CLIP = "openai/clip-vit-base-patch32"
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EOT = "<|endoftext|>"
SIMCSE = "princeton-nlp/sup-simcse-bert-base-uncased"
DEIT = ("deit_small_patch16_224", "timm/deit_small_patch16_224.fb_in1k")


def words(count: int, generator: np.random.Generator) -> list[str]:
    """`count` distinct lowercase words of 3 to 9 letters, in a fixed order."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    found: dict[str, None] = {}
    while len(found) < count:
        lengths = generator.integers(3, 10, count)
        for row, length in zip(letters[generator.integers(0, 26, (count, 9))].tolist(), lengths):
            found.setdefault("".join(row[:length]))
    return list(found)[:count]


def sentences(vocabulary: list[str], count: int, length: int, generator: np.random.Generator
              ) -> list[str]:
    """`count` texts of `length` words drawn with Zipf-like frequencies, as words in text are."""
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    drawn = generator.choice(len(vocabulary), (count, length), p=weights / weights.sum())
    return [" ".join(vocabulary[i] for i in row) for row in drawn]


# --- the private hub cache ------------------------------------------------------------------
def snapshot(hub: Path, repo_id: str, kind: str = "models") -> Path:
    """The snapshot folder of `repo_id` in the hub cache at `hub` (HF_HOME/hub), with refs/main
    naming it, as huggingface_hub lays out what it downloads."""
    repo = hub / f"{kind}--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    folder = repo / "snapshots" / commit
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def bert_tokenizer(folder: Path, vocabulary: list[str]):
    from transformers import BertTokenizerFast

    entries = BERT_SPECIALS + vocabulary
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(entries)},
                                  do_lower_case=True)
    assert len(tokenizer) == BERT_VOCAB, len(tokenizer)
    tokenizer.save_pretrained(folder)


def gpt2_tokenizer(folder: Path, vocabulary: list[str]):
    """A byte-level BPE of exactly GPT-2's vocabulary size, its last id the end-of-text token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    texts = (" ".join(vocabulary[i:i + 1000] * 2) for i in range(0, len(vocabulary), 1000))
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=GPT2_VOCAB - 1, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.add_special_tokens([EOT])
    wrapped = GPT2TokenizerFast(tokenizer_object=tokenizer, eos_token=EOT, bos_token=EOT,
                                unk_token=EOT)
    assert len(wrapped) == GPT2_VOCAB and wrapped.eos_token_id == GPT2_VOCAB - 1
    wrapped.save_pretrained(folder)


def clip_tokenizer(folder: Path, vocabulary: list[str]):
    """A lowercasing word-level tokenizer of exactly CLIP's vocabulary size and special ids
    (start 49406, end 49407, padding with the end token), its words those of the prompts and
    of `vocabulary`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    prompt = ["<unk>", "this", "is", "a", "photo", "of", "class"] + [str(k) for k in range(10)]
    entries = list(dict.fromkeys(prompt + vocabulary))[:CLIP_VOCAB - 2]
    entries += ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(entries)},
                                           unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", CLIP_VOCAB - 2), ("<|endoftext|>", CLIP_VOCAB - 1)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|startoftext|>",
                                      eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                      unk_token="<unk>")
    assert len(wrapped) == CLIP_VOCAB and wrapped.eos_token_id == CLIP_VOCAB - 1
    wrapped.save_pretrained(folder)


def hub_cache(hub: Path, bert_words: list[str], gpt2_words: list[str], seed: int = 0) -> None:
    """Random checkpoints and local tokenizers under the hub names the paper config uses."""
    import timm
    import torch
    from safetensors.torch import save_file
    from transformers import (BertConfig, BertForPreTraining, BertModel, CLIPConfig,
                              CLIPImageProcessor, CLIPModel, GPT2Config, GPT2LMHeadModel)

    torch.manual_seed(seed)
    for name, model in (("bert-base-uncased", BertForPreTraining(BertConfig())),
                        (SIMCSE, BertModel(BertConfig())),
                        ("gpt2", GPT2LMHeadModel(GPT2Config()))):
        folder = snapshot(hub, name)
        model.save_pretrained(folder)
        if name == "gpt2":
            gpt2_tokenizer(folder, gpt2_words)
        else:
            bert_tokenizer(folder, bert_words)
    architecture, repo_id = DEIT
    deit = timm.create_model(architecture, pretrained=False)
    folder = snapshot(hub, repo_id)
    save_file({k: v.contiguous() for k, v in deit.state_dict().items()},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(
        {"architecture": architecture, "num_classes": 1000,
         "pretrained_cfg": {"tag": "fb_in1k"}}))
    # transformers' CLIPConfig defaults are ViT-B/32's shapes; its processor's, OpenAI's
    folder = snapshot(hub, CLIP)
    CLIPModel(CLIPConfig()).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    clip_tokenizer(folder, gpt2_words)


# --- datasets in the hub's layouts ------------------------------------------------------------
def write_parquet(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def glue_folder(root: Path, tasks: dict, vocabulary: list[str], rows: dict[str, int],
                generator: np.random.Generator, words_per_sentence: int = 200) -> None:
    """<task>/train-*.parquet and <task>/<eval split>-*.parquet of each GLUE task: its text
    columns (sentences long enough to be truncated to the paper's 256 tokens) and balanced
    labels. `tasks` maps a task to its record (layerwise.data.sources.GLUE_TASKS)."""
    for task, record in tasks.items():
        for split, count in (("train", rows["train"]), (record.eval_split, rows["test"])):
            columns = {column: sentences(vocabulary, count, words_per_sentence, generator)
                       for column in record.text_columns}
            columns["label"] = generator.permutation(np.arange(count) % record.num_classes)
            columns["idx"] = np.arange(count)
            write_parquet(root / task / f"{split}-00000-of-00001.parquet", columns)


def wikitext_folder(root: Path, config: str, vocabulary: list[str], articles: dict[str, int],
                    generator: np.random.Generator, words_per_line: int = 120) -> None:
    """<config>/<split>-*.parquet as Salesforce/wikitext holds them: one row a line, an article a
    title line, blank lines, a section heading and paragraphs long enough for 256 tokens."""
    for split, count in articles.items():
        lines = []
        for title in sentences(vocabulary, count, 2, generator):
            paragraphs = sentences(vocabulary, 3, words_per_line, generator)
            lines += ["", f" = {title.title()} = \n", "", f" {paragraphs[0]} \n", "",
                      " = = Section = = \n", "", f" {paragraphs[1]} \n", f" {paragraphs[2]} \n"]
        write_parquet(root / config / f"{split}-00000-of-00001.parquet", {"text": lines})


def image_tree(root: Path, classes: int, per_class: dict[str, int],
               generator: np.random.Generator, size: tuple[int, int] = (320, 256)) -> None:
    """train/ and val/ of `classes` class folders of JPEGs, ImageNet's layout (n%08d names).
    Images are noise, smoothed a little so JPEG has something to compress."""
    from PIL import Image

    for split, count in per_class.items():
        for k in range(classes):
            folder = root / split / f"n{k:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                coarse = generator.integers(0, 256, (size[1] // 8, size[0] // 8, 3), np.uint8)
                image = Image.fromarray(coarse).resize(size, Image.BILINEAR)
                image.save(folder / f"{split}_{k}_{i}.JPEG", quality=85)
