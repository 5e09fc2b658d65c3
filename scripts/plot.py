"""Draw a figure from an experiment's summary tables (PDF and PNG); with --batch, every
figure of a list in one process (the workflow draws an experiment's figures so: each takes a
second to draw after seconds of imports). Each kind of figure, its options and its drawing
function are a record of layerwise.report.figure_kinds."""

import argparse
import json

from layerwise import cli
from layerwise.report.figure_kinds import FIGURES, figure_parser
from layerwise.report.style import save_figure


def parser() -> argparse.ArgumentParser:
    return figure_parser(__doc__)


def main(argv=None):
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument("--batch", help="a JSON list of argument lists, one figure each")
    known, rest = batch.parse_known_args(argv)
    if known.batch is None:
        figures = [rest]
    else:
        if rest:
            raise SystemExit(f"error: --batch takes no other arguments, got {' '.join(rest)}")
        figures = json.loads(known.batch)
    arguments = [parser().parse_args(figure) for figure in figures]  # all checked first
    for args in arguments:
        save_figure(FIGURES[args.figure].drawer()(args), args.pdf, args.png)


if __name__ == "__main__":
    cli.run(main)
