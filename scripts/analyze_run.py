"""Everything the study reads of one classification run (layerwise.hidden.classifier_run): the
hidden states of every split, the layer-wise accuracy and similarity, and for a run of the
early-exit study (its spec has `exits`) the exit sweep, operating points, saturation and timed
real early exit."""

import torch

from layerwise import cli
from layerwise.data.prepared import load_split
from layerwise.exits.policies import POLICIES
from layerwise.hidden.metrics import LAYER_METRICS
from layerwise.hidden.classifier_run import analyze_classifier
from layerwise.similarity.measures import CKA_ESTIMATORS
from layerwise.study.plan import ANALYSIS_PARTS, EXIT_PARTS, SPLITS
from layerwise.train.runs import load_run_model

SPEC_KEYS = ("run", "metric", "similarity_split", "cka_estimators", "train_samples",
             "rbf_threshold", "cka_batch_size")
EXIT_KEYS = ("policies", "sweep_points", "max_accuracy_drop", "timing")


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the analysis spec: the run's spec under `run`, the "
                                      "layer-wise analysis' settings, `exits` for the exit study")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads; a streamed dataset uses threads - 1 loader workers")
    cli.add_output_options(parser, SPLITS + ANALYSIS_PARTS)
    cli.add_output_options(parser, EXIT_PARTS, required=False,
                           group="the early-exit study's outputs (with `exits` in the spec)")
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, SPEC_KEYS, optional=("exits",))
    cli.check_choices("similarity_split", spec["similarity_split"], SPLITS)
    cli.check_choices("cka_estimators", spec["cka_estimators"], list(CKA_ESTIMATORS))
    cli.check_choices("metric", spec["metric"], list(LAYER_METRICS))
    exits = spec.get("exits")
    if exits is not None:
        cli.check_keys("--spec exits", exits, EXIT_KEYS)
        cli.check_choices("exits.policies", exits["policies"], list(POLICIES))
        missing = [f"--{n.replace('_', '-')}" for n in EXIT_PARTS if getattr(args, n) is None]
        if missing:
            parser.error(f"the spec's early-exit study writes {', '.join(missing)}")
    cli.set_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    model = load_run_model(spec["run"], load_split(args.data, "val")[2], args.model).to(device)
    parts = SPLITS + ANALYSIS_PARTS + (EXIT_PARTS if exits is not None else ())
    analyze_classifier(model, spec, args.data, {name: getattr(args, name) for name in parts},
                       device, args.threads)


if __name__ == "__main__":
    cli.run(main)
