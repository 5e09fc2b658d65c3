"""Everything the study reads of one classification run, in one process (loading the model
costs more than the work): every layer's representation and exit logits of each split (the
shared head, or each layer's own in a multi-exit model), written as hidden-state files; the
layer-wise accuracy and the similarity between layers; and, for a run of the early-exit study
(its spec has `exits`), the threshold sweep on the exit logits, each policy's operating point
(chosen on validation, reported on test), exit counts per layer, every test sample's
saturation layer, and the wall-clock time of real early exit at each operating point against
full-depth inference."""

import pandas as pd
import torch

from layerwise import cli
from layerwise.data.prepared import load_split, subset_order
from layerwise.exits import offline
from layerwise.exits.offline import LayerExits
from layerwise.exits.online import flop_profile, time_operating_points
from layerwise.exits.policies import POLICIES
from layerwise.hidden.extract import predict_layers
from layerwise.hidden.metrics import LAYER_METRICS, layer_accuracy
from layerwise.io import load_tensors, save_tensors, write_csv
from layerwise.provenance import config_hash
from layerwise.similarity.measures import (CKA_ESTIMATORS, cos_cka_agreement, cos_to_last_frame,
                                           norm_ratio_frame, similarity_frame)
from layerwise.study.plan import ANALYSIS_PARTS, EXIT_PARTS, SPLITS
from layerwise.train.batches import take
from layerwise.train.runs import build_run_model

SPEC_KEYS = ("run", "metric", "similarity_split", "cka_estimators", "train_samples",
             "rbf_threshold", "cka_batch_size")
EXIT_KEYS = ("policies", "sweep_points", "max_accuracy_drop", "timing")


def extract(model, spec: dict, spec_hash: str, args) -> tuple[dict[str, dict], torch.Tensor]:
    """Each split's representations, exit logits and labels, also written to its file, and the
    test split's inputs (what real early exit is timed on)."""
    hidden, limit = {}, spec["train_samples"]
    for split in SPLITS:
        x, y, _ = load_split(args.data, split)
        if split == "train" and limit and limit < len(y):
            subset = subset_order(len(y))[:limit].sort().values
            x, y = take(x, subset), y[subset]
        reps, logits, targets = predict_layers(model, x, y, workers=max(0, args.threads - 1))
        hidden[split] = {"representations": reps, "logits": logits, "labels": targets}
        save_tensors(getattr(args, split), hidden[split], {"spec_hash": spec_hash, "split": split})
    return hidden, x


def layerwise_analysis(hidden: dict[str, dict], spec: dict, args) -> None:
    """Layer-wise accuracy (shared head) of every split and the similarity between layers of
    the similarity split."""
    rows, metric = [], spec["metric"]
    for split in SPLITS:
        logits, labels = hidden[split]["logits"], hidden[split]["labels"]
        scores = {"accuracy": layer_accuracy(logits, labels),
                  metric: LAYER_METRICS[metric](logits, labels)}
        for layer in range(len(logits)):
            rows.append({"split": split, "layer": layer,
                         **{name: float(values[layer]) for name, values in scores.items()}})
    reps = hidden[spec["similarity_split"]]["representations"]
    similarity = similarity_frame(reps, tuple(spec["cka_estimators"]), spec["rbf_threshold"],
                                  spec["cka_batch_size"])
    write_csv(args.layer_accuracy, pd.DataFrame(rows))
    write_csv(args.similarity, similarity)
    write_csv(args.cos_per_sample, cos_to_last_frame(reps))
    write_csv(args.agreement, cos_cka_agreement(similarity))
    write_csv(args.norm_ratio, norm_ratio_frame(reps))


def early_exit(model, hidden: dict[str, dict], test_inputs, exits: dict, args, device) -> None:
    """The early-exit sweep and operating points on the stored exit logits, saturation, and
    real early exit timed against full depth."""
    policies, timing = exits["policies"], exits["timing"]
    val, test = (LayerExits.from_logits(hidden[split]["logits"][1:], hidden[split]["labels"],
                                        policies)  # exits are at layers 1..L
                 for split in ("val", "test"))
    flops = flop_profile(model, test_inputs[:1].to(device))
    study = offline.evaluate_policies(policies, val, test, exits["max_accuracy_drop"],
                                      exits["sweep_points"], flops)
    timed = time_operating_points(model, test_inputs[:timing["samples"]].to(device),
                                  study.exits(), timing["batch_sizes"], timing["warmup"],
                                  timing["repeats"])
    study.write(args.sweep, args.operating_points, args.exit_counts, args.saturation)
    write_csv(args.timing, timed)


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

    spec_hash = config_hash(spec["run"])
    weights, _ = load_tensors(args.model, metadata={"spec_hash": spec_hash})
    model = build_run_model(spec["run"], load_split(args.data, "val")[2])
    model.load_state_dict(weights)
    model.to(device)
    hidden, test_inputs = extract(model, spec, spec_hash, args)
    layerwise_analysis(hidden, spec, args)
    if exits is not None:
        model.eval()
        early_exit(model, hidden, test_inputs, exits, args, device)


if __name__ == "__main__":
    cli.run(main)
