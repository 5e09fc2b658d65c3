"""Where a result came from: code version, packages, machine, seed and time."""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "timm", "transformers", "numpy", "scipy", "pandas", "scikit-learn",
            "safetensors", "snakemake", "layerwise")


def config_hash(spec) -> str:
    """A short stable hash of a JSON-able spec; stored in artifacts to match them to a config."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def git_commit(root: Path | None = None) -> str | None:
    root = root or Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src",
                                "scripts", "workflow"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance(**fields) -> dict:
    """A provenance record; `fields` adds run specifics (seed, spec, wall time, ...)."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "host": socket.gethostname(),
        "device": device_description(),
        **fields,
    }
