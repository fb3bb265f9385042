"""A tiny trained model built with the real training stages, for tests.

``build_tiny_run`` runs tokenizer -> pretrain (1 step) -> finetune (1 epoch) -> export
on a few real records with training/presets/tiny.json, in-process: a real ONNX bundle
(int8, two length buckets, 256 and 512 tokens) in a few seconds. Not a useful model;
it exists so tests exercise the real pipeline and the real runtime.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import warnings
from pathlib import Path

from tests.shared_data import DATA_DIR, labelled_records
from treelens.model.dataset import report_train_share, split_of

PRESET = "tiny"
PER_SPLIT = {"train": 4, "validation": 3, "test": 3}


def tiny_records() -> list[dict]:
    """The smallest labelled records of each split (4 train, 3 validation, 3 test) and one
    unlabelled record: every stage has data, and rendering stays fast."""
    share = report_train_share(sum(PER_SPLIT.values()))
    wanted = dict(PER_SPLIT)
    chosen = []
    for record in sorted(labelled_records().values(), key=lambda r: (len(r["files"]), r["id"])):
        split = split_of(record["id"], share)
        if wanted[split]:
            wanted[split] -= 1
            chosen.append(record)
    with gzip.open(DATA_DIR / "projects-unlabelled.jsonl.gz", "rt", encoding="utf-8") as handle:
        chosen.append(json.loads(handle.readline()))
    return chosen


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def build_tiny_run(root: Path, data: Path) -> Path:
    """Run the stages into ``root`` (tokenizer/, pretrain/, finetune/, export/); returns root."""
    from treelens.training import export, finetune, pretrain, tokenizer
    from treelens.training.options import build_config

    def config(cls: type, stage: str, **values):
        return build_config(cls, stage, argparse.Namespace(data=[data], **values), PRESET)

    tokenizer.run(config(tokenizer.TokenizerConfig, "tokenizer", output_dir=root / "tokenizer"))
    pretrain.run(
        config(
            pretrain.PretrainConfig,
            "pretrain",
            output_dir=root / "pretrain",
            tokenizer=root / "tokenizer" / "tokenizer.json",
        )
    )
    finetune.run(
        config(
            finetune.FinetuneConfig, "finetune", output_dir=root / "finetune", pretrained=root / "pretrain"
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export.run(config(export.ExportConfig, "export", output_dir=root / "export", model=root / "finetune"))
    return root


def finetune_cli(run: Path, data: Path, output_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``treelens-train finetune`` with the tiny preset on the tiny run's pretrained model,
    in a subprocess (the CLI as a user runs it)."""
    command = [
        *(sys.executable, "-m", "treelens.training.cli", "finetune", "--preset", PRESET),
        *("--data", str(data), "--pretrained", str(run / "pretrain"), "--output-dir", str(output_dir)),
        *flags,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def export_cli(data: Path, model: Path, output_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``treelens-train export`` with the tiny preset of a finetune folder (parity checks
    included), in a subprocess."""
    command = [
        *(sys.executable, "-m", "treelens.training.cli", "export", "--preset", PRESET),
        *("--data", str(data), "--model", str(model), "--output-dir", str(output_dir)),
        *flags,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def pretrain_cli(run: Path, data: Path, output_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``treelens-train pretrain`` with the tiny preset and the tiny run's tokenizer, two
    steps, in a subprocess."""
    command = [
        *(sys.executable, "-m", "treelens.training.cli", "pretrain", "--preset", PRESET, "--data", str(data)),
        *("--tokenizer", str(run / "tokenizer" / "tokenizer.json"), "--output-dir", str(output_dir)),
        *("--max-steps", "2", "--log-steps", "1", *flags),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)
