"""Parameters of one shared classifier against one classifier per layer (paper Table 1): the
paper's rows recomputed by its formula, and this experiment's model counted as built."""

from layerwise import cli
from layerwise.data.prepared import load_split
from layerwise.report.exit_tables import format_parameter_table, parameter_rows
from layerwise.train.runs import build_run_model
from layerwise.reference import paper_values
from layerwise.report.tables import write_table


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the experiment's name and model")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex are written)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("experiment", "model"))
    model_spec = spec["model"]
    info = load_split(args.data, "val")[2]
    single, multi, lens = (count(build_run_model({"method": m, "model": model_spec}, info))
                           for m in ("standard", "multi_exit", "tuned_lens"))
    ours = {"model": f"{spec['experiment']} ({model_spec['arch']})",
            "width": model_spec["width"],
            "classes": info["num_classes"], "layers": model_spec["depth"], "single": single,
            "multi_counted": multi, "lens_counted": lens - single}
    table = parameter_rows(paper_values()["table1_parameter_savings"], ours)
    write_table(table, args.table,
                "Parameters of a single shared classifier against one per layer: multi = single "
                "+ (L-1)·K·d and the saving (multi - single) / multi, beside the values the paper "
                "prints (Table 1) and, for this study's model, the count of the built model "
                "(whose exit heads also carry biases and a LayerNorm); last, the parameters a "
                "tuned lens (on the standard or on the aligned model) adds to the "
                "single-classifier model instead, (L-1)(d²+d).",
                formatted=format_parameter_table(table))


if __name__ == "__main__":
    cli.run(main)
