"""Check the claims (the paper's C1-C11, and C12-C14 against a tuned lens) on the study's own
results: JSON, CSV, Markdown and LaTeX."""


import pandas as pd

from layerwise import cli
from layerwise.claims import ExperimentData, claims_frame, evaluate, format_claims, paper_statistics
from layerwise.io import write_json
from layerwise.reference import paper_values
from layerwise.report.tables import write_table

FILES = ("accuracy", "similarity", "agreement", "saturation", "sweep", "points")

CAPTION = (
    "The paper's claims (docs/method.md §8) checked on this study's results. Each statistic is "
    "computed per seed (runs of the same seed paired), shown as mean ± sd over seeds; a claim "
    "holds when the mean and every seed pass the threshold (config key `claims`), fails when "
    "neither does, and is mixed otherwise. 'paper' is the same statistic on the paper's "
    "digitized figures (C2: Fig 2 CIFAR-10 COS matrix; C3-C5: Fig 4 ImageNet; C6: Fig 7, whose "
    "two operating points sit at 1.42x and 1.36x, not at one speed-up; C7: Fig 1c; C8: Fig 12; "
    "C9: Fig 4 against Fig 14); C1, C10 and C11 have none (C1 the paper shows by eye, Fig 15 "
    "is not digitized).")


def read(spec: dict) -> ExperimentData:
    frames = {key: None if spec.get(key) is None else pd.read_csv(spec[key]) for key in FILES}
    return ExperimentData(name=spec["name"], metric=spec.get("metric", "accuracy"), **frames)


def main(argv=None):
    parser = cli.spec_parser(__doc__, "thresholds, experiments (name, metric and files) and "
                                      "the residual ablation pair (or null)")
    parser.add_argument("--json", required=True, help="claims as JSON")
    parser.add_argument("--table", required=True, help="table stem (.csv, .md, .tex)")
    args = parser.parse_args(argv)

    spec = cli.read_spec(args.spec, ("thresholds", "experiments", "ablation"))
    thresholds = spec["thresholds"]
    ablation = spec["ablation"]
    rows = evaluate([read(e) for e in spec["experiments"]], thresholds,
                    None if ablation is None else (read(ablation["without"]),
                                                   read(ablation["with"])),
                    paper_statistics(paper_values(), thresholds["early_fraction"]))
    write_json(args.json, {"thresholds": thresholds, "claims": [r.to_dict() for r in rows]})
    write_table(claims_frame(rows), args.table, CAPTION, formatted=format_claims(rows))
    for row in rows:
        print(f"{row.claim} {row.experiment}: {row.status} {row.mean} {row.reason}")


if __name__ == "__main__":
    cli.run(main)
