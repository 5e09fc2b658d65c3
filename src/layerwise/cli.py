"""What every script shares: one-line errors for problems the user can fix, and a device pick."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from layerwise.errors import USER_ERRORS


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    try:
        main(argv)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
