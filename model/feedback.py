"""The feedback store: labels a person confirmed for a project, kept for retraining.

One SQLite file (WAL, synchronous=FULL) in the user's data directory, schema versioned
with ``PRAGMA user_version``. ``submit`` returns only after the row is committed, so an
acknowledged submission survives a kill -9 (or a power cut) of the daemon. A file that
is not a usable database is reported with a FeedbackError naming the path and the fix;
the store never deletes, truncates or rewrites a file it did not create, and changes
nothing in an SQLite file that is not its own (not even the journal mode).

Every open runs ``PRAGMA quick_check``: a damaged file (a page overwritten, a disk
error) takes no new rows, so the daemon does not acknowledge feedback into it. Reading
goes row by row, so a damaged page costs the rows on it, named by row id, not the file.

``export_feedback`` turns the store into data-set records (DESIGN.md's JSONL format,
with the person's labels) for ``treelens-train export-feedback``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from treelens.model.errors import TreelensError
from treelens.model.guards import load_json
from treelens.model.labels import label_vector
from treelens.model.tree import ProjectTree

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
"""Another daemon (a second editor window) may be writing the same file."""

_SCHEMA = """
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,        -- ISO 8601, UTC
    folder TEXT NOT NULL,            -- workspace folder URI
    tree_hash TEXT NOT NULL,         -- sha256 of the tree record, see tree_hash()
    model_text TEXT NOT NULL,        -- what the model saw
    tree BLOB NOT NULL,              -- zlib'd JSON {"files": [...], "manifests": {...}}
    labels TEXT NOT NULL,            -- JSON {label: 0|1}, the person's
    predicted_labels TEXT,           -- JSON [label], NULL when no model was loaded
    probabilities TEXT,              -- JSON {label: p}
    model_version TEXT,
    comment TEXT NOT NULL DEFAULT ''
);
CREATE INDEX feedback_tree_hash ON feedback (tree_hash);
"""
FEEDBACK_FILE_NAME = "feedback.sqlite3"


def default_feedback_database() -> Path:
    """One file in the user's data directory (e.g. ~/.local/share/treelens/ on Linux): the
    daemon writes it, ``treelens-train export-feedback`` reads it by default."""
    return platformdirs.user_data_path("treelens", appauthor=False) / FEEDBACK_FILE_NAME


_COLUMNS = (
    "id, created_at, folder, tree_hash, model_text, tree, labels,"
    " predicted_labels, probabilities, model_version, comment"
)


class FeedbackError(TreelensError):
    """The feedback database cannot be opened, read or written (message says why and what to do)."""


@dataclass(frozen=True)
class Prediction:
    """What the model said about the tree when the person gave feedback."""

    labels: list[str]
    probabilities: dict[str, float]
    model_version: str


@dataclass(frozen=True)
class Feedback:
    """One submission. ``labels`` holds every label as 0 or 1 (data-set format)."""

    folder: str
    tree: ProjectTree
    model_text: str
    labels: dict[str, int]
    prediction: Prediction | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        label_vector(self.labels, "feedback labels")  # ValueError when incomplete or not 0/1


@dataclass(frozen=True)
class StoredFeedback:
    """A row of the store."""

    id: int
    created_at: str
    folder: str
    tree_hash: str
    model_text: str
    tree: ProjectTree
    labels: dict[str, int]
    prediction: Prediction | None
    comment: str


@dataclass(frozen=True)
class DamagedRow:
    """A row that cannot be read back: on a damaged page, or a value that does not decode."""

    id: int
    problem: str


def tree_hash(tree: ProjectTree) -> str:
    """sha256 of the tree's data-set record in canonical JSON: the same files, sizes and
    manifest texts give the same hash on every machine."""
    canonical = json.dumps(tree.to_record(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class FeedbackStore:
    """The SQLite file at ``path``; each call opens its own connection (thread-safe, and a
    file fixed or replaced by the person is picked up on the next call)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def submit(self, feedback: Feedback) -> int:
        """Store one submission and return its id once it is committed."""
        record = feedback.tree.to_record()
        prediction = feedback.prediction
        row = (
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            feedback.folder,
            tree_hash(feedback.tree),
            feedback.model_text,
            zlib.compress(json.dumps(record, ensure_ascii=False).encode("utf-8")),
            json.dumps(feedback.labels),
            json.dumps(prediction.labels) if prediction else None,
            json.dumps(prediction.probabilities) if prediction else None,
            prediction.model_version if prediction else None,
            feedback.comment,
        )
        with closing(self._open(writing=True)) as connection:
            try:
                with connection:  # commits on success, rolls back on error
                    cursor = connection.execute(
                        "INSERT INTO feedback (created_at, folder, tree_hash, model_text, tree, labels,"
                        " predicted_labels, probabilities, model_version, comment)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
            except sqlite3.Error as error:
                raise self._error(error) from None
            row_id = cursor.lastrowid
        if row_id is None:
            raise FeedbackError(f"feedback database {self.path}: the insert reported no row id")
        return row_id

    def entries(self) -> Iterator[StoredFeedback]:
        """Every stored submission, oldest first; a damaged row is a FeedbackError naming it."""
        for row in self.rows():
            if isinstance(row, DamagedRow):
                raise self._error(
                    f"row {row.id} cannot be read ({row.problem})",
                    fix="Treelens leaves the file as it is: `treelens-train export-feedback "
                    "--skip-damaged` exports the other rows",
                )
            yield row

    def rows(self) -> Iterator[StoredFeedback | DamagedRow]:
        """Every row, oldest first, each read on its own: a row on a damaged page, or whose
        values do not decode, comes as a DamagedRow naming it instead of ending the read."""
        with closing(self._open(writing=False)) as connection:
            damage, rows_damaged = _quick_check(connection), False
            for row_id in self._row_ids(connection):
                try:
                    query = f"SELECT {_COLUMNS} FROM feedback WHERE id = ?"  # noqa: S608 - constant columns
                    found = connection.execute(query, (row_id,)).fetchone()
                    if found is not None:
                        yield _stored(found)
                except sqlite3.OperationalError as error:  # locked, I/O error: not the row's fault
                    raise self._error(error) from None
                except (sqlite3.DatabaseError, zlib.error, ValueError, TypeError) as error:
                    rows_damaged = True
                    yield DamagedRow(row_id, str(error))
            if damage and not rows_damaged:
                log.warning("feedback database %s is damaged (%s), but every row was read", self.path, damage)

    def _row_ids(self, connection: sqlite3.Connection) -> list[int]:
        """The row ids; when a damaged page breaks the scan, every id up to the largest
        (ids are given in order, so the rows on the bad page are among them)."""
        try:
            return [row_id for (row_id,) in connection.execute("SELECT id FROM feedback ORDER BY id")]
        except sqlite3.OperationalError as error:
            raise self._error(error) from None
        except sqlite3.DatabaseError:
            pass  # a damaged page
        try:
            largest = connection.execute("SELECT max(id) FROM feedback").fetchone()[0] or 0
        except sqlite3.DatabaseError as error:
            raise self._error(f"its rows cannot be listed ({error})", fix=_DAMAGED_FIX) from None
        return list(range(1, largest + 1))

    def _open(self, writing: bool) -> sqlite3.Connection:
        """Connect, make sure the file is ours (creating the schema in a new, empty one)
        and intact, then switch to WAL. Nothing is written before the file is known to be
        ours, so a foreign database stays byte for byte as it was."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        except (OSError, sqlite3.Error) as error:
            raise self._error(error) from None
        try:
            self._migrate(connection)
            if writing and (damage := _quick_check(connection)):
                raise self._error(f"it is damaged ({damage})", fix=_DAMAGED_FIX)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
        except (sqlite3.Error, FeedbackError) as error:
            connection.close()
            raise error if isinstance(error, FeedbackError) else self._error(error) from None
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Create the schema in a new (empty) file; refuse files that are not ours."""
        if self._is_ours(connection):
            return
        connection.execute("PRAGMA journal_mode=WAL")  # an empty database: ours from here on
        connection.execute("BEGIN IMMEDIATE")  # a second daemon may be creating it right now
        try:
            if not self._is_ours(connection):
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise

    def _is_ours(self, connection: sqlite3.Connection) -> bool:
        """True for a Treelens store of this schema version, False for an empty database;
        anything else (another application's database, whatever its user_version, or a
        newer Treelens store) is a FeedbackError. Reads only."""
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        columns = [row[1] for row in connection.execute("PRAGMA table_info(feedback)")]
        if not columns:
            if version or connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise self._error("it is an SQLite database but not a Treelens feedback store")
            return False
        if version > SCHEMA_VERSION:
            raise self._error(
                f"it has schema version {version}, written by a newer Treelens (this one "
                f"reads version {SCHEMA_VERSION})",
                fix="upgrade Treelens, or set treelens.feedbackDatabase to another file",
            )
        if version != SCHEMA_VERSION or ", ".join(columns) != _COLUMNS:
            raise self._error("it is an SQLite database but not a Treelens feedback store")
        return True

    def _error(self, problem: Exception | str, fix: str | None = None) -> FeedbackError:
        fix = fix or (
            "Treelens leaves the file as it is: move it aside or set treelens.feedbackDatabase "
            "to another file, then submit again"
        )
        return FeedbackError(f"feedback database {self.path} cannot be used: {problem}. {fix}")


_DAMAGED_FIX = (
    "Treelens writes nothing more to it and leaves it as it is: save the rows that can still be "
    "read with `treelens-train export-feedback --skip-damaged`, then move it aside (the next "
    "feedback starts a new file) or set treelens.feedbackDatabase to another file"
)


def _quick_check(connection: sqlite3.Connection) -> str | None:
    """What ``PRAGMA quick_check`` finds wrong (pages, b-trees, records), None when intact.
    A damaged file takes no new rows: an acknowledged row in it might not read back."""
    try:
        found = [line for (line,) in connection.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as error:
        found = [str(error)]
    return None if found == ["ok"] else "quick_check: " + "; ".join(found[:3])


def _stored(row: tuple[Any, ...]) -> StoredFeedback:
    (
        row_id,
        created_at,
        folder,
        hash_,
        model_text,
        tree,
        labels,
        predicted,
        probabilities,
        version,
        comment,
    ) = row
    where = f"feedback row {row_id}"
    prediction = None
    if predicted is not None:
        prediction = Prediction(
            load_json(predicted, where), load_json(probabilities or "{}", where), version or ""
        )
    person = load_json(labels, where)
    if not isinstance(person, dict):
        raise ValueError(f"{where}: its labels are not an object")
    label_vector(person, where)
    return StoredFeedback(
        id=row_id,
        created_at=created_at,
        folder=folder,
        tree_hash=hash_,
        model_text=model_text,
        tree=ProjectTree.from_record(load_json(zlib.decompress(tree), where), where),
        labels=person,
        prediction=prediction,
        comment=comment,
    )


def feedback_records(path: Path, skip_damaged: bool = False) -> Iterator[dict[str, Any]]:
    """Data-set records (DESIGN.md's JSONL format) of a feedback database.

    The person's labels are the record's labels (confidence "high": a person read the
    project). A tree labelled more than once gives one record, with the latest labels;
    its id is ``feedback/<first 16 hex digits of the tree hash>``. The folder path is
    left out: records may be shared for training.

    Rows that cannot be read are a FeedbackError naming them, before any record is
    given; with ``skip_damaged`` they are left out with a warning naming them.
    """
    latest: dict[str, StoredFeedback] = {}
    damaged: list[DamagedRow] = []
    for entry in FeedbackStore(path).rows():
        if isinstance(entry, DamagedRow):
            damaged.append(entry)
            continue
        latest.pop(entry.tree_hash, None)  # re-insert so the order follows the latest submission
        latest[entry.tree_hash] = entry
    if damaged:
        _report_damaged(path, damaged, len(latest), skip_damaged)
    for entry in latest.values():
        yield {
            "id": f"feedback/{entry.tree_hash[:16]}",
            "commit": None,
            **entry.tree.to_record(),
            "name": entry.tree.name,  # "" when unknown: never guessed from the id
            "labels": entry.labels,
            "confidence": "high",
            "frameworks": [],
            "note": entry.comment,
            "source": "feedback",
            "createdAt": entry.created_at,
            "modelVersion": entry.prediction.model_version if entry.prediction else None,
        }


def _report_damaged(path: Path, damaged: list[DamagedRow], readable: int, skip: bool) -> None:
    """Name the rows that cannot be read: an error, or (``skip``) a warning."""
    rows = "row" if len(damaged) == 1 else "rows"
    what = f"{len(damaged)} {rows} cannot be read ({rows} {_id_ranges([d.id for d in damaged])}: "
    what += f"{damaged[0].problem})"
    if skip:
        log.warning("feedback database %s: %s; skipped", path, what)
        return
    raise FeedbackError(
        f"feedback database {path}: {what}; nothing was exported. Pass --skip-damaged to export "
        f"the {readable} readable trees, or restore the file from a backup"
    )


def _id_ranges(ids: list[int], shown: int = 10) -> str:
    """'3, 7-9, 12' for [3, 7, 8, 9, 12]; past ``shown`` ranges, ', ...'."""
    ranges: list[list[int]] = []
    for row_id in ids:
        if ranges and row_id == ranges[-1][1] + 1:
            ranges[-1][1] = row_id
        else:
            ranges.append([row_id, row_id])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:shown]]
    return ", ".join(text) + (", ..." if len(ranges) > shown else "")


def export_feedback(path: Path, out: TextIO, skip_damaged: bool = False) -> int:
    """Write the records of ``feedback_records`` as JSON Lines to ``out``; returns how many.

    Raises FeedbackError when the database is missing or unusable, or (unless
    ``skip_damaged``) when a row cannot be read.
    """
    if not path.is_file():
        raise FeedbackError(
            f"feedback database {path}: no such file; submit feedback from the editor first, "
            "or give the path set in treelens.feedbackDatabase"
        )
    count = 0
    for record in feedback_records(path, skip_damaged):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
