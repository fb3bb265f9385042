"""The feedback store on real SQLite files: schema, durability settings, refusal of files
that are not ours (never touching them), and the export to data-set records."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from treelens.model.dataset import parse_record
from treelens.model.feedback import (
    SCHEMA_VERSION,
    Feedback,
    FeedbackError,
    FeedbackStore,
    Prediction,
    export_feedback,
    feedback_records,
    tree_hash,
)
from treelens.model.labels import LABELS
from treelens.model.tree import FileEntry, ProjectTree

LABELS_SET = {**dict.fromkeys(LABELS, 0), "backend": 1, "has_api": 1}
TREE = ProjectTree(
    [FileEntry("app/main.py", 120, "file"), FileEntry("requirements.txt", 20, "file")],
    {"requirements.txt": "flask\n"},
)


def _feedback(tree: ProjectTree = TREE, labels: dict[str, int] = LABELS_SET, comment: str = "") -> Feedback:
    prediction = Prediction(["backend"], dict.fromkeys(LABELS, 0.4), "2026.01.01-test")
    return Feedback("file:///work/api", tree, "# tree\napp/\n", labels, prediction, comment)


def test_a_new_file_gets_the_schema_wal_and_the_row(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "feedback.sqlite3"
    store = FeedbackStore(path)
    assert store.submit(_feedback(comment="looks right")) == 1
    assert store.submit(_feedback()) == 2
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first = next(store.entries())
    assert first.labels == LABELS_SET and first.comment == "looks right"
    assert first.folder == "file:///work/api" and first.model_text == "# tree\napp/\n"
    assert first.tree_hash == tree_hash(TREE) and first.tree.to_record() == TREE.to_record()
    assert first.prediction == Prediction(["backend"], dict.fromkeys(LABELS, 0.4), "2026.01.01-test")


def test_feedback_without_a_model_has_no_prediction(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.submit(Feedback("file:///x", TREE, "text", LABELS_SET))
    assert next(store.entries()).prediction is None


def test_incomplete_labels_are_refused_before_storing() -> None:
    with pytest.raises(ValueError, match="missing"):
        Feedback("file:///x", TREE, "text", {"backend": 1})


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"garbage, not a database " * 200, "cannot be used"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "cannot be used"),
    ],
)
def test_a_corrupt_file_is_an_error_and_stays_as_it_was(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "feedback.sqlite3"
    path.write_bytes(content)
    with pytest.raises(FeedbackError, match=says) as error:
        FeedbackStore(path).submit(_feedback())
    assert str(path) in str(error.value) and "move it aside" in str(error.value)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feedback.sqlite3"]


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(FeedbackError, match="not a Treelens feedback store"):
        FeedbackStore(path).submit(_feedback())


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    FeedbackStore(path).submit(_feedback())
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(FeedbackError, match="newer Treelens"):
        FeedbackStore(path).submit(_feedback())


def test_an_unwritable_location_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(FeedbackError, match="cannot be used"):
        FeedbackStore(blocker / "feedback.sqlite3").submit(_feedback())


def test_export_gives_data_set_records_latest_labels_per_tree(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    other = ProjectTree([FileEntry("main.go", 10, "file")])
    store.submit(_feedback(comment="first try"))
    store.submit(_feedback(other, {**dict.fromkeys(LABELS, 0), "cli": 1}))
    store.submit(_feedback(labels={**LABELS_SET, "library": 1}, comment="second thoughts"))
    out = io.StringIO()
    assert export_feedback(path, out) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    records = [parse_record(line, f"export line {n}") for n, line in enumerate(lines, 1)]
    assert [r.id for r in records] == [
        f"feedback/{tree_hash(other)[:16]}",
        f"feedback/{tree_hash(TREE)[:16]}",
    ]
    assert lines[1]["labels"] == {**LABELS_SET, "library": 1} and lines[1]["note"] == "second thoughts"
    assert lines[1]["manifests"] == {"requirements.txt": "flask\n"}
    assert records[1].tree.to_record() == TREE.to_record()
    assert "folder" not in lines[0]  # local paths stay local
    assert list(feedback_records(path)) == lines


def test_export_of_a_missing_database_says_so(tmp_path: Path) -> None:
    with pytest.raises(FeedbackError, match="no such file"):
        export_feedback(tmp_path / "nothing.sqlite3", io.StringIO())
