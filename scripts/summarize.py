"""Gather one experiment's per-run analysis files into tidy tables and the accuracy table.

Each file of a run's layer-wise analysis is gathered over runs (with `method` and `seed`
columns added) into the file of the same name that the experiment's options give.
"""

from layerwise import cli
from layerwise.hidden.metrics import LAYER_METRICS
from layerwise.io import read_json, write_csv
from layerwise.report.tables import (format_accuracy_table, gather_runs,
                                     layerwise_accuracy_table, over_seeds, token_table,
                                     write_table)
from layerwise.study.plan import ANALYSIS_PARTS, SPLITS


def main(argv=None):
    parser = cli.spec_parser(__doc__.split("\n")[0],
                             "the runs and their files, the table's metric and split, and a "
                             "language model's dataset info.json with its n-gram baselines")
    cli.add_output_options(parser, ANALYSIS_PARTS)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("runs", "metric", "table_split", "baselines"))
    cli.check_choices("metric", spec["metric"], list(LAYER_METRICS))
    cli.check_choices("table_split", spec["table_split"], SPLITS)
    split = spec["table_split"]

    for part in ANALYSIS_PARTS:
        write_csv(getattr(args, part), gather_runs(spec["runs"], part))
    accuracy = gather_runs(spec["runs"], "layer_accuracy")
    if spec["baselines"]:
        table, shown = token_table(accuracy, split,
                                   read_json(spec["baselines"])["ngram_baselines"])
        write_table(table, args.table,
                    f"Layer-wise {split} next-token accuracy (%) and cross-entropy "
                    f"(nats) with the shared LM head, {over_seeds(accuracy)}, beside a unigram "
                    "and a bigram model fitted on the training split and scored on the same "
                    "tokens.", formatted=shown)
        return
    table = layerwise_accuracy_table(accuracy, split, spec["metric"])
    caption = (f"Layer-wise {split} {spec['metric']} with the last-layer classifier, "
               f"{over_seeds(accuracy)} (%).")
    write_table(table, args.table, caption, formatted=format_accuracy_table(table))


if __name__ == "__main__":
    cli.run(main)
