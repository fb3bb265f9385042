"""Reading the data set: real files, bad files with errors that name the record, splits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.shared_data import DATA_DIR, LABELLED, labelled_records
from treelens.model.dataset import (
    DatasetError,
    default_data_files,
    read_many,
    read_records,
    report_train_share,
    split_of,
    split_records,
)
from treelens.model.labels import LABELS

GOOD = {
    "id": "owner/app",
    "commit": "0" * 40,
    "files": [["app.py", 10, "file"]],
    "manifests": {},
    "labels": dict.fromkeys(LABELS, 0),
}


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_the_shared_data_set() -> None:
    labelled_records()  # skips without ../shared
    records = read_many(default_data_files(DATA_DIR))
    assert sum(r.labelled for r in records) == len(labelled_records())
    assert any(not r.labelled for r in records)
    first = next(read_records(LABELLED))
    assert first.labels is not None and len(first.labels) == len(LABELS)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"x\.jsonl:2: not valid JSON"),
        (
            json.dumps({k: v for k, v in GOOD.items() if k != "files"}),
            r"x\.jsonl:2 \(id owner/app\): missing key 'files'",
        ),
        (
            json.dumps({**GOOD, "labels": {**GOOD["labels"], "gui": 1}}),
            r"id owner/app\): unknown label\(s\) \['gui'\]",
        ),
        (json.dumps({**GOOD, "labels": {"backend": 1}}), r"id owner/app\): missing label\(s\)"),
        (json.dumps({**GOOD, "labels": {**GOOD["labels"], "cli": 2}}), "must be 0 or 1"),
        (json.dumps({**GOOD, "files": [["a.py", "big", "file"]]}), r"files\[0\] must be"),
        (json.dumps({**GOOD, "id": ""}), "'id' must be a non-empty string, got ''"),
        (json.dumps({**GOOD, "id": 7}), "'id' must be a non-empty string, got 7"),
    ],
)
def test_bad_records_name_the_line_and_record(tmp_path: Path, line: str, message: str) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [json.dumps(GOOD), line])
    with pytest.raises(DatasetError, match=message):
        list(read_records(path))


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no records"):
        list(read_records(write_jsonl(tmp_path / "empty.jsonl", [""])))
    with pytest.raises(DatasetError, match="no such data file"):
        list(read_records(tmp_path / "missing.jsonl.gz"))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot read"):
        list(read_records(broken))


def test_gzip_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "commit": "1" * 40}) + "\n")
    records = read_many([path])
    assert len(records) == 1 and records[0].raw["commit"] == "0" * 40


def test_splits_are_stable_and_shares_follow_the_report() -> None:
    assert report_train_share(300) == pytest.approx(0.68, abs=1e-4)
    assert report_train_share(20_000_000) == pytest.approx(0.84)
    ids = [f"owner/repo{i}" for i in range(4000)]
    small = {i: split_of(i, 0.68) for i in ids}
    large = {i: split_of(i, 0.84) for i in ids}
    counts = {s: sum(v == s for v in small.values()) / len(ids) for s in ("train", "validation", "test")}
    assert counts["train"] == pytest.approx(0.68, abs=0.03)
    assert counts["test"] == pytest.approx(0.16, abs=0.03)
    # a growing train share never moves a training record into the held-out splits
    assert all(large[i] == "train" for i in ids if small[i] == "train")
    assert all(small[i] == "test" for i in ids if large[i] == "test")


def test_split_records_groups_everything_once() -> None:
    records = read_many([LABELLED]) if LABELLED.is_file() else pytest.skip("no shared data")
    groups = split_records(records, 0.68)
    assert sum(len(g) for g in groups.values()) == len(records)
