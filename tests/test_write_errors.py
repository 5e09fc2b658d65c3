"""A full disk or a read-only folder is the user's to fix: every writer of layerwise.io leaves
nothing partial behind and names the file it was writing, and a script's entry (`cli.run`) says
so in one line with exit code 1, keeping tracebacks for everything else."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from layerwise import cli, io
from layerwise.errors import OutputError

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


def write_checkpoint(path):
    from layerwise.train.loop import save_checkpoint

    save_checkpoint(path, {"model": {"w": torch.zeros(10_000)}, "log": []})


def write_tokenizer(path):
    from tokenizers import Tokenizer, models

    vocab = {f"word{i}": i for i in range(2_000)} | {"[UNK]": 2_000}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    with io.atomic_path(path) as tmp:  # as data/text.py writes a dataset's tokenizer
        tokenizer.save(str(tmp))


# Each writer with more than 4 KiB to write.
WRITERS = {
    "csv": lambda path: io.write_csv(path, pd.DataFrame({"a": range(10_000)})),
    "json": lambda path: io.write_json(path, {"a": list(range(10_000))}),
    "text": lambda path: io.write_text(path, "x" * 10_000),
    "tensors": lambda path: io.save_tensors(path, {"w": torch.zeros(10_000)}, {"k": "v"}),
    "checkpoint": write_checkpoint,
    "tokenizer": write_tokenizer,
}


def fill_the_disk(monkeypatch):
    """From now on the disk is full, and says so when a written file is synced (as a network or
    delayed-allocation file system does): the writer itself has succeeded."""
    def fsync(fd):
        raise OSError(errno.ENOSPC, NO_SPACE)
    monkeypatch.setattr(io.os, "fsync", fsync)


@pytest.mark.parametrize("kind", ["csv", "json", "tensors"])
def test_a_full_disk_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch,
                                                                       kind):
    path = tmp_path / "out" / f"result.{kind}"
    WRITERS[kind](path)
    before = path.read_bytes()
    fill_the_disk(monkeypatch)
    with pytest.raises(OutputError) as caught:
        WRITERS[kind](path)
    assert str(caught.value) == f"cannot write {path}: {NO_SPACE}"
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert list(path.parent.iterdir()) == [path] and path.read_bytes() == before


@contextlib.contextmanager
def file_size_limit():
    """Files larger than 4 KiB cannot be written: the system refuses the write itself (EFBIG,
    "File too large"), so each library reports it in its own way, as it would a full disk.
    Only inside the block: pytest's own output (a file or pipe in CI) must never meet it."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # Python ignores SIGXFSZ
    try:
        yield os.strerror(errno.EFBIG)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_writer_names_the_file_the_system_refused(tmp_path, kind):
    """pandas and text raise an OSError, safetensors and tokenizers an error whose message
    ends in '(os error 27)', torch.save a RuntimeError over its file handle's OSError."""
    path = tmp_path / f"result.{kind}"
    caught = None
    with file_size_limit() as reason:
        try:
            WRITERS[kind](path)
        except OutputError as err:
            caught = err
    assert caught is not None, f"{kind}: no OutputError"
    assert str(caught) == f"cannot write {path}: {reason}"
    assert list(tmp_path.iterdir()) == []


