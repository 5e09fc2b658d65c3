"""What every script shares: its one --spec, one-line errors for problems the user can fix,
and the number of CPU threads."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from typing import Callable, Sequence

from layerwise.errors import USER_ERRORS, ConfigError, gated_checkpoint

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
        gated = gated_checkpoint(err)
        if gated is not None:
            print(f"error: {gated}", file=sys.stderr)
            sys.exit(1)
        if err.errno not in WRITE_ERRNOS:
            raise
        print(f"error: cannot write {err.filename or 'an output'}: {err.strerror}",
              file=sys.stderr)
        sys.exit(1)


def spec_parser(description: str | None, what: str) -> argparse.ArgumentParser:
    """A script's parser with its one --spec: the JSON object the study plan builds for the job
    (`what` says what it holds)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spec", required=True, help=f"{what}, as JSON (built by the plan)")
    return parser


def add_run_outputs(parser: argparse.ArgumentParser, log: str) -> None:
    """The files every run writes, trained, fitted post hoc or loaded as published: its
    weights, its log (`log` says what the log holds) and its provenance."""
    parser.add_argument("--model", required=True, help="the run's weights (safetensors)")
    parser.add_argument("--log", required=True, help=f"{log} (CSV)")
    parser.add_argument("--provenance", required=True, help="provenance (JSON)")


def read_spec(text: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict:
    """The job spec of --spec: a JSON object with every key of `required`, and no key outside
    `required` and `optional` (a misspelled setting is an error, not a silent default)."""
    spec = read_json_spec(text)
    check_keys("--spec", spec, required, optional)
    return spec


def check_keys(where: str, spec, required: Sequence[str],
               optional: Sequence[str] | None = ()) -> None:
    """`spec` (a part of the spec, named `where`) is an object with every key of `required`
    and none outside `required` and `optional` (any others where `optional` is None)."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} is a JSON {type(spec).__name__}, not an object")
    missing = [key for key in required if key not in spec]
    unknown = [] if optional is None else sorted(set(spec) - set(required) - set(optional))
    if missing or unknown:
        raise ConfigError(where + " " + "; ".join(
            part for part in (missing and f"lacks {', '.join(missing)}",
                              unknown and f"has unknown keys {', '.join(unknown)}") if part))


def read_json_spec(text: str):
    """--spec's JSON value."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--spec is not JSON: {err}") from None


def check_choices(name: str, values, allowed) -> None:
    """A spec's `name` (one value or a list) names only `allowed` values."""
    wrong = [v for v in (values if isinstance(values, list) else [values]) if v not in allowed]
    if wrong:
        raise ConfigError(f"--spec {name}: {', '.join(map(repr, wrong))} is not one of "
                          f"{', '.join(map(str, allowed))}")


def add_output_options(parser: argparse.ArgumentParser, names: Sequence[str],
                       required: bool = True, group: str | None = None) -> None:
    """One option per output file, named as the rule names the output (--layer-accuracy for
    layer_accuracy)."""
    where = parser.add_argument_group(group) if group else parser
    for name in names:
        where.add_argument(f"--{name.replace('_', '-')}", dest=name, required=required,
                           metavar="PATH")


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
