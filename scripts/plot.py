"""Draw a figure from an experiment's summary tables (PDF and PNG); with --spec, every figure
of a list in one process (the workflow draws an experiment's figures so: each takes a second to
draw after seconds of imports). Each kind of figure, its options and its drawing function are a
record of layerwise.report.figure_kinds."""

import argparse

from layerwise import cli
from layerwise.errors import ConfigError
from layerwise.report.figure_kinds import FIGURES, figure_parser
from layerwise.report.style import save_figure


def parser() -> argparse.ArgumentParser:
    return figure_parser(__doc__)


def main(argv=None):
    listed = argparse.ArgumentParser(add_help=False)
    listed.add_argument("--spec", help="the figures to draw, as JSON: a list of argument "
                                       "lists, one figure each (built by the plan)")
    known, rest = listed.parse_known_args(argv)
    if known.spec is None:
        figures = [rest]
    else:
        if rest:
            raise SystemExit(f"error: --spec takes no other arguments, got {' '.join(rest)}")
        figures = cli.read_json_spec(known.spec)
        if not (isinstance(figures, list) and all(isinstance(f, list) for f in figures)):
            raise ConfigError("--spec is not a list of argument lists")
    arguments = [parser().parse_args(figure) for figure in figures]  # all checked first
    for args in arguments:
        save_figure(FIGURES[args.figure].drawer()(args), args.pdf, args.png)


if __name__ == "__main__":
    cli.run(main)
