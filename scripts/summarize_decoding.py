"""Gather a language model's per-run decoding results: self-speculative decoding (one row per
draft exit) into the experiment's table, and text sampled at each fixed exit (paper Fig 9 c, d)."""

import argparse

from layerwise import cli
from layerwise.io import write_csv
from layerwise.report.decoding import format_speculative_table, speculative_table
from layerwise.report.tables import gather_runs, over_seeds, write_table

PARTS = ("speculative", "generation")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="append", nargs=2 + len(PARTS), required=True,
                        metavar=("METHOD", "SEED", *(p.upper() for p in PARTS)))
    for part in PARTS:
        parser.add_argument(f"--{part}-out", required=True)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)

    frames = {part: gather_runs(args.run, index) for index, part in enumerate(PARTS, start=2)}
    for part, frame in frames.items():
        write_csv(getattr(args, f"{part}_out"), frame)
    speculative = frames["speculative"]
    table = speculative_table(speculative)
    write_table(table, args.table,
                "Self-speculative greedy decoding at batch 1 (lossless: the output is full-depth "
                "greedy decoding): the draft exit E and draft length g chosen on validation "
                "prompts (most tokens/s), then on test prompts the acceptance (accepted / "
                "drafted tokens), the share of test tokens whose layer-E prediction equals "
                "layer L's, tokens per verification pass, and tokens/s against full-depth "
                f"decoding with the same cache code (median over prompts); "
                f"{over_seeds(speculative)}.",
                formatted=format_speculative_table(table))


if __name__ == "__main__":
    cli.run(main)
