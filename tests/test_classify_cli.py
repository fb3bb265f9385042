"""`treelens classify`: folders, tree listings, git remotes and data sets, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.folders import git, write_files
from treelens.daemon.clone import CloneError, check_url, folder_name, shallow_clone
from treelens.model.labels import LABELS
from treelens.model.listing import ListingError, parse_listing

TREE_DRAWING = """\
.
├── README.md
├── app
│   ├── __init__.py
│   └── views
│       └── home.py
├── link -> app
└── requirements.txt

3 directories, 5 files
"""
EZA_DRAWING = """\
.
├── Cargo.toml
├── src
│  ├── main.rs
│  └── cli
│     └── args.rs
└── tests
   └── it.rs
"""
ASCII_DRAWING = """\
.
|-- package.json
`-- src
    `-- index.js
"""


def treelens(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "treelens.daemon.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )


def test_tree_drawings_become_paths():
    assert parse_listing(TREE_DRAWING) == [
        "README.md",
        "app/__init__.py",
        "app/views/home.py",
        "link",
        "requirements.txt",
    ]
    assert parse_listing(EZA_DRAWING) == ["Cargo.toml", "src/main.rs", "src/cli/args.rs", "tests/it.rs"]
    assert parse_listing(ASCII_DRAWING) == ["package.json", "src/index.js"]


def test_path_lists_become_paths():
    listing = 'src/main.py\n./setup.py\n"caf\\303\\251/menu.py"\ndocs/\n\n'
    assert parse_listing(listing) == ["src/main.py", "setup.py", "café/menu.py"]
    with pytest.raises(ListingError, match="no file paths"):
        parse_listing("\n.\n\n2 directories, 0 files\n")


def test_classify_a_folder(tiny_bundle, tmp_path):
    write_files(tmp_path, {"manage.py": "", "shop/views.py": "", "requirements.txt": "django\n"})
    done = treelens("classify", str(tmp_path), "--model", str(tiny_bundle), "--json", "--threads", "1")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["source"] == str(tmp_path.resolve())
    assert set(result["probabilities"]) == set(LABELS)
    assert "django" in result["technologies"] and result["elapsedMs"] >= 0
    text = treelens("classify", str(tmp_path), "--model", str(tiny_bundle), "--threshold", "cli=0.0001")
    assert text.returncode == 0, text.stderr
    assert "cli " in text.stdout and "(threshold 0.00)  *" in text.stdout


def test_classify_a_tree_file_and_stdin(tiny_bundle, tmp_path):
    listing = tmp_path / "tree.txt"
    listing.write_text(TREE_DRAWING)
    from_file = treelens("classify", "--tree-file", str(listing), "--model", str(tiny_bundle), "--json")
    from_stdin = treelens(
        "classify", "--tree-file", "-", "--model", str(tiny_bundle), "--json", stdin=TREE_DRAWING
    )
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout)["probabilities"] == json.loads(from_stdin.stdout)["probabilities"]
    assert json.loads(from_file.stdout)["languages"] == ["python"]


def test_classify_a_dataset(tiny_bundle, tiny_data):
    done = treelens("classify", "--dataset", str(tiny_data), "--model", str(tiny_bundle), "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    ids = [json.loads(line)["id"] for line in tiny_data.read_text().splitlines()]
    assert [line["id"] for line in lines] == ids
    assert all(set(line) == {"id", "labels", "probabilities"} for line in lines)
    assert f"classify {len(ids)}/{len(ids)}" in done.stderr  # the progress bar, on stderr


def test_bad_dataset_names_the_record(tiny_bundle, tmp_path):
    bad = tmp_path / "bad.jsonl"
    record = {"id": "someone/odd", "files": [["a.py", 1, "file"]], "labels": {"gui": 1}}
    bad.write_text(json.dumps(record) + "\n")
    done = treelens("classify", "--dataset", str(bad), "--model", str(tiny_bundle), "--json")
    assert done.returncode == 1
    assert "someone/odd" in done.stderr and "unknown label" in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--git", "file:///etc"], "file remotes are not allowed"),
        (["--git", "/tmp/somewhere"], "local path remotes are not allowed"),
        (["--git", "ext::sh -c touch% /tmp/x"], "is not a repository URL"),
        (["--git", "http://example.com/a.git"], "http remotes are not allowed"),
        (["--tree-file", "-", "--ref", "main"], "--ref goes with --git"),
        (["--tree-file", "-", "--threshold", "cli"], "write LABEL=P"),
        (["--tree-file", "-", "--threshold", "gui=0.3"], "unknown label 'gui'"),
    ],
)
def test_bad_requests_are_refused(tiny_bundle, args, message):
    done = treelens("classify", *args, "--model", str(tiny_bundle), stdin="a.py\n")
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr


def test_missing_bundle_is_reported(tmp_path):
    done = treelens("classify", str(tmp_path), "--model", str(tmp_path / "nope"))
    assert done.returncode == 1
    assert f"model bundle {tmp_path / 'nope'}: folder: does not exist" in done.stderr


def test_url_rules():
    for url in ("https://github.com/a/b.git", "ssh://git@github.com/a/b", "git@github.com:a/b.git"):
        check_url(url)
    for url in ("-uhttps://x", "git://github.com/a/b", "https://x/a b"):
        with pytest.raises(CloneError):
            check_url(url)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    repo = tmp_path / "origin"
    write_files(repo, {"go.mod": "module x\n", "cmd/tool/main.go": "package main\n"})
    git(repo.parent, "init", "-q", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "tag", "v1")
    write_files(repo, {"later.go": "package x\n"})
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    return repo


def test_shallow_clone_runs_no_hooks_and_cleans_up(origin, tmp_path, monkeypatch):
    """A template with a post-checkout hook (as a user's init.templateDir could hold) does not run."""
    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "template" / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (hooks / "post-checkout").chmod(0o755)
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(hooks.parent))
    url = origin.as_uri()
    with shallow_clone(url, allowed=("file",)) as work:
        assert work.name == "origin"  # named as git clone names it: the model reads the name
        assert (work / "later.go").is_file()
        assert git(work, "rev-list", "--count", "HEAD").strip() == "1"  # depth 1
        clone_root = work.parent
    assert not marker.exists()
    assert not clone_root.exists()
    with shallow_clone(url, ref="v1", allowed=("file",)) as work:
        assert (work / "go.mod").is_file() and not (work / "later.go").exists()
    with pytest.raises(RuntimeError, match="boom"), shallow_clone(url, allowed=("file",)) as work:
        clone_root = work.parent
        raise RuntimeError("boom")
    assert not clone_root.exists()
    with pytest.raises(CloneError, match="not allowed"), shallow_clone(url):
        pass


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/org/my-cli.git", "my-cli"),
        ("https://github.com/org/my-cli/", "my-cli"),
        ("git@github.com:org/Tool.git", "Tool"),
        ("https://example.com/", "example.com"),
        ("https://example.com/..", "repo"),
    ],
)
def test_clone_folder_name(url, name):
    assert folder_name(url) == name


