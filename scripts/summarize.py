"""Gather one experiment's per-run analysis files into tidy tables, the layer-wise table beside
its dataset's baselines, and the depth use of every run.

Each file of a run's layer-wise analysis is gathered over runs (with `method` and `seed`
columns added) into the file of the same name that the experiment's options give.
"""

from layerwise import cli
from layerwise.baselines import shallow_label
from layerwise.baselines.depth_use import depth_use, learning, uses_depth
from layerwise.hidden.metrics import LAYER_METRICS
from layerwise.io import read_json, write_csv
from layerwise.report.summary import depth_note
from layerwise.report.tables import (classifier_table, depth_use_table, gather_runs,
                                     over_seeds, token_table, write_table)
from layerwise.study.plan import ANALYSIS_PARTS, SPLITS
from layerwise.train.methods import exit_reading

DEPTH_KEYS = ("model", "reader", "max_first_layer_share")


def main(argv=None):
    parser = cli.spec_parser(__doc__.split("\n")[0],
                             "the runs and their files, the table's metric and split, the "
                             "dataset's baselines file and the depth-use verdict's settings")
    cli.add_output_options(parser, ANALYSIS_PARTS + ("depth_use",))
    parser.add_argument("--table", required=True, help="layer-wise table stem (.csv, .md, .tex)")
    parser.add_argument("--depth-table", required=True,
                        help="depth-use table stem (.csv, .md, .tex)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("runs", "metric", "table_split", "baselines", "depth"))
    cli.check_choices("metric", spec["metric"], list(LAYER_METRICS))
    cli.check_choices("table_split", spec["table_split"], SPLITS)
    cli.check_keys("--spec depth", spec["depth"], DEPTH_KEYS)
    split, depth = spec["table_split"], spec["depth"]

    for part in ANALYSIS_PARTS:
        write_csv(getattr(args, part), gather_runs(spec["runs"], part))
    accuracy = gather_runs(spec["runs"], "layer_accuracy")
    baselines = read_json(spec["baselines"])

    shares = depth_use(accuracy, baselines, split)
    write_csv(args.depth_use, shares)
    runs, shown = depth_use_table(shares, learning(accuracy, baselines, split),
                                  baselines["metric"])
    verdict = uses_depth(runs, **depth)
    write_table(runs, args.depth_table,
                f"Depth use per run ({split}): its last layer's {baselines['metric']}, whether "
                "it beats the shallow baseline, and s_l = (score_l − trivial) / (score_L − "
                "trivial), the share of what the last layer gains over the trivial predictor "
                "that layer l already has (read as the run's layer-wise table reads it). "
                + depth_note(verdict, depth["max_first_layer_share"], shallow_label(baselines)),
                formatted=shown)

    if "cross_entropy" in accuracy:  # a language model
        table, shown = token_table(accuracy, split, baselines)
        what = (f"next-token accuracy (%) and cross-entropy (nats) "
                f"({exit_reading(accuracy['method'])}), {over_seeds(accuracy)}, beside count "
                "models")
    else:
        table, shown = classifier_table(accuracy, split, spec["metric"], baselines)
        what = (f"{spec['metric']} ({exit_reading(accuracy['method'])}), "
                f"{over_seeds(accuracy)} (%), beside models without hidden layers")
    label = ("The arm uses its depth" if verdict["deep"] else "The arm is labelled shallow")
    write_table(table, args.table, f"Layer-wise {split} {what} fitted on the training split "
                f"and scored on the same {split} samples. {label} (depth_use table).",
                formatted=shown)


if __name__ == "__main__":
    cli.run(main)
