"""Hostile and careless input to the command lines: outputs that are not regular files,
files too deep or too large to read, numbers that are not numbers, clones that hang.

Every case must end in one line on stderr and exit 1 (or argparse's usage error, exit 2),
never a traceback, a freeze or a replaced device file. Everything runs on real files,
real SQLite, real git and real processes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from treelens.daemon.cli import main as treelens
from treelens.daemon.clone import CloneError, shallow_clone
from treelens.model.dataset import DatasetError, read_records
from treelens.model.feedback import Feedback, FeedbackStore
from treelens.model.labels import LABELS
from treelens.model.querysets import CatalogError, load_catalog
from treelens.model.tree import ProjectTree
from treelens.training.cli import main as treelens_train

DEEP_JSON = "[" * 100_000
RULE = "rules:\n- id: no-eval\n  languages: [python]\n  message: m\n  severity: INFO\n  pattern: eval(...)\n"


def one_line_error(capsys: pytest.CaptureFixture[str], rc: int, *says: str) -> str:
    """The command failed the way the README promises: rc 1, one line on stderr."""
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for text in says:
        assert text in err, err
    return err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_text("eval(input())\n")
    return folder


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "feedback.sqlite3"
    tree = ProjectTree.from_paths(["manage.py", "shop/views.py"])
    FeedbackStore(path).submit(
        Feedback("file:///a", tree, "# tree\n", {n: int(n == "backend") for n in LABELS})
    )
    return path


def export(database: Path, output: Path | str) -> int:
    return treelens_train(
        ["export-feedback", "--database", str(database), "--output", str(output), "--overwrite"]
    )


# --- outputs: regular files only, written through symlinks --------------------------------


def test_export_writes_through_a_symlink_and_keeps_it(tmp_path: Path, database: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert export(database, link) == 0
    assert link.is_symlink() and link.readlink() == real
    assert len(list(read_records(real))) == 1


def test_suggest_out_writes_through_a_symlink(project: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    link = tmp_path / "bandit.yaml"
    link.symlink_to(real)
    assert treelens(["suggest", str(project), "--engine", "bandit", "--no-model", "--out", str(link)]) == 0
    assert link.is_symlink() and real.read_text().strip()


def test_export_refuses_a_fifo_and_leaves_it(tmp_path: Path, database: Path, capsys) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    one_line_error(capsys, export(database, fifo), "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not list(tmp_path.glob(".partial-*"))


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_export_refuses_a_device_and_leaves_it(tmp_path: Path, database: Path, capsys) -> None:
    """As root, renaming over /dev/null replaced the system's null device with a regular
    file. The same device made in the test's folder (never the real /dev/null: a broken
    build must not break the machine it runs on)."""
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.stat(os.devnull).st_rdev)
    one_line_error(capsys, export(database, null), "not a regular file")
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert not list(tmp_path.glob(".partial-*"))


def test_export_onto_a_folder_is_one_line(tmp_path: Path, database: Path, capsys) -> None:
    folder = tmp_path / "folder"
    (folder / "inside").mkdir(parents=True)
    one_line_error(capsys, export(database, folder), "not a regular file")
    assert (folder / "inside").is_dir()


@pytest.mark.parametrize("where", ["missing/config.yaml", ".", "/dev/full"])
def test_suggest_out_to_a_bad_place_is_one_line(project: Path, tmp_path: Path, where: str, capsys) -> None:
    out = where if where.startswith("/") else str(tmp_path / where)
    rc = treelens(["suggest", str(project), "--engine", "bandit", "--no-model", "--out", out])
    one_line_error(capsys, rc, "--out")
    assert not list(tmp_path.glob(".partial-*"))


# --- JSON from outside: deep nesting is a named error ----------------------------------------


def test_deep_json_in_a_data_set_line(tmp_path: Path, capsys) -> None:
    data = tmp_path / "projects-deep.jsonl"
    data.write_text(DEEP_JSON + "\n")
    with pytest.raises(DatasetError, match=r"projects-deep\.jsonl:1: .*nested"):
        list(read_records(data))
    one_line_error(capsys, treelens_train(["data", "stats", "--data", str(data)]), "projects-deep.jsonl:1")


def test_deep_json_in_a_semgrep_index(project: Path, tmp_path: Path, capsys) -> None:
    index = tmp_path / "index.jsonl"
    index.write_text(json.dumps({"id": "a", "path": "python/a.yaml"}) + "\n" + DEEP_JSON + "\n")
    rc = treelens(["suggest", str(project), "--engine", "semgrep", "--no-model", "--catalog", str(index)])
    one_line_error(capsys, rc, "index.jsonl:2")


def test_deep_json_in_manifests_gives_no_names(project: Path, capsys) -> None:
    (project / "package.json").write_text(DEEP_JSON)
    (project / "composer.json").write_text('{"require": ' * 50_000)
    assert treelens(["inspect", str(project), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dependencies"] == {}


def test_an_over_long_data_set_line_is_refused(tmp_path: Path) -> None:
    """A line is read with a bound, not whole into memory: a sparse file of one line
    larger than the bound fails at once instead of filling the memory."""
    from treelens.model.guards import MAX_INPUT_BYTES

    data = tmp_path / "projects-huge.jsonl"
    with open(data, "wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 10)
    with pytest.raises(DatasetError, match=r"projects-huge\.jsonl:1: .*longer than"):
        list(read_records(data))


# --- catalogs: bounded walks ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ["semgrep", "codeql"])
def test_a_very_deep_rules_folder_is_one_line(project: Path, tmp_path: Path, engine: str, capsys) -> None:
    deep = tmp_path / "rules" / Path(*["d"] * 600)
    deep.mkdir(parents=True)
    (deep / "rule.yaml").write_text(RULE)
    with pytest.raises(CatalogError, match="deeper than"):
        load_catalog(engine, tmp_path / "rules")
    rc = treelens(
        ["suggest", str(project), "--engine", engine, "--no-model", "--catalog", str(tmp_path / "rules")]
    )
    one_line_error(capsys, rc, "deeper than")


def test_a_shallow_rules_folder_still_loads(tmp_path: Path) -> None:
    (tmp_path / "rules" / "python" / "flask").mkdir(parents=True)
    (tmp_path / "rules" / "python" / "flask" / "rule.yaml").write_text(RULE)
    (tmp_path / "rules" / ".hidden").mkdir()
    (tmp_path / "rules" / ".hidden" / "rule.yaml").write_text(RULE)
    catalog = load_catalog("semgrep", tmp_path / "rules")
    assert [q.id for q in catalog.queries] == ["python.flask.no-eval"]


# --- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1e400", "soon"])
@pytest.mark.parametrize("command", ["classify", "scan-compare"])
def test_timeouts_must_be_finite_and_positive(project: Path, value: str, command: str, capsys) -> None:
    args = (
        ["classify", "--git", "https://example.invalid/x.git"]
        if command == "classify"
        else ["scan-compare", str(project), "--catalog", str(project)]
    )
    with pytest.raises(SystemExit) as exit_:
        treelens([*args, f"--timeout={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --timeout" in err and "Traceback" not in err


# --- --tree-file: bounded, regular files and pipes only --------------------------------------


def test_tree_file_larger_than_the_limit_is_refused(tmp_path: Path, capsys) -> None:
    from treelens.model.guards import MAX_INPUT_BYTES

    listing = tmp_path / "listing.txt"
    with open(listing, "wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)  # sparse: costs no disk
    one_line_error(capsys, treelens(["classify", "--tree-file", str(listing)]), "larger than")


def test_tree_file_from_a_device_is_refused(capsys) -> None:
    one_line_error(capsys, treelens(["classify", "--tree-file", "/dev/zero"]), "/dev/zero", "device")


def test_tree_file_from_a_pipe_is_read(tmp_path: Path, capsys) -> None:
    """A fifo is read like stdin (process substitution, `--tree-file <(git ls-files)`,
    hands the command one)."""
    fifo = tmp_path / "listing"
    os.mkfifo(fifo)
    listing = "manage.py\nshop/views.py\nrequirements.txt\n"
    writer = subprocess.Popen(["sh", "-c", f'printf "{listing}" > "$0"', str(fifo)])  # as `<(...)` would
    try:
        assert treelens(["classify", "--tree-file", str(fifo), "--json"]) == 0
    finally:
        writer.wait(timeout=30)
    assert json.loads(capsys.readouterr().out)["source"] == str(fifo)


# --- --git: a time-out kills the whole process group ---------------------------------------


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that may never reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_timed_out_clone_leaves_no_transport_running(tmp_path: Path, monkeypatch) -> None:
    """git runs the transport (here ssh, from PATH) as a child; on time-out the transport and
    whatever it started must die with git."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "transport.pid"
    fake_ssh = bin_dir / "ssh"
    fake_ssh.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pid_file}\nwait\n")
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with (
        pytest.raises(CloneError, match="longer than"),
        shallow_clone("ssh://example.invalid/x.git", timeout=5),
    ):
        pass
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the transport's child survived the time-out"
