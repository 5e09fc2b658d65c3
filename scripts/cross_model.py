"""Linear CKA between the layers of two methods' models trained with the same seed.

Row i, column j compares layer i of the first method (standard) with layer j of the second
(aligned), on the same evaluation samples.
"""

import pandas as pd
import torch

from layerwise import cli
from layerwise.hidden.files import read_hidden
from layerwise.io import ArtifactError, write_csv
from layerwise.similarity.engine import cka_cross
from layerwise.similarity.measures import matrix_frame

FIRST, SECOND = "standard", "aligned"


def main(argv=None):
    parser = cli.spec_parser(__doc__.split("\n")[0],
                             f"`pairs`: per seed, the {FIRST} and the {SECOND} run's test states")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    spec = cli.read_spec(args.spec, ("pairs",))
    cli.set_threads(args.threads)

    frames = []
    for pair in spec["pairs"]:
        a, b = read_hidden(pair[FIRST]), read_hidden(pair[SECOND])
        if not torch.equal(a["labels"], b["labels"]):
            raise ArtifactError(f"{pair[FIRST]} and {pair[SECOND]} hold different samples")
        matrix = cka_cross(a["representations"][1:], b["representations"][1:])
        frames.append(matrix_frame(matrix, "cka_linear_biased", first_layer=1)
                      .assign(seed=pair["seed"]))
    write_csv(args.out, pd.concat(frames, ignore_index=True))


if __name__ == "__main__":
    cli.run(main)
