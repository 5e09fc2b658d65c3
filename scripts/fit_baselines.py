"""Fit a dataset's models without hidden layers (a trivial predictor and a shallow baseline) on
its training split, settings chosen on validation, scored on validation and test."""

from threadpoolctl import threadpool_limits

from layerwise import cli
from layerwise.baselines.fit import fit_baselines
from layerwise.io import write_json
from layerwise.provenance import provenance

SPEC_KEYS = ("metric", "logistic_c", "ngram_orders", "max_train_samples")


def main(argv=None):
    parser = cli.spec_parser(__doc__.split("\n")[0],
                             "the dataset's metric and the baselines' settings")
    parser.add_argument("--data", required=True, help="the prepared dataset's folder")
    parser.add_argument("--out", required=True, help="the baselines JSON to write")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, SPEC_KEYS)
    with threadpool_limits(args.threads):  # scikit-learn's and numpy's BLAS
        record = fit_baselines(args.data, spec["metric"], spec["logistic_c"],
                               spec["ngram_orders"], spec["max_train_samples"])
    write_json(args.out, {**record, "provenance": provenance(spec=spec)})


if __name__ == "__main__":
    cli.run(main)
