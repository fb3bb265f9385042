"""Fixtures shared by the suites.

``tiny_bundle`` is a real model bundle (int8 ONNX, tokenizer, manifest) trained with
the real pipeline on a few real records (tests/tiny_model.py): built once per test
session into a temporary folder. Use it wherever a test needs a loaded model, e.g.
``Classifier.load(tiny_bundle)`` or the daemon's ``modelPath`` setting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_run, tiny_records, write_records


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSONL file of 10 small labelled records (4 train, 3 validation, 3 test) + 1 unlabelled."""
    return write_records(tmp_path_factory.mktemp("tiny-data") / "projects-tiny.jsonl", tiny_records())


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """The folder of a finished tiny training run: tokenizer/, pretrain/, finetune/, export/."""
    return build_tiny_run(tmp_path_factory.mktemp("tiny-run"), tiny_data)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run: Path) -> Path:
    """A verified int8 model bundle (buckets 256 and 512 tokens) of the tiny run."""
    return tiny_run / "export" / "bundle"
