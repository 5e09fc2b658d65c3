"""Linear CKA between the layers of two methods' models trained with the same seed.

Row i, column j compares layer i of the first method (e.g. standard) with layer j of the
second (e.g. aligned), on the same evaluation samples.
"""

import argparse

import pandas as pd
import torch

from layerwise import cli
from layerwise.hidden.files import read_hidden
from layerwise.similarity.measures import matrix_frame
from layerwise.io import ArtifactError, write_csv
from layerwise.similarity.engine import cka_cross


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, required=True)
    parser.add_argument("--a", nargs="+", required=True, help="first method's hidden states")
    parser.add_argument("--b", nargs="+", required=True, help="second method's hidden states")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    cli.set_threads(args.threads)
    if not len(args.seeds) == len(args.a) == len(args.b):
        raise SystemExit("error: give one --a and one --b file per seed")

    frames = []
    for seed, path_a, path_b in zip(args.seeds, args.a, args.b):
        a, b = read_hidden(path_a), read_hidden(path_b)
        if not torch.equal(a["labels"], b["labels"]):
            raise ArtifactError(f"{path_a} and {path_b} hold different samples")
        matrix = cka_cross(a["representations"][1:], b["representations"][1:])
        frames.append(matrix_frame(matrix, "cka_linear_biased", first_layer=1).assign(seed=seed))
    write_csv(args.out, pd.concat(frames, ignore_index=True))


if __name__ == "__main__":
    cli.run(main)
