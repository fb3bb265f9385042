"""`treelens-train`: one subcommand per training stage."""

from __future__ import annotations

import argparse
import logging
import sys

from model.dataset import DatasetError
from training.data import add_data_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treelens-train",
        description="Build the Treelens tokenizer and model from the data set.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="treelens-train: %(message)s", stream=sys.stderr)
    try:
        return args.run(args)
    except (DatasetError, ValueError, FileNotFoundError) as error:
        print(f"treelens-train: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
