"""Layer-wise accuracy of an experiment's runs beside its shallower standard models (paper
Fig 5), their validation accuracy per epoch from the training logs, and the effective depth of
every run on train and test."""

from layerwise import cli
from layerwise.exits.saturation import effective_depths
from layerwise.io import write_csv
from layerwise.report.exit_tables import effective_depth_table, format_effective_depth_table
from layerwise.report.tables import gather_runs, over_seeds, write_table

OUTPUTS = ("accuracy", "val_curves", "effective_depth")


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the trained runs with their layer_accuracy.csv and "
                                      "train_log.csv, and the effective depth's epsilon")
    cli.add_output_options(parser, OUTPUTS)
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("runs", "epsilon"))
    epsilon = spec["epsilon"]

    accuracy = gather_runs(spec["runs"], "layer_accuracy", name="run")[
        ["run", "seed", "split", "layer", "accuracy"]]
    depths = effective_depths(accuracy, epsilon)
    write_csv(args.accuracy, accuracy)
    write_csv(args.effective_depth, depths)
    write_csv(args.val_curves, gather_runs(spec["runs"], "train_log", name="run")[
        ["run", "seed", "epoch", "val_accuracy"]])
    table = effective_depth_table(depths)
    write_table(table, args.table,
                f"Effective depth: the first layer whose accuracy reaches 1 - ε (else L), and "
                f"the first reaching (1 - ε) times the last layer's; ε = {epsilon:g}, "
                f"{over_seeds(depths)}.",
                formatted=format_effective_depth_table(table, epsilon))


if __name__ == "__main__":
    cli.run(main)
