"""A broken or foreign feedback database, on real SQLite files: a foreign database stays
byte for byte as it was, a damaged page is noticed before another row is acknowledged,
and the export names the rows it cannot read instead of refusing the whole file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from treelens.model.dataset import read_records
from treelens.model.feedback import Feedback, FeedbackError, FeedbackStore
from treelens.model.labels import LABELS
from treelens.model.tree import ProjectTree
from treelens.training.cli import main as treelens_train

LABELLED = {name: int(name == "backend") for name in LABELS}
ROWS = 40


def feedback(n: int) -> Feedback:
    """Row n: its own tree (file row<n>.py) and a model text large enough that a page holds
    only a few rows, marked so the test finds the page a row is on."""
    tree = ProjectTree.from_paths([f"row{n:04d}.py", "requirements.txt"])
    return Feedback("file:///p", tree, f"#row-{n:04d}#\n" + "x" * 1200, LABELLED)


def foreign_database(path: Path, user_version: int) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        connection.executemany("INSERT INTO notes (text) VALUES (?)", [("n",)] * 50)
        connection.execute(f"PRAGMA user_version = {user_version}")
    connection.close()
    return path.read_bytes()


@pytest.mark.parametrize("user_version", [0, 1, 7])
def test_a_foreign_database_is_refused_untouched(tmp_path: Path, user_version: int) -> None:
    """Whatever its user_version, another application's database is not ours: refused,
    and not even its journal mode changes."""
    path = tmp_path / "other.sqlite3"
    before = foreign_database(path, user_version)
    store = FeedbackStore(path)
    with pytest.raises(FeedbackError, match="not a Treelens feedback store"):
        store.submit(feedback(1))
    with pytest.raises(FeedbackError, match="not a Treelens feedback store"):
        list(store.entries())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite3"]


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, list[int]]:
    """A store of ROWS rows with one table page in the middle overwritten with garbage;
    the ids of the rows that were on it."""
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    for n in range(1, ROWS + 1):
        assert store.submit(feedback(n)) == n
    with sqlite3.connect(path) as connection:  # everything into the main file
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.close()
    data = bytearray(path.read_bytes())
    page = data.index(b"#row-0020#") // page_size
    lost = sorted(
        n
        for n in range(1, ROWS + 1)
        if f"#row-{n:04d}#".encode() in data[page * page_size : (page + 1) * page_size]
    )
    data[page * page_size : (page + 1) * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))
    return path, lost


def test_a_damaged_store_takes_no_new_row(damaged: tuple[Path, list[int]]) -> None:
    """The daemon used to acknowledge rows into the damaged file."""
    path, _lost = damaged
    before = path.read_bytes()
    with pytest.raises(FeedbackError, match="damaged") as error:
        FeedbackStore(path).submit(feedback(ROWS + 1))
    assert str(path) in str(error.value) and "--skip-damaged" in str(error.value)
    assert path.read_bytes() == before


def _row_numbers(records) -> list[int]:
    return sorted(int(path[3:7]) for r in records for path in r.tree.paths if path.startswith("row"))


def test_export_names_the_damaged_rows(
    damaged: tuple[Path, list[int]], tmp_path: Path, capsys, caplog
) -> None:
    path, lost = damaged
    assert lost and len(lost) < ROWS
    output = tmp_path / "feedback.jsonl"
    args = ["export-feedback", "--database", str(path), "--output", str(output)]
    assert treelens_train(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    shown = f"{lost[0]}-{lost[-1]}" if len(lost) > 1 else str(lost[0])
    assert f"{len(lost)} rows cannot be read (rows {shown}" in err or f"(row {shown}" in err, err
    assert "--skip-damaged" in err and not output.exists()

    assert treelens_train([*args, "--skip-damaged"]) == 0
    assert f"{shown}: database disk image is malformed); skipped" in caplog.text
    kept = _row_numbers(read_records(output))
    assert kept == [n for n in range(1, ROWS + 1) if n not in lost]


def test_an_undecodable_row_is_named(tmp_path: Path) -> None:
    """A value that does not decode (here labels that are not JSON) names its row."""
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    for n in (1, 2, 3):
        store.submit(feedback(n))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE feedback SET labels = ? WHERE id = 2", ("[" * 100_000,))
    connection.close()
    with pytest.raises(FeedbackError, match=r"row 2 cannot be read \(feedback row 2: JSON nested too deeply"):
        list(store.entries())
    rows = list(store.rows())
    assert [getattr(r, "id", None) for r in rows] == [1, 2, 3]
    assert json.dumps(rows[0].labels) == json.dumps(LABELLED)
