"""`treelens-train`: one subcommand per training stage."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from transformers.utils import logging as transformers_logging

from model.bundle import BundleError
from model.dataset import DatasetError
from model.tokenizer import TokenizerError
from training.config import add_config_arguments, build_config, check_preset_stages
from training.data import add_data_commands

STAGES = {"tokenizer", "pretrain", "finetune", "evaluate", "export"}


def _stage(
    commands: argparse._SubParsersAction, name: str, help_text: str, config_cls: type, run: Callable[..., Any]
) -> None:
    """A subcommand whose flags are ``config_cls``'s fields plus --preset."""
    parser = commands.add_parser(
        name, help=help_text, description=(run.__module__ and sys.modules[run.__module__].__doc__)
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--preset", help="settings file: a name in training/presets (tiny, default) or a JSON path; flags win"
    )
    add_config_arguments(parser, config_cls)

    def execute(args: argparse.Namespace) -> int:
        if args.preset:
            check_preset_stages(args.preset, STAGES | {"all"})
        config = build_config(config_cls, name, args, args.preset)
        if name == "all":
            run(config, args.preset)
        else:
            run(config)
        return 0

    parser.set_defaults(run=execute)


def build_parser() -> argparse.ArgumentParser:
    from training import evaluate, export, feedback, finetune, pipeline, pretrain, tokenizer

    parser = argparse.ArgumentParser(
        prog="treelens-train",
        description="Build the Treelens tokenizer and model from the data set.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(commands)
    _stage(
        commands,
        "tokenizer",
        "train the byte-level BPE tokenizer on model texts",
        tokenizer.TokenizerConfig,
        tokenizer.run,
    )
    _stage(
        commands,
        "pretrain",
        "masked-language-model pretraining (Longformer from scratch)",
        pretrain.PretrainConfig,
        pretrain.run,
    )
    _stage(
        commands,
        "finetune",
        "multi-label classifier from the pretrained model",
        finetune.FinetuneConfig,
        finetune.run,
    )
    _stage(
        commands,
        "evaluate",
        "metrics of the model and both baselines on a split",
        evaluate.EvaluateConfig,
        evaluate.run,
    )
    _stage(
        commands, "export", "ONNX graphs, parity checks, int8, model bundle", export.ExportConfig, export.run
    )
    _stage(commands, "all", "every stage in order (continues a killed run)", pipeline.AllConfig, pipeline.run)
    feedback.add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="treelens-train: %(message)s", stream=sys.stderr)
    transformers_logging.set_verbosity_error()  # its notes (new head weights, padding) are expected here
    from training.export import ParityError

    try:
        return args.run(args)
    except (DatasetError, TokenizerError, BundleError, ParityError, ValueError, FileNotFoundError) as error:
        print(f"treelens-train: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
