"""The feedback store: labels a person confirmed for a project, kept for retraining.

One SQLite file (WAL, synchronous=FULL) in the user's data directory, schema versioned
with ``PRAGMA user_version``. ``submit`` returns only after the row is committed, so an
acknowledged submission survives a kill -9 (or a power cut) of the daemon. A file that
is not a usable database is reported with a FeedbackError naming the path and the fix;
the store never deletes, truncates or rewrites a file it did not create.

``export_feedback`` turns the store into data-set records (DESIGN.md's JSONL format,
with the person's labels) for ``treelens-train export-feedback``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from model.labels import label_vector
from model.tree import ProjectTree

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


class FeedbackError(Exception):
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
        with self._connection() as connection:
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
        """Every stored submission, oldest first."""
        with self._connection() as connection:
            try:
                rows = connection.execute(
                    "SELECT id, created_at, folder, tree_hash, model_text, tree, labels,"
                    " predicted_labels, probabilities, model_version, comment FROM feedback ORDER BY id"
                )
                for row in rows:
                    yield _stored(row)
            except (sqlite3.Error, zlib.error, ValueError) as error:
                raise self._error(error) from None

    def _connection(self) -> _Connection:
        return _Connection(self)

    def _open(self) -> sqlite3.Connection:
        """Connect, switch to WAL and make sure the schema is ours and current."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        except (OSError, sqlite3.Error) as error:
            raise self._error(error) from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            self._migrate(connection)
        except (sqlite3.Error, FeedbackError) as error:
            connection.close()
            raise error if isinstance(error, FeedbackError) else self._error(error) from None
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Create the schema in a new (empty) file; refuse files that are not ours."""
        if connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        connection.execute("BEGIN IMMEDIATE")  # a second daemon may be creating it right now
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise self._error(
                    f"it has schema version {version}, written by a newer Treelens (this one "
                    f"reads version {SCHEMA_VERSION})",
                    fix="upgrade Treelens, or set treelens.feedbackDatabase to another file",
                )
            if version < SCHEMA_VERSION:
                if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise self._error("it is an SQLite database but not a Treelens feedback store")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise

    def _error(self, problem: Exception | str, fix: str | None = None) -> FeedbackError:
        fix = fix or (
            "Treelens leaves the file as it is: move it aside or set treelens.feedbackDatabase "
            "to another file, then submit again"
        )
        return FeedbackError(f"feedback database {self.path} cannot be used: {problem}. {fix}")


class _Connection:
    """Context manager: an open, migrated connection, always closed."""

    def __init__(self, store: FeedbackStore) -> None:
        self._store = store
        self._connection: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection:
        self._connection = self._store._open()
        return self._connection

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            self._connection.close()


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
    prediction = None
    if predicted is not None:
        prediction = Prediction(json.loads(predicted), json.loads(probabilities or "{}"), version or "")
    return StoredFeedback(
        id=row_id,
        created_at=created_at,
        folder=folder,
        tree_hash=hash_,
        model_text=model_text,
        tree=ProjectTree.from_record(json.loads(zlib.decompress(tree)), f"feedback row {row_id}"),
        labels=json.loads(labels),
        prediction=prediction,
        comment=comment,
    )


def feedback_records(path: Path) -> Iterator[dict[str, Any]]:
    """Data-set records (DESIGN.md's JSONL format) of a feedback database.

    The person's labels are the record's labels (confidence "high": a person read the
    project). A tree labelled more than once gives one record, with the latest labels;
    its id is ``feedback/<first 16 hex digits of the tree hash>``. The folder path is
    left out: records may be shared for training.
    """
    latest: dict[str, StoredFeedback] = {}
    for entry in FeedbackStore(path).entries():
        latest.pop(entry.tree_hash, None)  # re-insert so the order follows the latest submission
        latest[entry.tree_hash] = entry
    for entry in latest.values():
        yield {
            "id": f"feedback/{entry.tree_hash[:16]}",
            "commit": None,
            **entry.tree.to_record(),
            "labels": entry.labels,
            "confidence": "high",
            "frameworks": [],
            "note": entry.comment,
            "source": "feedback",
            "createdAt": entry.created_at,
            "modelVersion": entry.prediction.model_version if entry.prediction else None,
        }


def export_feedback(path: Path, out: TextIO) -> int:
    """Write the records of ``feedback_records`` as JSON Lines to ``out``; returns how many.

    Raises FeedbackError when the database is missing or unusable.
    """
    if not path.is_file():
        raise FeedbackError(
            f"feedback database {path}: no such file; submit feedback from the editor first, "
            "or give the path set in treelens.feedbackDatabase"
        )
    count = 0
    for record in feedback_records(path):
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
