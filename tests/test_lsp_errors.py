"""Every way a request can go wrong answers an LSP error a person can act on, and the
daemon keeps serving: malformed params, unknown or deleted folders, missing or
tampered model bundles, a corrupt feedback database."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.daemon_client import Daemon, start_daemon, uri
from tests.folders import write_files
from tests.shared_data import DATA_DIR
from treelens.daemon.protocol import (
    CLASSIFY,
    CLASSIFY_TREE,
    FEEDBACK_UNAVAILABLE,
    FOLDER_UNAVAILABLE,
    MODEL_UNAVAILABLE,
    QUERY_SETS_UNAVAILABLE,
    SUBMIT_FEEDBACK,
    SUGGEST_QUERY_SET,
    TOKENIZE,
)
from treelens.model.labels import LABELS

pytestmark = pytest.mark.asyncio(loop_scope="module")

INVALID_PARAMS = types.ErrorCodes.InvalidParams
PERSON = dict.fromkeys(LABELS, 0)
FILES = {"main.go": "", "go.mod": "module example.com/x\n"}


class Setup:
    def __init__(self, daemon: Daemon, root: Path, one: Path, two: Path, options: dict[str, Any]) -> None:
        self.daemon, self.root, self.one, self.two, self.options = daemon, root, one, two, options


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> AsyncIterator[Setup]:
    root = tmp_path_factory.mktemp("errors")
    one, two = root / "one", root / "two"
    write_files(one, FILES)
    write_files(two, FILES)
    options = {"modelPath": str(tiny_bundle), "feedbackDatabase": str(root / "feedback.sqlite3")}
    daemon = await start_daemon([one, two], options)
    yield Setup(daemon, root, one, two, options)
    await daemon.close()


async def _error(daemon: Daemon, method: str, params: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as caught:
        await daemon.call(method, params)
    return caught.value


async def _serving(daemon: Daemon) -> None:
    """The daemon still answers a plain request."""
    assert (await daemon.call(CLASSIFY, {}))["labels"] is not None


MALFORMED = [
    (CLASSIFY, [1, 2], "params must be a JSON object"),
    (CLASSIFY, {"folder": 3}, "'folder'"),
    (CLASSIFY, {"folder": "file:///no/such/folder"}, "unknown workspace folder"),
    (CLASSIFY_TREE, {}, "'tree'"),
    (CLASSIFY_TREE, {"tree": 12}, "'tree'"),
    (CLASSIFY_TREE, {"tree": "\n\n"}, "no file paths"),
    (CLASSIFY_TREE, {"tree": {"files": [["a", "big", "file"]]}}, "files[0]"),
    (TOKENIZE, "text", "params must be a JSON object"),
    (SUBMIT_FEEDBACK, {}, "'labels'"),
    (SUBMIT_FEEDBACK, {"labels": {"backend": 1}}, "missing"),
    (SUBMIT_FEEDBACK, {"labels": {**PERSON, "web": 1}}, "unknown label"),
    (SUBMIT_FEEDBACK, {"labels": {**PERSON, "cli": 2}}, "0 or 1"),
    (SUBMIT_FEEDBACK, {"labels": PERSON, "comment": ["x"]}, "'comment'"),
    (SUGGEST_QUERY_SET, {"engine": "sonar"}, "'engine'"),
    (SUGGEST_QUERY_SET, {"engine": "semgrep", "catalog": "relative/path"}, "'catalog'"),
]


@pytest.mark.parametrize(("method", "params", "says"), MALFORMED)
async def test_malformed_params_answer_invalid_params(
    setup: Setup, method: str, params: Any, says: str
) -> None:
    error = await _error(setup.daemon, method, params)
    assert error.code == INVALID_PARAMS
    assert says in error.message
    await _serving(setup.daemon)


async def test_missing_bundle_is_a_clear_error_and_the_rest_keeps_working(
    setup: Setup, tmp_path: Path
) -> None:
    missing = tmp_path / "no-bundle-here"
    setup.daemon.settings({**setup.options, "modelPath": str(missing)})
    for method, params in [(CLASSIFY, {}), (CLASSIFY_TREE, {"tree": "a.py"}), (TOKENIZE, {})]:
        error = await _error(setup.daemon, method, params)
        assert error.code == MODEL_UNAVAILABLE
        assert str(missing) in error.message
        assert "treelens-train all" in error.message and "modelPath" in error.message
    stored = await setup.daemon.call(SUBMIT_FEEDBACK, {"labels": PERSON})  # no model needed
    assert stored["stored"] is True
    setup.daemon.settings(setup.options)
    await _serving(setup.daemon)


async def test_tampered_bundle_is_refused_until_fixed(
    setup: Setup, tiny_bundle: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, tampered)
    graph = next(tampered.glob("*.onnx"))
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    setup.daemon.settings({**setup.options, "modelPath": str(tampered)})
    error = await _error(setup.daemon, CLASSIFY, {})
    assert error.code == MODEL_UNAVAILABLE
    assert "sha256" in error.message and graph.name in error.message
    setup.daemon.settings(setup.options)
    await _serving(setup.daemon)


async def test_corrupt_feedback_database_is_reported_and_left_alone(setup: Setup, tmp_path: Path) -> None:
    corrupt = tmp_path / "feedback.sqlite3"
    garbage = b"this is not an SQLite database " * 100
    corrupt.write_bytes(garbage)
    setup.daemon.settings({**setup.options, "feedbackDatabase": str(corrupt)})
    error = await _error(setup.daemon, SUBMIT_FEEDBACK, {"labels": PERSON})
    assert error.code == FEEDBACK_UNAVAILABLE
    assert str(corrupt) in error.message and "move it aside" in error.message
    assert corrupt.read_bytes() == garbage  # never deleted or rewritten
    await _serving(setup.daemon)
    setup.daemon.settings(setup.options)
    assert (await setup.daemon.call(SUBMIT_FEEDBACK, {"labels": PERSON}))["stored"] is True


async def test_deleted_workspace_folder_errors_until_it_is_back(setup: Setup) -> None:
    shutil.rmtree(setup.two)
    for method in (CLASSIFY, TOKENIZE):
        error = await _error(setup.daemon, method, {"folder": uri(setup.two)})
        assert error.code == FOLDER_UNAVAILABLE
        assert "no such folder" in error.message
    assert (await setup.daemon.call(CLASSIFY, {"folder": uri(setup.one)}))["folder"] == uri(setup.one)
    write_files(setup.two, {"app.py": ""})
    back = await setup.daemon.call(CLASSIFY, {"folder": uri(setup.two)})
    assert back["languages"] == ["python"]


async def test_query_set_without_a_catalog_says_what_is_missing(setup: Setup) -> None:
    error = await _error(setup.daemon, SUGGEST_QUERY_SET, {"engine": "codeql"})
    assert error.code == QUERY_SETS_UNAVAILABLE and "codeql" in error.message
    missing = setup.root / "no-rules"
    error = await _error(setup.daemon, SUGGEST_QUERY_SET, {"engine": "semgrep", "catalog": str(missing)})
    assert error.code == QUERY_SETS_UNAVAILABLE and str(missing) in error.message


async def test_daemon_started_without_a_bundle_serves_the_rest(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_files(project, FILES)
    missing = tmp_path / "nowhere"
    options = {"modelPath": str(missing), "feedbackDatabase": str(tmp_path / "f.sqlite3")}
    daemon = await start_daemon([project], options, progress=False)
    try:
        error = await _error(daemon, CLASSIFY, {})
        assert error.code == MODEL_UNAVAILABLE and str(missing) in error.message
        assert (await daemon.call(SUBMIT_FEEDBACK, {"labels": PERSON})) == {"id": 1, "stored": True}
        if (DATA_DIR / "semgrep-rules-index.jsonl").is_file():  # languages and technologies alone
            suggested = await daemon.call(SUGGEST_QUERY_SET, {"engine": "semgrep"})
            assert suggested["basis"] == "languages and technologies" and suggested["selected"]
    finally:
        await daemon.close()