def test_a_safetensors_io_error_names_the_file(tmp_path, monkeypatch):
    """What safetensors raises when the disk fills up mid-file."""
    import safetensors.torch
    from safetensors import SafetensorError

    def save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")
    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    path = tmp_path / "model.safetensors"
    with pytest.raises(OutputError, match=re.escape(f"cannot write {path}: {NO_SPACE}")):
        WRITERS["tensors"](path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into a read-only folder anyway (as the tests' container "
                           "runs); the monkeypatched variant below runs everywhere")
@pytest.mark.parametrize("kind", ["csv", "json", "tensors"])
def test_a_read_only_folder_names_the_file(tmp_path, kind):
    folder = tmp_path / "results"
    folder.mkdir()
    folder.chmod(0o555)
    path = folder / f"result.{kind}"
    try:
        with pytest.raises(OutputError, match=re.escape(f"cannot write {path}: Permission denied")):
            WRITERS[kind](path)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("where, code", [("tempfile.mkstemp", errno.EACCES),
                                         ("tempfile.mkstemp", errno.EROFS),
                                         ("os.mkdir", errno.EROFS)])
@pytest.mark.parametrize("kind", ["csv", "json", "tensors"])
def test_a_folder_that_takes_no_files_names_the_file(tmp_path, monkeypatch, where, code, kind):
    """What the system says to a writer that is not root: creating the temporary in a read-only
    folder (or a new folder on a read-only file system) fails."""
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path))
    module, name = where.split(".")
    monkeypatch.setattr(getattr(io, module) if module == "tempfile" else io.os, name, refuse)
    path = tmp_path / "new" / f"result.{kind}" if name == "mkdir" else tmp_path / kind
    with pytest.raises(OutputError, match=re.escape(f"cannot write {path}: {os.strerror(code)}")):
        WRITERS[kind](path)
    assert list(tmp_path.iterdir()) == []


def test_an_error_reading_another_file_is_not_an_output_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with io.atomic_path(tmp_path / "copy.txt") as tmp:
            tmp.write_bytes((tmp_path / "missing.txt").read_bytes())
    assert list(tmp_path.iterdir()) == []


# --- cli.run ----------------------------------------------------------------------------------
def test_a_script_that_cannot_write_ends_with_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "results" / "table.csv"
    fill_the_disk(monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        cli.run(lambda argv: WRITERS["csv"](path), [])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: cannot write {path}: {NO_SPACE}\n"
    assert list(path.parent.iterdir()) == []


def test_a_write_outside_the_library_writers_ends_with_one_line(capsys):
    def main(argv):  # as a download into a read-only cache would fail
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "data/downloads/x.whl")
    with pytest.raises(SystemExit) as exit_:
        cli.run(main, [])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == ("error: cannot write data/downloads/x.whl: "
                                       f"{os.strerror(errno.EROFS)}\n")


@pytest.mark.parametrize("error", [FileNotFoundError(errno.ENOENT, "No such file", "x.csv"),
                                   ValueError("a bug")])
def test_other_errors_keep_their_traceback(error):
    def main(argv):
        raise error
    with pytest.raises(type(error)):
        cli.run(main, [])


@pytest.mark.slow
def test_training_that_cannot_write_its_checkpoint_says_so_in_one_line(tmp_path):
    """scripts/train.py on a disk that takes no file over 4 KiB: its first checkpoint fails."""
    resource = pytest.importorskip("resource")
    from layerwise.data.sources import prepare_dataset

    data = tmp_path / "digits"
    prepare_dataset({"source": "sklearn_digits", "val_fraction": 0.15, "test_fraction": 0.25,
                     "split_seed": 0}, data)
    spec = {"experiment": "x", "dataset": "digits", "method": "standard", "seed": 0,
            "model": {"arch": "vit", "depth": 2, "width": 16, "heads": 2, "patch_size": 4,
                      "mlp_ratio": 2.0, "head_input": "final_norm"},
            "train": {"epochs": 1, "batch_size": 256, "lr": 1e-3, "weight_decay": 1e-4,
                      "schedule": "cosine", "milestones": [], "gamma": 0.1,
                      "warmup_epochs": 0, "label_smoothing": 0.0}}
    out = tmp_path / "run"
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "train.py")
    result = subprocess.run(
        [sys.executable, script, "--spec", json.dumps(spec), "--data", str(data),
         "--checkpoint", str(out / "ckpt.pt"), "--model", str(out / "model.safetensors"),
         "--log", str(out / "log.csv"), "--provenance", str(out / "provenance.json")],
        capture_output=True, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (f"error: cannot write {out / 'ckpt.pt'}: "
                                              f"{os.strerror(errno.EFBIG)}")
    assert list(out.iterdir()) == []
