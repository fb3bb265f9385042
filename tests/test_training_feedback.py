"""`treelens-train export-feedback`: the daemon's real SQLite store becomes data-set records
the training stages read."""

from __future__ import annotations

import argparse
import subprocess
import sys

from treelens.model.dataset import read_records
from treelens.model.feedback import Feedback, FeedbackStore
from treelens.model.labels import LABELS
from treelens.model.tree import ProjectTree
from treelens.training.cli import main
from treelens.training.options import build_config
from treelens.training.stage_configs import TokenizerConfig
from treelens.training.texts import load_records


def labels(*on: str) -> dict[str, int]:
    return {name: int(name in on) for name in LABELS}


def test_feedback_becomes_training_records(tmp_path, capsys):
    database = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(database)
    tree = ProjectTree.from_paths(["manage.py", "shop/views.py", "requirements.txt"])
    other = ProjectTree.from_paths(["cmd/tool/main.go", "go.mod"])
    store.submit(Feedback("file:///a", tree, "# tree\n", labels("backend")))
    store.submit(Feedback("file:///b", other, "# tree\n", labels("cli")))
    store.submit(Feedback("file:///a", tree, "# tree\n", labels("backend", "has_api"), comment="REST too"))
    output = tmp_path / "out" / "feedback.jsonl.gz"

    assert main(["export-feedback", "--database", str(database), "--output", str(output)]) == 0
    records = list(read_records(output))
    assert len(records) == 2  # one per tree, the latest labels win
    by_paths = {tuple(r.tree.paths): r for r in records}
    assert by_paths[tuple(tree.paths)].labels == tuple(labels("backend", "has_api").values())
    assert by_paths[tuple(other.paths)].labels == tuple(labels("cli").values())

    # the stages read it like any data file
    config = build_config(TokenizerConfig, "tokenizer", argparse.Namespace(data=[output]), None)
    assert len(load_records(config.data, config.data_dir)) == 2

    assert main(["export-feedback", "--database", str(database), "--output", str(output)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export-feedback", "--database", str(database), "--output", str(output), "--overwrite"]) == 0


def test_missing_or_empty_database(tmp_path, capsys):
    output = tmp_path / "feedback.jsonl"
    assert (
        main(["export-feedback", "--database", str(tmp_path / "none.sqlite3"), "--output", str(output)]) == 1
    )
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "empty.sqlite3"
    list(FeedbackStore(empty).entries())  # creates the schema, stores nothing
    assert main(["export-feedback", "--database", str(empty), "--output", str(output)]) == 1
    assert "no feedback stored yet" in capsys.readouterr().err
    assert not output.exists() and not list(tmp_path.glob(".partial-*"))
    (tmp_path / "junk.sqlite3").write_text("not a database")
    assert (
        main(["export-feedback", "--database", str(tmp_path / "junk.sqlite3"), "--output", str(output)]) == 1
    )
    assert "cannot be used" in capsys.readouterr().err


def test_export_feedback_loads_neither_the_daemon_nor_the_lsp_stack():
    """The feedback store is shared by the daemon and training; exporting it must not
    pull in the LSP server (pygls, lsprotocol) or any daemon module."""
    probe = (
        "import sys, treelens.training.feedback\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol')"
        " or m.startswith('treelens.daemon'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
