"""The cosine similarity between the layers of a two-tower model's image and text towers (CLIP;
the paper's Appendix D, Figs 22-23), for every run of an experiment: its stored image states of
one split (each layer's projected [CLS] feature) against its text tower's states of the class
prompts (each layer's projected end-of-text feature), each image against the prompt of its own
class. One tidy table: image-image, text-text and image-text pairs of layers, with the run's
method and seed (layerwise.similarity.cross_modal)."""

import pandas as pd

from layerwise import cli
from layerwise.hidden.files import read_hidden
from layerwise.io import load_tensors, read_json, write_csv
from layerwise.provenance import config_hash
from layerwise.similarity.cross_modal import cross_modal_frame
from layerwise.train.runs import build_run_model


def main(argv=None):
    parser = cli.spec_parser(__doc__.split("\n")[0],
                             "`info`: the dataset's info.json; `runs`: each run's spec, weights "
                             "and stored image states")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("info", "runs"))
    cli.set_threads(args.threads)

    info, frames = read_json(spec["info"]), []
    for run in spec["runs"]:
        spec_hash = config_hash(run["run"])
        model = build_run_model(run["run"], info)
        model.load_state_dict(load_tensors(run["weights"], metadata={"spec_hash": spec_hash})[0])
        states = read_hidden(run["states"], spec_hash)
        frame = cross_modal_frame(states["representations"], states["labels"],
                                  model.eval().text_layer_features())
        frames.append(frame.assign(method=run["method"], seed=run["seed"]))
    write_csv(args.out, pd.concat(frames, ignore_index=True))


if __name__ == "__main__":
    cli.run(main)