def test_failed_clone_leaves_nothing_behind(tmp_path):
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("treelens-clone-*"))
    with (
        pytest.raises(CloneError, match="git clone failed"),
        shallow_clone("https://127.0.0.1:9/x.git", timeout=20),
    ):
        pass
    assert set(Path(os.environ.get("TMPDIR", "/tmp")).glob("treelens-clone-*")) == before


def test_nothing_to_go_on_is_said_not_guessed(tmp_path, tiny_bundle):
    """An empty folder, a bare git directory and a folder of ignored files get 'no project
    files found', no labels and no probabilities; an empty tree listing is refused."""
    empty, bare, ignored = tmp_path / "empty", tmp_path / "bare.git", tmp_path / "ignored"
    empty.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    write_files(ignored, {".gitignore": "*.log\n", "app.log": "x", "README.md": "# notes\n"})
    git(ignored, "init", "-q")
    for folder in (empty, bare, ignored):
        done = treelens("classify", str(folder), "--model", str(tiny_bundle))
        assert done.returncode == 0, done.stderr
        assert "no project files found" in done.stdout.splitlines()[0], folder
        assert "threshold" not in done.stdout
        answer = json.loads(treelens("classify", str(folder), "--json", "--model", str(tiny_bundle)).stdout)
        assert answer["noProjectFiles"] is True
        assert answer["labels"] == answer["uncertain"] == [] and answer["probabilities"] == {}
    listing = treelens("classify", "--tree-file", "-", "--model", str(tiny_bundle), stdin="")
    assert listing.returncode == 1 and "holds no file paths" in listing.stderr


def test_uncertain_labels_are_marked(tmp_path, tiny_bundle):
    """A label between half its threshold and its threshold reads `label?`: thresholds at
    1.5x a label's probability make it uncertain, at 0.9x present (and not uncertain)."""
    write_files(tmp_path, {"main.py": "", "requirements.txt": "flask\n"})
    model = ("--model", str(tiny_bundle))
    first = json.loads(treelens("classify", str(tmp_path), "--json", *model).stdout)
    assert first["noProjectFiles"] is False
    chosen = [name for name in LABELS if 0.001 < first["probabilities"][name] < 0.6]
    assert chosen, first["probabilities"]

    def thresholds(factor: float) -> list[str]:
        return [f"--threshold={n}={first['probabilities'][n] * factor:.6f}" for n in chosen]

    near = json.loads(treelens("classify", str(tmp_path), "--json", *model, *thresholds(1.5)).stdout)
    assert set(chosen) <= set(near["uncertain"]) and not set(near["labels"]) & set(chosen)
    printed = treelens("classify", str(tmp_path), *model, *thresholds(1.5)).stdout.splitlines()
    assert all(f"{n}?" in printed[0].split(": ", 1)[1].split(", ") for n in chosen)
    rows = [line for line in printed if line.startswith(tuple(f"  {n:9} " for n in chosen))]
    assert len(rows) == len(chosen) and all(line.endswith("  ?") for line in rows)
    below = json.loads(treelens("classify", str(tmp_path), "--json", *model, *thresholds(0.9)).stdout)
    assert set(chosen) <= set(below["labels"]) and not set(below["uncertain"]) & set(chosen)
