"""Bad data and bad settings stop a stage with one clear line naming what is wrong."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from treelens.training.cli import main
from treelens.training.options import build_config, read_preset
from treelens.training.stage_configs import (
    AllConfig,
    EvaluateConfig,
    ExportConfig,
    FinetuneConfig,
    PretrainConfig,
    TokenizerConfig,
)

STAGE_CONFIGS = {
    "tokenizer": TokenizerConfig,
    "pretrain": PretrainConfig,
    "finetune": FinetuneConfig,
    "evaluate": EvaluateConfig,
    "export": ExportConfig,
}
GOOD = {"id": "o/good", "files": [["setup.py", 10, "file"]], "labels": dict.fromkeys(
    ["backend", "frontend", "mobile", "has_api", "desktop", "cli", "library", "iac"], 0
)}  # fmt: skip


def write_lines(path: Path, *records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def fails(args: list[str], capsys) -> str:
    assert main(args) == 1
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([GOOD, {"id": "o/no-files", "labels": GOOD["labels"]}], ":2 (id o/no-files): missing key 'files'"),
        ([GOOD, {"files": []}], ":2: 'id' must be a non-empty string, got None"),
        (
            [{**GOOD, "id": "o/odd", "labels": {**GOOD["labels"], "gui": 1}}],
            "(id o/odd): unknown label(s) ['gui']",
        ),
        ([{**GOOD, "id": "o/half", "labels": {"backend": 1}}], "(id o/half): missing label(s)"),
        (
            [{**GOOD, "id": "o/two", "labels": {**GOOD["labels"], "cli": 2}}],
            "(id o/two): label values must be 0 or 1",
        ),
        ([GOOD, "{not json"], ":2: not valid JSON"),
        ([], "no records (the file is empty)"),
    ],
)
def test_bad_data_names_the_record(records, message, tmp_path, capsys):
    data = write_lines(tmp_path / "bad.jsonl", *records)
    error = fails(
        ["tokenizer", "--preset", "tiny", "--data", str(data), "--output-dir", str(tmp_path / "o")], capsys
    )
    assert message in error and str(data) in error


def test_missing_data_file(tmp_path, capsys):
    error = fails(
        ["tokenizer", "--data", str(tmp_path / "none.jsonl"), "--output-dir", str(tmp_path / "o")], capsys
    )
    assert "none.jsonl: no such data file" in error


def test_finetune_needs_labelled_records(tiny_run, tmp_path, capsys):
    unlabelled = {k: v for k, v in GOOD.items() if k != "labels"}
    data = write_lines(tmp_path / "unlabelled.jsonl", unlabelled)
    args = ["finetune", "--preset", "tiny", "--data", str(data), "--pretrained", str(tiny_run / "pretrain")]
    error = fails([*args, "--output-dir", str(tmp_path / "o")], capsys)
    assert "no labelled records" in error


def test_finetune_needs_a_pretrained_model(tmp_path, capsys):
    error = fails(["finetune", "--pretrained", str(tmp_path), "--output-dir", str(tmp_path / "o")], capsys)
    assert "no model/config.json or tokenizer.json; run the pretrain stage" in error


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--label-wide-weight", "gui=0.5"], "--label-wide-weight 'gui=0.5': expected LABEL=WEIGHT"),
        (["--label-wide-weight", "cli=2"], "--label-wide-weight 'cli=2': expected LABEL=WEIGHT"),
        (["--label-wide-weight", "cli"], "--label-wide-weight 'cli': expected LABEL=WEIGHT"),
        (["--wide-weight", "0", "--label-wide-weight", "cli=0.5"], "--label-wide-weight needs a wide path"),
    ],
)
def test_bad_label_wide_weights_are_refused(flags, message, tmp_path, capsys):
    """Refused before anything is read, for finetune and crossval alike."""
    finetune = ["finetune", "--preset", "tiny", "--output-dir", str(tmp_path / "f"), *flags]
    assert message in fails(finetune, capsys)
    if "--wide-weight" not in flags:
        crossval = ["crossval", "--preset", "tiny", "--output-dir", str(tmp_path / "c"), *flags]
        assert message in fails(crossval, capsys)


def test_label_wide_weight_alone_clears_the_presets(tmp_path):
    """The default preset mixes cli at 0.5; `--wide-weight 0 --label-wide-weight` (no value)
    is a deep-only finetune, not a refusal, and crossval's flag alone mixes no label apart."""
    from treelens.training.cli import build_parser

    finetune = ["finetune", "--preset", "default", "--output-dir", str(tmp_path / "f")]
    args = build_parser().parse_args([*finetune, "--wide-weight", "0", "--label-wide-weight"])
    config = build_config(FinetuneConfig, "finetune", args, "default")
    assert config.label_wide_weight == [] and config.wide_weight == 0
    preset_only = build_config(FinetuneConfig, "finetune", build_parser().parse_args(finetune), "default")
    assert preset_only.label_wide_weight == ["cli=0.5"]
    crossval = build_parser().parse_args(["crossval", "--label-wide-weight"])
    assert crossval.label_wide_weight == []


def test_crossval_names_what_the_pretraining_lacks(tmp_path, capsys):
    """One check for every stage that reads a pretraining: --skip-model needs the tokenizer
    only; nothing is written for a folder that is refused."""
    out = tmp_path / "cv"
    args = ["crossval", "--pretrained", str(tmp_path), "--output-dir", str(out)]
    assert "no model/config.json or tokenizer.json; run the pretrain stage" in fails(args, capsys)
    assert f"--pretrained {tmp_path}: no tokenizer.json;" in fails([*args, "--skip-model"], capsys)
    assert not out.exists()


def test_flags_beat_presets_beat_defaults():
    args = argparse.Namespace(layers=3)
    config = build_config(PretrainConfig, "pretrain", args, "tiny")
    assert config.layers == 3  # flag
    assert config.hidden == 32  # preset
    assert config.mlm_probability_start == 0.38  # default
    assert build_config(PretrainConfig, "pretrain", argparse.Namespace(), None).layers == 4


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ({"pretrain": {"layer": 2}}, "unknown pretrain setting(s) ['layer']"),
        ({"pretrian": {"layers": 2}}, "unknown stage(s) ['pretrian']"),
        ({"pretrain": {"layers": "2"}}, "pretrain.layers: expected an integer"),
        ({"pretrain": {"subtrees": 1}}, "pretrain.subtrees: expected true or false"),
        ({"pretrain": {"mlm_probability_start": 0.1, "mlm_probability_end": 0.3}}, "mlm-probability-end"),
        ({"export": {"buckets": 512}}, "export.buckets: expected a list"),
    ],
)
def test_bad_presets_are_refused(preset, message, tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(preset))
    stage = next(iter(preset)) if next(iter(preset)) in STAGE_CONFIGS else "pretrain"
    error = fails([stage, "--preset", str(path), "--output-dir", str(tmp_path / "o")], capsys)
    assert message in error


def test_unknown_flag_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--layer", "2"])
    assert "unrecognized arguments: --layer" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_shipped_presets_are_valid(preset):
    sections = read_preset(preset)
    for stage, cls in STAGE_CONFIGS.items():
        given = {"model": Path("run/finetune")} if stage == "evaluate" else {}
        build_config(cls, stage, argparse.Namespace(**given), preset)
    build_config(AllConfig, "all", argparse.Namespace(), preset)
    assert set(sections) <= set(STAGE_CONFIGS) | {"all"}
