"""Atomic, pickle-free reading and writing of every artifact the pipeline produces.

A file is written under a temporary name in its target folder and renamed into place, so a
killed job never leaves a half-written file that looks complete. A write that fails (disk full,
read-only folder) removes its temporary and raises OutputError naming the file it was writing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from layerwise.errors import ArtifactError, OutputError


_UMASK = os.umask(0)
os.umask(_UMASK)


# How a Rust library (safetensors, tokenizers) words an I/O error: "... (os error 28)".
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _write_failure(err: BaseException, tmp: Path) -> OSError | None:
    """The OSError behind `err`, raised while writing `tmp`, or None if it is not a failure to
    write `tmp`: `err` itself, the OSError a library wrapped (torch.save raises a RuntimeError
    whose context is its file handle's), or the error a Rust library names in its message. An
    OSError about another file (a source being read) is not one."""
    for candidate in (err, err.__cause__, err.__context__):
        if isinstance(candidate, OSError):
            about_tmp = candidate.filename is None or str(candidate.filename) == str(tmp)
            return candidate if about_tmp and candidate.errno is not None else None
    match = _RUST_OS_ERROR.search(str(err))
    if match:
        code = int(match.group(1))
        return OSError(code, os.strerror(code))
    return None


def _output_error(path: Path, cause: OSError) -> OutputError:
    return OutputError(cause.errno, cause.strerror, str(path))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    If the folder, the temporary or its contents cannot be written, the temporary is removed and
    OutputError names `path` (not the temporary) and the system's reason."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _output_error(path, err) from err
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())  # a full disk may only say so here
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; give them the usual mode
        os.replace(tmp, path)
    except Exception as err:
        cause = _write_failure(err, tmp)
        if cause is None:
            raise
        raise _output_error(path, cause) from err
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete temporary files that a killed writer of `path` left behind."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV without the index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


# safetensors writes its metadata map in no fixed order; one sorted JSON entry keeps the same
# content byte-identical from run to run.
METADATA_KEY = "layerwise"


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Save torch tensors as safetensors (contiguous, on CPU), atomically. A tensor sharing
    memory with one before it (a language model's tied embedding and head) is stored as a copy
    of its own, which safetensors requires; loading it back into the tied model restores both."""
    from safetensors.torch import save_file

    stored, seen = {}, set()
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        stored[name] = t.clone() if key in seen and t.numel() else t
        seen.add(key)
    tensors = stored
    header = {METADATA_KEY: json.dumps(metadata or {}, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def load_tensors(path: str | os.PathLike, keys=(), metadata: dict[str, str] | None = None,
                 finite: bool = True) -> tuple[dict, dict[str, str]]:
    """Load a safetensors file and check it before anyone uses it.

    `keys` must be present; every item of `metadata` must match the file's metadata (this is how
    a model saved under another config is caught); with `finite`, floating tensors must hold no
    NaN or Inf. Any failure raises ArtifactError naming the file.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored_meta = json.loads((handle.metadata() or {}).get(METADATA_KEY, "{}"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ArtifactError(f"{path}: damaged or not a safetensors file ({err})") from None
    missing = [k for k in keys if k not in tensors]
    if missing:
        raise ArtifactError(f"{path}: missing tensors {missing}")
    for key, expected in (metadata or {}).items():
        if stored_meta.get(key) != expected:
            raise ArtifactError(f"{path}: {key} is {stored_meta.get(key)!r}, expected {expected!r}"
                                " (written by another config or run; rerun the step that makes it)")
    if finite:
        for name, t in tensors.items():
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ArtifactError(f"{path}: tensor {name!r} contains NaN or Inf")
    return tensors, stored_meta
