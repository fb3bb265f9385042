"""Expected failures (TreelensError) are one line for a person; a bug is never passed off
as one: the command lines show its traceback, the daemon logs it with its traceback,
answers InternalError and keeps serving.

A bug is made by fault injection: one function of the real program is replaced by one
that raises, as a bug would (a ValueError, like a numpy shape error, is what the command
lines used to swallow). Everything else is the real program.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.daemon_client import Daemon, start_daemon
from tests.folders import write_files
from treelens.daemon.cli import main as treelens
from treelens.daemon.protocol import CLASSIFY, SUBMIT_FEEDBACK, TOKENIZE
from treelens.model.filters import PathFilter
from treelens.model.labels import LABELS
from treelens.training import data as training_data
from treelens.training.cli import main as treelens_train

FILES = {"main.go": "", "go.mod": "module example.com/x\n"}
INTERNAL_ERROR = types.ErrorCodes.InternalError


def _injected_bug(*_args: object, **_kwargs: object) -> None:
    raise ValueError("injected bug")


# --- the command lines ---------------------------------------------------------------------


def test_treelens_shows_a_bug_with_its_traceback(tmp_path: Path, monkeypatch) -> None:
    write_files(tmp_path, FILES)
    monkeypatch.setattr(PathFilter, "signal_paths", _injected_bug)
    with pytest.raises(ValueError, match="injected bug"):  # not `treelens: injected bug`, exit 1
        treelens(["tree", str(tmp_path), "--no-git"])


def test_treelens_bad_values_stay_one_line(tmp_path: Path, capsys) -> None:
    write_files(tmp_path, FILES)
    assert treelens(["tree", str(tmp_path), "--no-git", "--max-tokens", "3"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("treelens: max_tokens must be at least") and err.count("\n") == 1, err


def test_treelens_train_shows_a_bug_with_its_traceback(tiny_data: Path, monkeypatch) -> None:
    monkeypatch.setattr(training_data, "data_stats", _injected_bug)
    with pytest.raises(ValueError, match="injected bug"):
        treelens_train(["data", "stats", "--data", str(tiny_data)])


def test_treelens_train_bad_values_stay_one_line(tmp_path: Path, capsys) -> None:
    args = ["crossval", "--skip-model", "--folds", "1", "--output-dir", str(tmp_path / "o")]
    assert treelens_train(args) == 1
    err = capsys.readouterr().err
    assert "--folds must be at least 2" in err and err.count("\n") == 1 and "Traceback" not in err, err


# --- the health check ----------------------------------------------------------------------

LOAD_BUG = """
from treelens.model import runtime
def _load(*args, **kwargs):
    raise KeyError("injected model bug")
runtime.Classifier.load = _load
"""


def test_check_loads_no_lsp_stack() -> None:
    """``--check`` must work (and answer fast) without the language server's packages."""
    probe = (
        "import sys, treelens.daemon.check\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol', 'watchdog')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_check_shows_a_bug_with_its_traceback(tmp_path: Path) -> None:
    write_files(tmp_path, FILES)
    run = "from treelens.daemon.__main__ import main\nsys.exit(main(['--check', '--folder', sys.argv[1]]))\n"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{LOAD_BUG}\n{run}", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "injected model bug" in done.stderr
    assert "no usable model" not in done.stderr  # a bug is not a missing model


# --- the daemon ----------------------------------------------------------------------------

SCAN_BUG = """
from treelens.daemon import folder_tree
_rescan = folder_tree.FolderTree.rescan
def _buggy_rescan(self, *args, **kwargs):
    if self.root.name == "scan-bug":
        raise RuntimeError("injected scan bug")
    return _rescan(self, *args, **kwargs)
folder_tree.FolderTree.rescan = _buggy_rescan
"""


async def _internal_error(daemon: Daemon, method: str, params: dict, says: str) -> None:
    with pytest.raises(JsonRpcException) as caught:
        await daemon.call(method, params)
    assert caught.value.code == INTERNAL_ERROR, caught.value
    assert says in caught.value.message and "Treelens bug" in caught.value.message


@pytest.mark.asyncio
async def test_daemon_answers_internal_error_for_bugs_and_keeps_serving(tmp_path: Path) -> None:
    good, broken = tmp_path / "good", tmp_path / "scan-bug"
    write_files(good, FILES)
    write_files(broken, FILES)
    options = {"feedbackDatabase": str(tmp_path / "feedback.sqlite3")}
    daemon = await start_daemon([good, broken], options, prelude=LOAD_BUG + SCAN_BUG)
    try:
        # a bug while loading the model: not "no usable model, build one", but a bug
        await _internal_error(daemon, CLASSIFY, {}, "injected model bug")
        # a bug while scanning a folder: not "folder unavailable", but a bug
        await _internal_error(daemon, TOKENIZE, {"folder": broken.as_uri()}, "injected scan bug")
        # what needs neither still works: the person's feedback is stored
        stored = await daemon.call(SUBMIT_FEEDBACK, {"labels": dict.fromkeys(LABELS, 0)})
        assert stored["stored"] is True
        await _internal_error(daemon, CLASSIFY, {}, "injected model bug")  # still answering
        log = "\n".join(daemon.log)
        assert log.count("Traceback") >= 2 and "KeyError: 'injected model bug'" in log
        assert "RuntimeError: injected scan bug" in log
    finally:
        await daemon.close()
