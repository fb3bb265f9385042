"""Reading the data set (JSON Lines, optionally gzip'd) and splitting it.

Record format (../shared/DESIGN.md, "Data set format"):
``{"id", "commit", "files": [[path, size, kind]...], "manifests": {path: text},
"labels": {label: 0|1}, "confidence", "frameworks", "note"}``; unlabelled records
have no ``labels``. Every problem is reported with the file, line and record id.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from treelens.model.errors import TreelensError, UsageError
from treelens.model.guards import InputError, bounded_lines, load_json, output_file
from treelens.model.labels import LABELS, label_vector
from treelens.model.tree import ProjectTree

SPLITS = ("train", "validation", "test")
DATA_DIR_ENV = "TREELENS_DATA_DIR"
CHECKOUT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
"""The shared data set in a checkout: ../shared/data beside the repository."""


def default_data_dir() -> Path:
    """Where data files (and the semgrep rule index) are looked for when no folder is given:
    ``$TREELENS_DATA_DIR``, else ../shared/data beside a checkout. The one place this is
    decided; an installed package has no checkout beside it, so there set the variable
    (or pass ``--data-dir``)."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else CHECKOUT_DATA_DIR


class DatasetError(TreelensError, ValueError):
    """A data file or record that cannot be used; the message names where."""


@dataclass(frozen=True)
class Record:
    """One project of the data set, validated."""

    id: str
    tree: ProjectTree
    labels: tuple[int, ...] | None  # in LABELS order; None when unlabelled
    raw: dict[str, Any]

    @property
    def labelled(self) -> bool:
        return self.labels is not None


def parse_record(data: Any, where: str) -> Record:
    """Validate one decoded JSON line; raise DatasetError naming ``where``."""
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a JSON object")
    record_id = data.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise DatasetError(f"{where}: 'id' must be a non-empty string, got {record_id!r}")
    where = f"{where} (id {record_id})"
    try:
        tree = ProjectTree.from_record(data, where)
        if "name" not in data:  # the shared data set: ids are GitHub's owner/repository
            tree.name = record_id.rsplit("/", 1)[-1]
        labels = data.get("labels")
        vector = None if labels is None else tuple(label_vector(_as_dict(labels, where), where))
    except ValueError as error:
        raise DatasetError(str(error)) from None
    return Record(record_id, tree, vector, data)


def _as_dict(labels: Any, where: str) -> dict[str, int]:
    if not isinstance(labels, dict):
        raise DatasetError(f"{where}: 'labels' must be an object of {{label: 0|1}}")
    return labels


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_records(path: Path | str) -> Iterator[Record]:
    """Records of one data file, in file order; blank lines are skipped.

    Raises DatasetError for a missing or empty file, a line that is not JSON (or nested
    too deeply to read, or longer than MAX_INPUT_BYTES), or a record that breaks the format.
    """
    path = Path(path)
    if not path.is_file():
        what = "not a data file (a folder or a device)" if path.exists() else "no such data file"
        raise DatasetError(f"{path}: {what}")
    count = 0
    try:
        with _open_text(path) as handle:
            for number, line in bounded_lines(handle, str(path)):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                count += 1
                yield parse_record(load_json(line, where, DatasetError), where)
    except InputError as error:
        raise DatasetError(str(error)) from None
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as error:
        raise DatasetError(f"{path}: cannot read ({error})") from None
    if count == 0:
        raise DatasetError(f"{path}: no records (the file is empty)")


def refuse_existing_output(output: Path, overwrite: bool) -> None:
    """A records file that exists is kept unless ``--overwrite`` says to replace it."""
    if output.exists() and not overwrite:
        raise UsageError(f"--output {output} exists; pass --overwrite to replace it")


def write_records_file(output: Path, overwrite: bool, write: Callable[[TextIO], object]) -> int:
    """Write data-set records to ``output`` (JSON Lines, gzip'd when it ends in .gz) with
    ``write(handle)``; the file appears whole or not at all. It is read back with
    ``read_records``, so a record the stages would refuse is caught here; returns how many
    records it holds. An existing ``output`` is kept unless ``overwrite``."""
    refuse_existing_output(output, overwrite)
    # the partial file ends like the real one, so it is read back (gzip'd or not) the same way
    with output_file(output, "--output", make_parents=True) as partial:
        opener = gzip.open if partial.suffix == ".gz" else open
        with opener(partial, "wt", encoding="utf-8") as handle:
            write(handle)
        return sum(1 for _ in read_records(partial))


def read_many(paths: Iterable[Path | str]) -> list[Record]:
    """All records of several files; an id seen twice keeps its first record."""
    seen: dict[str, Record] = {}
    for path in paths:
        for record in read_records(path):
            seen.setdefault(record.id, record)
    return list(seen.values())


DATA_FILE_PATTERNS = ("projects-*.jsonl.gz", "projects-*.jsonl")


def default_data_files(data_dir: Path | str) -> list[Path]:
    """The data set's project files in a folder (labelled and unlabelled)."""
    folder = Path(data_dir)
    files = sorted(p for pattern in DATA_FILE_PATTERNS for p in folder.glob(pattern))
    if not files:
        raise DatasetError(f"{folder}: no projects-*.jsonl(.gz) data files")
    return files


def stable_fraction(record_id: str, salt: str = "treelens") -> float:
    """A number in [0, 1) fixed by the record id: splits never depend on file order."""
    digest = hashlib.sha256(f"{salt}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(record_id: str, train_share: float, salt: str = "treelens") -> str:
    """'train', 'validation' or 'test' for a record; the non-train rest is split evenly.

    Test takes the lowest fractions, so when the train share grows with the data set,
    records only move towards training, never from training into the held-out test set.
    """
    if not 0.0 < train_share < 1.0:
        raise ValueError(f"train_share must be between 0 and 1, got {train_share}")
    held_out = (1.0 - train_share) / 2
    fraction = stable_fraction(record_id, salt)
    if fraction < held_out:
        return "test"
    if fraction < 2 * held_out:
        return "validation"
    return "train"


def split_records(
    records: Iterable[Record], train_share: float, salt: str = "treelens"
) -> dict[str, list[Record]]:
    """Records grouped by split_of (labelled records only are meaningful here)."""
    groups: dict[str, list[Record]] = {name: [] for name in SPLITS}
    for record in records:
        groups[split_of(record.id, train_share, salt)].append(record)
    return groups


def report_train_share(size: int) -> float:
    """The seed report's split rule: 68% train at small sizes, growing linearly with the
    number of records to 84% at 10 million and fixed there."""
    return 0.68 + 0.16 * min(size, 10_000_000) / 10_000_000


def label_counts(records: Iterable[Record]) -> dict[str, int]:
    """Positives per label (labelled records only)."""
    counts = dict.fromkeys(LABELS, 0)
    for record in records:
        if record.labels:
            for name, value in zip(LABELS, record.labels, strict=True):
                counts[name] += value
    return counts
