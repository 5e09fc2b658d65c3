"""What every script shares: one-line errors for problems the user can fix, and a device pick."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from layerwise.io import ArtifactError

# Errors that name a problem the user can fix: printed as one line, without a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (ArtifactError,)


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    from layerwise.config import ConfigError
    from layerwise.training import TrainingError

    try:
        main(argv)
    except (*USER_ERRORS, ConfigError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
