"""What every script shares: one-line errors for problems the user can fix, and the number of
CPU threads."""

from __future__ import annotations

import errno
import sys
from typing import Callable, Sequence

from layerwise.errors import USER_ERRORS

# Reasons only a write gives: a full disk or quota, a read-only file system. The library's own
# writers say which output failed (OutputError); these catch a write elsewhere (a download).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a script's `main`; a problem the user can fix (a config error, a damaged input, an
    output that cannot be written) ends it with one line on stderr and exit code 1, anything
    else with its traceback."""
    try:
        main(argv)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        print(f"error: cannot write {err.filename or 'an output'}: {err.strerror}",
              file=sys.stderr)
        sys.exit(1)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
