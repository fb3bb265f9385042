"""``python -m treelens.daemon --help`` and ``--check``: the real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.daemon_client import REPO
from tests.folders import write_files
from treelens.model.labels import LABELS


def _daemon(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "treelens.daemon", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )


def test_help_lists_the_options() -> None:
    done = _daemon("--help")
    assert done.returncode == 0
    for option in ("--check", "--log-level", "--model-path"):
        assert option in done.stdout


def test_check_classifies_the_current_folder(tmp_path: Path, tiny_bundle: Path) -> None:
    write_files(tmp_path, {"manage.py": "", "requirements.txt": "django\n", "blog/views.py": ""})
    done = _daemon("--check", "--json", "--model-path", str(tiny_bundle), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["folder"] == str(tmp_path.resolve()) and report["files"] == 3
    assert set(report["probabilities"]) == set(LABELS)
    assert "django" in report["technologies"]


def test_check_without_a_model_says_where_it_looked(tmp_path: Path) -> None:
    missing = tmp_path / "no-bundle"
    done = _daemon("--check", "--model-path", str(missing), cwd=tmp_path)
    assert done.returncode == 2
    assert str(missing) in done.stderr and "treelens-train all" in done.stderr
    assert done.stdout == ""


def test_check_of_a_missing_folder_fails_clearly(tmp_path: Path, tiny_bundle: Path) -> None:
    done = _daemon("--check", "--model-path", str(tiny_bundle), "--folder", str(tmp_path / "gone"))
    assert done.returncode == 1
    assert "no such folder" in done.stderr
