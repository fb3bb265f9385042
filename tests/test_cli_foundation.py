"""`treelens tree|inspect` and `treelens-train data stats`, run as installed commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.folders import make_git_repo, write_files
from tests.shared_data import DATA_DIR, labelled_records
from treelens.model.input import segments
from treelens.model.shape import name_words

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.fixture
def flask_app(tmp_path: Path) -> Path:
    write_files(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/views.py": "",
            "app/templates/index.html": "",
            "requirements.txt": "flask==3.0\ngunicorn\n",
            "Dockerfile": "FROM python:3.12\n",
            "docs/index.md": "",
        },
    )
    make_git_repo(tmp_path)
    return tmp_path


def test_tree_prints_the_model_text(flask_app: Path) -> None:
    done = run("treelens", "tree", str(flask_app))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:4] == ["# tree", "app/", "  templates/", "    index.html"]
    assert "pypi: flask gunicorn" in done.stdout
    tree, project, facts = segments(done.stdout)
    assert "docs" not in tree  # noise: left out of the tree...
    assert project == f"# project: {' '.join(name_words(flask_app.name))}\n"
    assert facts == "# facts: docs\n"  # ...but a docs/ folder is a shape fact


def test_inspect_json(flask_app: Path) -> None:
    done = run("treelens", "inspect", str(flask_app), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["method"] == "git"
    assert report["files"] == 6 and report["shownFiles"] == 5
    assert report["languages"]["python"] == 2
    assert {"flask", "docker"} <= set(report["technologies"])
    assert report["dependencies"] == {"pypi": ["flask", "gunicorn"]}


def test_tree_and_inspect_work_on_this_repository() -> None:
    assert run("treelens", "tree", ".").returncode == 0
    report = json.loads(run("treelens", "inspect", ".", "--json").stdout)
    assert "python" in report["languages"]


@pytest.mark.parametrize("command", ["tree", "inspect"])
def test_bad_paths_exit_nonzero_with_one_clear_line(tmp_path: Path, command: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    for path, message in [(tmp_path / "missing", "no such folder"), (tmp_path / "file.txt", "is a file")]:
        done = run("treelens", command, str(path))
        assert done.returncode == 1
        assert message in done.stderr and done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr


def test_help_on_every_command() -> None:
    for args in (
        ["treelens", "--help"],
        ["treelens", "tree", "--help"],
        ["treelens-train", "data", "stats", "--help"],
    ):
        done = run(*args)
        assert done.returncode == 0 and "usage:" in done.stdout


def test_data_stats_on_the_shared_data() -> None:
    labelled = len(labelled_records())
    done = run("treelens-train", "data", "stats", "--data-dir", str(DATA_DIR), "--json")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["labelled"] == labelled
    assert sum(s["records"] for s in stats["splits"].values()) == labelled
    assert set(stats["tokens"]) == {"p50", "p90", "p95", "p99", "p100"}
    assert 0 < stats["truncated"] < stats["records"]


def test_data_stats_bad_file_names_the_record(tmp_path: Path) -> None:
    bad = tmp_path / "projects-x.jsonl"
    bad.write_text('{"id": "o/r", "files": [], "labels": {"web": 1}}\n')
    done = run("treelens-train", "data", "stats", "--data", str(bad))
    assert done.returncode == 1
    assert "projects-x.jsonl:1 (id o/r): unknown label(s) ['web']" in done.stderr


def test_tree_counts_with_the_bundle_tokenizer(flask_app: Path, tiny_bundle: Path) -> None:
    """With a bundle, `tree` prints exactly the model's text: counted by its tokenizer,
    within its budget."""
    from treelens.model.bundle import load_bundle
    from treelens.model.input import SPECIAL_TOKENS
    from treelens.model.tokenizer import encode, load_tokenizer

    bundle = load_bundle(tiny_bundle)
    done = run("treelens", "tree", str(flask_app), "--model", str(tiny_bundle))
    assert done.returncode == 0, done.stderr
    assert "estimate" not in done.stderr
    tokens = encode(load_tokenizer(bundle.file(bundle.tokenizer)), done.stdout, bundle.max_tokens)
    assert len(tokens) <= bundle.max_tokens
    report = json.loads(
        run("treelens", "inspect", str(flask_app), "--json", "--model", str(tiny_bundle)).stdout
    )
    assert report["tokenCount"] == len(tokens) - SPECIAL_TOKENS  # [CLS] and 3 [SEP] are not text


def test_tree_with_a_missing_bundle_is_an_error(flask_app: Path, tmp_path: Path) -> None:
    done = run("treelens", "tree", str(flask_app), "--model", str(tmp_path / "nope"))
    assert done.returncode == 1
    assert "nope" in done.stderr and "treelens-train all --install" in done.stderr
