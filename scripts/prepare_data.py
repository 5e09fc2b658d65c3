"""Prepare one dataset into safetensors splits and an info.json."""

import argparse
import json

from layerwise import cli
from layerwise.data.sources import prepare_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="the dataset's config section, as JSON")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--cache", help="folder for downloads (default: inside --out)")
    args = parser.parse_args(argv)
    prepare_dataset(json.loads(args.spec), args.out, args.cache)


if __name__ == "__main__":
    cli.run(main)
