"""Random JSON thrown at every method of a running daemon: each request gets an answer
(a result or an error a person can act on, never an internal error) and the daemon keeps
serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.daemon_client import Daemon, start_daemon, uri
from tests.folders import write_files
from treelens.daemon.protocol import CLASSIFY, ERROR_CODES, REQUESTS
from treelens.daemon.settings import Settings
from treelens.model.labels import LABELS

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXPECTED_CODES = {types.ErrorCodes.InvalidParams, *ERROR_CODES.values()}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
# objects with the methods' own keys (and label names) make the checks past "is it an object" run
keys = st.sampled_from(["folder", "labels", "comment", "tree", "engine", "catalog", "manifests", *LABELS])
params = json_values | st.dictionaries(keys, json_values, max_size=6)


class Target:
    def __init__(self, daemon: Daemon, folder: Path, options: dict[str, Any]) -> None:
        self.daemon, self.folder, self.options = daemon, folder, options


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> AsyncIterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    write_files(root / "project", {"src/main.rs": "", "Cargo.toml": '[dependencies]\nserde = "1"\n'})
    options = {"modelPath": str(tiny_bundle), "feedbackDatabase": str(root / "feedback.sqlite3")}
    daemon = await start_daemon([root / "project"], options)
    yield Target(daemon, root / "project", options)
    await daemon.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(REQUESTS), given_params=params)
async def test_random_params_get_an_answer(target: Target, method: str, given_params: Any) -> None:
    try:
        await target.daemon.call(method, given_params)
    except JsonRpcException as error:
        assert error.code in EXPECTED_CODES, f"{method} {given_params!r}: {error.code} {error.message}"
        assert error.message


# paths are left out: random ones would make the daemon write feedback files all over the disk
setting_keys = st.sampled_from(
    [key for key in Settings.json_keys() if key not in ("modelPath", "feedbackDatabase")]
)


@settings(max_examples=8, deadline=None)
@given(raw=json_values | st.dictionaries(setting_keys, json_values, max_size=4))
async def test_random_settings_never_stop_the_daemon(target: Target, raw: Any) -> None:
    target.daemon.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=raw))
    target.daemon.settings({**target.options, **(raw if isinstance(raw, dict) else {})})
    try:
        await target.daemon.call(CLASSIFY, {})
    except JsonRpcException as error:
        assert error.code in EXPECTED_CODES, f"{raw!r}: {error.code} {error.message}"


async def test_still_serving_afterwards(target: Target) -> None:
    target.daemon.settings(target.options)
    result = await target.daemon.call(CLASSIFY, {"folder": uri(target.folder)})
    assert "rust" in result["languages"]
    assert target.daemon._server is not None and target.daemon._server.returncode is None
