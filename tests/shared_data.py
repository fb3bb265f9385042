"""Access to the shared data set beside the repository (../shared/data), for tests."""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
LABELLED = DATA_DIR / "projects-labelled.jsonl.gz"


@functools.cache
def labelled_records() -> dict[str, dict]:
    """The labelled records by id; skips the calling test when ../shared is absent."""
    if not LABELLED.is_file():
        pytest.skip(f"shared data set not found at {LABELLED}")
    with gzip.open(LABELLED, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return {r["id"]: r for r in records}


def record(record_id: str) -> dict:
    return labelled_records()[record_id]
