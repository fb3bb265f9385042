"""The distribution as people get it: the sdist, the wheel built from it, and that wheel
installed with pip into a fresh virtual environment beside python-daemon (whose top-level
`daemon` package once shared a folder with ours).

The source is a copy of the working tree's files (tracked and untracked, ignores left out),
so the build never writes into the checkout. Installing the wheel fetches its requirements
from the package index, as `pip install treelens-*.whl` does for anyone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE_FILES = sorted(path.name for path in (REPO / "model" / "assets" / "default").iterdir())
PIP = ("-m", "pip", "--disable-pip-version-check", "--no-input")
# what pip and the daemon need; nothing that points back into the checkout or its .venv
CLEAN_ENV = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run(*args: str | Path, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Runs a command; its output is kept for the assertion messages."""
    return subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True, timeout=timeout
    )


def check(*args: str | Path, cwd: Path, timeout: int = 300) -> str:
    """Runs a command that must succeed; returns its stdout."""
    done = run(*args, cwd=cwd, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout


def copy_tree(target: Path) -> Path:
    """The files git would see (tracked and untracked, ignored ones left out) copied to `target`."""
    listed = check("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=REPO)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist built from a copy of the tree, and the wheel built from that sdist (as `python -m build`)."""
    root = tmp_path_factory.mktemp("packaging")
    source = copy_tree(root / "source")
    out = root / "dist"
    build_sdist = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    sdist = out / check(sys.executable, "-c", build_sdist, out, cwd=source).strip().splitlines()[-1]
    with tarfile.open(sdist) as archive:
        archive.extractall(root / "unpacked", filter="data")
    (unpacked,) = (root / "unpacked").iterdir()
    check(
        sys.executable,
        *PIP,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        out,
        unpacked,
        cwd=root,
    )
    (wheel,) = out.glob("treelens-*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def fresh_venv(dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment (the base interpreter, not .venv) with the wheel, then python-daemon."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    check(base, "-m", "venv", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    check(python, *PIP, "install", "-q", dists["wheel"], cwd=venv.parent, timeout=600)
    check(python, *PIP, "install", "-q", "python-daemon", cwd=venv.parent, timeout=600)
    return venv


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small real project folder to classify."""
    (tmp_path / "app" / "src").mkdir(parents=True)
    (tmp_path / "app" / "src" / "main.py").write_text("print('hello')\n")
    (tmp_path / "app" / "requirements.txt").write_text("flask\n")
    return tmp_path / "app"


def test_the_wheel_installs_only_the_treelens_package(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = wheel.namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"treelens", dists["wheel"].name.split("-py3")[0] + ".dist-info"}, top
    packages = {name.rsplit("/", 1)[0] for name in names if name.endswith("/__init__.py")}
    assert packages >= {"treelens/daemon", "treelens/model", "treelens/model/querysets", "treelens/training"}
    for file in BUNDLE_FILES:
        assert f"treelens/model/assets/default/{file}" in names
    # `data build`'s default annotations and the batches after it: the shipped bundle trained on all
    for batch in ("", "-2", "-3", "-4"):
        assert f"treelens/training/annotations{batch}.jsonl" in names


def test_the_sdist_carries_the_model_bundle(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"model/assets/default/{file}" for file in BUNDLE_FILES} <= names
    assert {"pyproject.toml", "daemon/__main__.py", "model/querysets/policy.yaml"} <= names


def test_treelens_and_python_daemon_live_side_by_side(fresh_venv: Path, project: Path) -> None:
    python = fresh_venv / "bin" / "python"
    where = (
        "import json, daemon, treelens.daemon.server; "
        "print(json.dumps([daemon.__file__, treelens.daemon.server.__file__, daemon.DaemonContext.__name__]))"
    )
    theirs, ours, context = json.loads(check(python, "-P", "-c", where, cwd=project))
    site = fresh_venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert Path(theirs) == site / "daemon" / "__init__.py"
    assert Path(ours) == site / "treelens" / "daemon" / "server.py"
    assert context == "DaemonContext"
    assert not (site / "daemon" / "server.py").exists(), "python-daemon's folder holds nothing of ours"

    health = check(python, "-P", "-m", "treelens.daemon", "--check", "--device", "cpu", cwd=project)
    assert "treelens daemon OK" in health, health
    result = json.loads(check(fresh_venv / "bin" / "treelens", "classify", project, "--json", cwd=project))
    assert "labels" in result and result["languages"] == ["python"], result

    check(python, *PIP, "uninstall", "-y", "-q", "python-daemon", cwd=project)
    assert "treelens daemon OK" in check(python, "-P", "-m", "treelens.daemon", "--check", cwd=project)


def test_treelens_train_without_the_training_extra_says_what_to_install(
    fresh_venv: Path, tmp_path: Path
) -> None:
    train = fresh_venv / "bin" / "treelens-train"
    assert "tokenizer" in check(train, "--help", cwd=tmp_path)
    done = run(train, "tokenizer", "--data", tmp_path / "none.jsonl", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "pip install 'treelens[train]'" in done.stderr


def test_treelens_train_stages_import_from_the_installed_package(tmp_path: Path) -> None:
    """Run from outside the checkout (nothing bare like `training` on sys.path): a stage's module loads and
    its own error comes back as one line."""
    train = Path(sys.executable).parent / "treelens-train"
    done = run(
        train, "tokenizer", "--data", tmp_path / "none.jsonl", "--output-dir", tmp_path / "out", cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip() == f"treelens-train: {tmp_path / 'none.jsonl'}: no such data file"


def test_the_editable_install_resolves_the_treelens_names(tmp_path: Path) -> None:
    where = (
        "import importlib.util as u, json; "
        "print(json.dumps([u.find_spec(n) and u.find_spec(n).origin for n in "
        "('treelens.daemon', 'treelens.model', 'treelens.training', 'daemon', 'model', 'training')]))"
    )
    origins = json.loads(check(sys.executable, "-P", "-c", where, cwd=tmp_path))
    assert origins[:3] == [str(REPO / folder / "__init__.py") for folder in ("daemon", "model", "training")]
    assert origins[3:] == [None, None, None], "no bare top-level names"
