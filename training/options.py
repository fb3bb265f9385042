"""How a stage's settings (training/stage_configs.py) become flags: presets, then flags on top.

Every field has a default and a help text (its ``metadata["help"]``), so a stage's
``--help`` is generated from the dataclass. Precedence: dataclass default < preset
file section < command-line flag. A preset is a JSON file with one object per stage
(``{"tokenizer": {...}, "pretrain": {...}}``); a key no stage knows, or a value of
the wrong type, is an error, because a silently ignored typo trains the wrong model.

Hand-written rather than transformers.HfArgumentParser (which reads dataclasses and JSON
too): ``treelens-train --help`` and every argument error must answer without importing
transformers and torch, which take seconds and are an optional extra. Also here: the
run-folder guard (prepare_output_dir) and StageError, which every stage uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from treelens.model.dataset import default_data_dir
from treelens.model.errors import TreelensError, UsageError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
DEFAULT_DATA_DIR = default_data_dir()

C = TypeVar("C")


class StageError(TreelensError, RuntimeError):
    """A stage cannot go on (a failed check); the CLI prints the message, which says what to do."""


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A config field with its help text (list defaults are copied per instance; a list flag
    takes one or more values unless ``nargs`` says otherwise)."""
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def add_records_output(parser: argparse.ArgumentParser) -> None:
    """``--output`` and ``--overwrite`` of a command that writes data-set records
    (``model.dataset.write_records_file``)."""
    parser.add_argument(
        "--output", type=Path, required=True, help="records file to write (.jsonl or .jsonl.gz)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _scalar_type(hint: Any) -> tuple[Any, bool, bool]:
    """(element type, is_list, optional) of a field's type hint."""
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
        origin = typing.get_origin(hint)
    if origin is list:
        return typing.get_args(hint)[0], True, optional
    return hint, False, optional


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of ``cls``; defaults stay unset so presets can fill them."""
    hints = _field_types(cls)
    for item in dataclasses.fields(cls):
        kind, is_list, _optional = _scalar_type(hints[item.name])
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()  # type: ignore[misc]
        text = item.metadata.get("help", "")
        if "default" not in text:
            text += f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": item.name, "default": argparse.SUPPRESS, "help": text}
        if "choices" in item.metadata:
            kwargs["choices"] = item.metadata["choices"]
        if kind is bool:
            kwargs.update(type=_parse_bool, nargs="?", const=True, metavar="BOOL")
        elif is_list:
            kwargs.update(type=kind, nargs=item.metadata.get("nargs", "+"))
        else:
            kwargs["type"] = kind
        parser.add_argument(flag_name(item.name), **kwargs)


def read_preset(name_or_path: str | Path) -> dict[str, dict[str, Any]]:
    """A preset by name (``tiny`` -> training/presets/tiny.json) or by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = PRESETS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in PRESETS_DIR.glob("*.json"))
        raise UsageError(f"preset {name_or_path!r} not found (a JSON file, or one of {known})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a preset maps stage names to objects of settings")
    data = {k: v for k, v in data.items() if not k.startswith("_")}  # "_comment" keys
    if not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(f"{path}: a preset maps stage names to objects of settings")
    return data


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a preset value against the field type; JSON strings become Paths."""
    kind, is_list, optional = _scalar_type(hint)
    if value is None:
        if optional:
            return None
        raise UsageError(f"{where}: null is not allowed")
    if is_list:
        if not isinstance(value, list):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, kind, where) for v in value]
    if kind is Path and isinstance(value, str):
        return Path(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool and not isinstance(value, bool):
        raise UsageError(f"{where}: expected true or false, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UsageError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, kind):
        raise UsageError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def build_config(cls: type[C], stage: str, args: argparse.Namespace, preset: str | Path | None) -> C:
    """Defaults, then the preset's ``stage`` section, then the flags given."""
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if preset is not None:
        section = read_preset(preset).get(stage, {})
        unknown = sorted(set(section) - names)
        if unknown:
            raise UsageError(f"preset {preset}: unknown {stage} setting(s) {unknown}; known: {sorted(names)}")
        values.update({k: _coerce(v, hints[k], f"preset {preset}: {stage}.{k}") for k, v in section.items()})
    values.update({k: v for k, v in vars(args).items() if k in names})
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def check_preset_stages(preset: str | Path, stages: set[str]) -> None:
    """A preset naming a stage that does not exist is a typo: refuse it."""
    unknown = sorted(set(read_preset(preset)) - stages)
    if unknown:
        raise UsageError(f"preset {preset}: unknown stage(s) {unknown}; stages are {sorted(stages)}")


def to_json(config: Any) -> dict[str, Any]:
    """A JSON-able snapshot of a config (Paths as strings) for logs, checkpoints, bundles."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def prepare_output_dir(path: Path, overwrite: bool, resume_ok: bool = False) -> None:
    """Create ``path``; refuse a non-empty one unless told to overwrite (or resuming)."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output-dir {path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not (overwrite or resume_ok):
        raise UsageError(
            f"--output-dir {path} is not empty; pass --overwrite-output-dir to write into it"
            + (" or --resume to continue its run" if not resume_ok else "")
        )
    path.mkdir(parents=True, exist_ok=True)
