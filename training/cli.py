"""`treelens-train`: one subcommand per training stage.

An expected failure (a TreelensError, model/errors.py: bad data, a bad flag or preset, a
stage that cannot go on) is one line on stderr and exit 1; anything else is a bug and
shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from treelens.model.errors import TreelensError
from treelens.training.data import add_data_commands
from treelens.training.feedback import add_command as add_feedback_command
from treelens.training.options import add_config_arguments, build_config, check_preset_stages
from treelens.training.stage_configs import (
    AllConfig,
    CrossvalConfig,
    EvaluateConfig,
    ExportConfig,
    FinetuneConfig,
    PretrainConfig,
    TokenizerConfig,
)

# the [train] extra's packages every stage imports (`data` and `export-feedback` need neither)
TRAIN_PACKAGES = ("torch", "transformers")
STAGES = {"tokenizer", "pretrain", "finetune", "evaluate", "export"}
WITH_PRESET = {"all", "crossval"}  # stages whose run() also reads other stages' preset sections


def _stage(
    commands: argparse._SubParsersAction, name: str, help_text: str, config_cls: type, module: str
) -> None:
    """A subcommand whose flags are ``config_cls``'s fields plus --preset; the stage's module
    (and torch with it) is imported only when the stage runs."""
    parser = commands.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
    parser.add_argument(
        "--preset", help="settings file: a name in training/presets (tiny, default) or a JSON path; flags win"
    )
    add_config_arguments(parser, config_cls)

    def execute(args: argparse.Namespace) -> int:
        if args.preset:
            check_preset_stages(args.preset, STAGES | WITH_PRESET)
        config = build_config(config_cls, name, args, args.preset)
        run = importlib.import_module(f"treelens.training.{module}").run
        if name in WITH_PRESET:
            run(config, args.preset)
        else:
            run(config)
        return 0

    parser.set_defaults(run=execute)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treelens-train",
        description="Build the Treelens tokenizer and model from the data set.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(commands)
    _stage(
        commands,
        "tokenizer",
        "train the byte-level BPE tokenizer on model texts",
        TokenizerConfig,
        "tokenizer",
    )
    _stage(
        commands,
        "pretrain",
        "masked-language-model pretraining (Longformer from scratch)",
        PretrainConfig,
        "pretrain",
    )
    _stage(
        commands, "finetune", "multi-label classifier from the pretrained model", FinetuneConfig, "finetune"
    )
    _stage(
        commands, "evaluate", "metrics of the model and both baselines on a split", EvaluateConfig, "evaluate"
    )
    _stage(commands, "export", "ONNX graphs, parity checks, int8, model bundle", ExportConfig, "export")
    _stage(commands, "all", "every stage in order (continues a killed run)", AllConfig, "pipeline")
    _stage(
        commands,
        "crossval",
        "k-fold cross-validation of the model (preset's finetune settings) and both baselines",
        CrossvalConfig,
        "crossval",
    )
    add_feedback_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="treelens-train: %(message)s", stream=sys.stderr)
    if args.command not in ("data", "export-feedback"):
        missing = [name for name in TRAIN_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            print(
                f"treelens-train {args.command}: needs {', '.join(missing)}, which come with the training "
                "extra: pip install 'treelens[train]'",
                file=sys.stderr,
            )
            return 2
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()  # its notes (new head weights, padding) are expected
    try:
        return args.run(args)
    except TreelensError as error:
        print(f"treelens-train: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
