"""Gather one experiment's per-run early-exit results into tidy tables and the multi-exit table."""

from layerwise import cli
from layerwise.io import write_csv
from layerwise.report.exit_tables import exit_table, format_exit_table
from layerwise.report.tables import gather_runs, over_seeds, write_table
from layerwise.study.plan import EXIT_PARTS


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the runs of the exit study and their files")
    cli.add_output_options(parser, EXIT_PARTS)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("runs",))

    frames = {part: gather_runs(spec["runs"], part) for part in EXIT_PARTS}

    # Measured speed-ups join the operating points, one column per timed batch size.
    timing = frames["timing"].pivot_table(index=["method", "seed", "policy"],
                                          columns="batch_size", values="wall_speedup")
    timing.columns = [f"wall_speedup_b{b}" for b in timing.columns]
    frames["operating_points"] = points = frames["operating_points"].merge(
        timing.reset_index(), how="left", on=["method", "seed", "policy"])
    for part, frame in frames.items():
        write_csv(getattr(args, part), frame)
    table = exit_table(points)
    write_table(table, args.table,
                f"Early exit at the operating point chosen on validation (fastest threshold "
                f"within the allowed accuracy drop of full depth), on test; "
                f"{over_seeds(points)}. Speed-up is the paper's L·N/Σk; FLOPs "
                f"count every exit head evaluated; wall-clock speed-ups are measured against "
                f"full-depth inference.",
                formatted=format_exit_table(table))


if __name__ == "__main__":
    cli.run(main)
