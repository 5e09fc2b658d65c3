"""Gather one experiment's per-run early-exit results into tidy tables and the multi-exit table."""

import argparse

from layerwise import cli
from layerwise.report.exit_tables import exit_table, format_exit_table
from layerwise.io import write_csv
from layerwise.report.tables import gather_runs, over_seeds, write_table

PARTS = ("sweep", "operating_points", "exit_counts", "saturation", "timing")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="append", nargs=2 + len(PARTS), required=True,
                        metavar=("METHOD", "SEED", *(p.upper() for p in PARTS)))
    for part in PARTS:
        parser.add_argument(f"--{part.replace('_', '-')}-out", required=True)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)

    frames = {part: gather_runs(args.run, index) for index, part in enumerate(PARTS, start=2)}

    # Measured speed-ups join the operating points, one column per timed batch size.
    timing = frames["timing"].pivot_table(index=["method", "seed", "policy"],
                                          columns="batch_size", values="wall_speedup")
    timing.columns = [f"wall_speedup_b{b}" for b in timing.columns]
    frames["operating_points"] = points = frames["operating_points"].merge(
        timing.reset_index(), how="left", on=["method", "seed", "policy"])
    for part, frame in frames.items():
        write_csv(getattr(args, f"{part}_out"), frame)
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
