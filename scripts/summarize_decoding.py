"""Gather a language model's per-run decoding results: self-speculative decoding (its timed
drafts and every draft exit) into the experiment's table, and text sampled at each fixed exit (paper Fig 9 c, d)."""

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
                "greedy decoding). Two drafts per run, chosen on validation prompts, each the "
                "plan a replay of the prompts predicts fastest of its kind: a fixed one (g "
                "tokens a round) and an adaptive one (stops at the first token whose top "
                "probability is below its threshold), reading layer E through the method's "
                "own exit ('exit') or through the model's final norm and head ('final', the "
                "logit lens); both timed there to say which is faster. On test prompts: "
                "acceptance (accepted / "
                "drafted tokens), tokens per verification pass, tokens/s of full-depth and "
                "speculative decoding timed in one loop with the order rotating (median over "
                "prompts), and the speed-up (median over prompts of the per-prompt ratio); "
                f"{over_seeds(speculative)}.",
                formatted=format_speculative_table(table))


if __name__ == "__main__":
    cli.run(main)
