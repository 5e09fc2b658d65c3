"""Everything the study reads of one language-model run (layerwise.hidden.language_model_run),
in streaming passes over the tokens: per-layer next-token metrics, similarity between layers,
the per-token exit study and saturation, timed early-exit decoding, self-speculative decoding
and text sampled with the exit fixed at each layer. The files are those analyze_run.py writes
for a classification run in the exit study, but the hidden states, plus the two decoding
files."""

import torch

from layerwise import cli
from layerwise.data.prepared import load_split
from layerwise.exits.policies import POLICIES
from layerwise.hidden.language_model_run import analyze_language_model
from layerwise.similarity.measures import CKA_ESTIMATORS
from layerwise.study.plan import ANALYSIS_PARTS, DECODING_PARTS, EXIT_PARTS, SPLITS
from layerwise.train.runs import load_run_model

SPEC_KEYS = ("run", "metric", "similarity_split", "cka_estimators", "train_samples",
             "token_samples", "exits", "judge")
EXIT_KEYS = ("policies", "sweep_points", "max_accuracy_drop", "timing", "decoding",
             "speculative", "generation")
PARTS = ANALYSIS_PARTS + EXIT_PARTS + DECODING_PARTS


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the analysis spec: the run's spec under `run`, the "
                                      "layer-wise analysis' settings and `exits`, with decoding")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--model", required=True, help="trained weights (safetensors)")
    parser.add_argument("--judge", required=True,
                        help="weights of the model that scores every method's generated text "
                             "(the spec's `judge`)")
    parser.add_argument("--threads", type=int, default=1)
    cli.add_output_options(parser, PARTS)
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, SPEC_KEYS)
    exits = spec["exits"]
    cli.check_keys("--spec exits", exits, EXIT_KEYS)
    cli.check_choices("similarity_split", spec["similarity_split"], SPLITS)
    cli.check_choices("cka_estimators", spec["cka_estimators"], list(CKA_ESTIMATORS))
    cli.check_choices("exits.policies", exits["policies"], list(POLICIES))
    cli.set_threads(args.threads)

    model = load_run_model(spec["run"], load_split(args.data, "test")[2], args.model)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    analyze_language_model(model, spec, args.data, args.judge,
                           {name: getattr(args, name) for name in PARTS}, device)


if __name__ == "__main__":
    cli.run(main)
