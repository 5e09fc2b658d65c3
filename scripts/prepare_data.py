"""Prepare one dataset into safetensors splits and an info.json."""

from layerwise import cli
from layerwise.data.sources import prepare_dataset


def main(argv=None):
    parser = cli.spec_parser(__doc__, "the dataset's config section")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--cache", help="folder for downloads (default: inside --out)")
    args = parser.parse_args(argv)
    spec = cli.read_json_spec(args.spec)
    cli.check_keys("--spec", spec, ("source",), optional=None)  # its source checks the rest
    prepare_dataset(spec, args.out, args.cache)


if __name__ == "__main__":
    cli.run(main)
