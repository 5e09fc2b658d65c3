"""Gather a language model's per-run decoding results: self-speculative decoding (one row per
draft exit) into the experiment's table, and text sampled at each fixed exit (paper Fig 9 c, d)."""

from layerwise import cli
from layerwise.io import write_csv
from layerwise.report.decoding import format_speculative_table, speculative_table
from layerwise.report.tables import gather_runs, over_seeds, write_table
from layerwise.study.plan import DECODING_PARTS


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the runs and their decoding files")
    cli.add_output_options(parser, DECODING_PARTS)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("runs",))

    frames = {part: gather_runs(spec["runs"], part) for part in DECODING_PARTS}
    for part, frame in frames.items():
        write_csv(getattr(args, part), frame)
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
