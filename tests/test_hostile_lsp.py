"""Hostile LSP input: the daemon never goes deaf, never dies, never leaves a client hanging.

Broken frames on stdin (bad or missing headers, bodies that are not JSON, absurd lengths)
get a JSON-RPC error and the reader finds the next frame; the life cycle (requests before
``initialize``, a malformed ``initialize``, requests after ``shutdown``) is answered as the
LSP specification says; client-sent trees are cut like the scanner's; a settings change for
another extension leaves Treelens' settings alone.

Framing tests write raw bytes to ``python -m treelens.daemon`` and read framed answers with a
time-out, so a deaf daemon fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types

from tests.daemon_client import REPO, TIMEOUT_S, start_daemon, uri
from tests.folders import write_files
from treelens.daemon.framing import MAX_FRAME_BYTES, FrameReader, dispatch
from treelens.daemon.handlers import build_server
from treelens.daemon.params import MAX_PATH_CHARS, MAX_TREE_PATHS
from treelens.daemon.protocol import CLASSIFY, CLASSIFY_TREE, PING, SUBMIT_FEEDBACK, SUGGEST_QUERY_SET
from treelens.model.labels import LABELS
from treelens.model.manifests import MAX_MANIFEST_BYTES

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002
FRAME_ERRORS = (PARSE_ERROR, INVALID_REQUEST)


def frame(body: bytes, header: bytes = b"Content-Length", eol: bytes = b"\r\n") -> bytes:
    """One LSP frame (a header spelling and line ending of the test's choosing)."""
    return header + b": " + str(len(body)).encode() + eol + eol + body


def message(msg_id: int | None, method: str, params: Any = None) -> bytes:
    data: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if msg_id is not None:
        data["id"] = msg_id
    if params is not None:
        data["params"] = params
    return json.dumps(data).encode()


class RawDaemon:
    """``python -m treelens.daemon`` driven with raw bytes; its answers are read on a thread."""

    def __init__(self, log_path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "treelens.daemon", "--log-level", "info"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=REPO,
            env=env,
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []  # every message read, in order
        self._ids = iter(range(1, 1_000_000))
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[bytes]) -> None:
        while True:
            length = None
            while (line := stdout.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if not line or length is None:
                self._answers.put(None)
                return
            self._answers.put(json.loads(stdout.read(length)))

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def request(self, method: str, params: Any = None, **framing: bytes) -> int:
        msg_id = next(self._ids)
        self.send(frame(message(msg_id, method, params), **framing))
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send(frame(message(None, method, params)))

    def answer(self, msg_id: int, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The answer to request ``msg_id``; fails when none comes (a deaf or dead daemon)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no answer to request {msg_id} within {timeout} s: the daemon is deaf")
            if got is None:
                pytest.fail(f"the daemon closed its output (exit code {self.process.wait(5)})\n{self.log()}")
            self.seen.append(got)
            if got.get("id") == msg_id and "method" not in got:
                return got

    def call(self, method: str, params: Any = None, **framing: bytes) -> dict[str, Any]:
        return self.answer(self.request(method, params, **framing))

    def initialize(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        init = {"processId": None, "rootUri": None, "capabilities": {}}
        answer = self.call("initialize", {**init, "initializationOptions": {"treelens": options or {}}})
        self.notify("initialized", {})
        return answer

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send(frame(message(None, "exit")))
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[RawDaemon]:
    daemon = RawDaemon(tmp_path / "daemon.log")
    yield daemon
    daemon.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawDaemon]:
    """One initialized daemon (no folder, no model) for the framing tests: a bad frame that
    broke the stream would fail every test after it."""
    daemon = RawDaemon(tmp_path_factory.mktemp("frames") / "daemon.log")
    daemon.initialize()
    yield daemon
    daemon.close()


def _assert_serving(daemon: RawDaemon) -> None:
    """A plain request still gets its answer (no folder open: InvalidParams)."""
    assert daemon.call(CLASSIFY, {})["error"]["code"] == INVALID_PARAMS
    assert daemon.process.poll() is None


# --- framing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "framing",
    [
        {"header": b"content-length"},
        {"header": b"CONTENT-LENGTH"},
        {"eol": b"\n"},
        {"header": b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length"},
    ],
    ids=["lower-case", "upper-case", "LF-only", "Content-Type-first"],
)
def test_header_spellings_are_read(shared: RawDaemon, framing: dict[str, bytes]) -> None:
    assert shared.call(CLASSIFY, {}, **framing)["error"]["code"] == INVALID_PARAMS


GOOD = message(99, CLASSIFY, {})
BAD_FRAMES = {
    "no Content-Length": b"Content-Type: application/json\r\n\r\n" + GOOD,
    "Content-Length too short": b"Content-Length: 10\r\n\r\n" + GOOD,
    "Content-Length not a number": b"Content-Length: ten\r\n\r\n" + GOOD,
    "negative Content-Length": b"Content-Length: -5\r\n\r\n" + GOOD,
    "Content-Length of 5000 digits": b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n",
    "a line that is no header": b"hello daemon\r\n\r\n",
    "junk glued to the next header": b"hello daemon",
    "body not JSON": frame(b"{not json"),
    "body not UTF-8": frame(b'{"jsonrpc": "2.0", "method": "\xff\xfe"}'),
    "JSON nested 100,000 deep": frame(b"[" * 100_000),
    "JSON not an object": frame(b"[1, 2]"),
    "no jsonrpc member": frame(b'{"id": 5, "method": "treelens/classify"}'),
    "empty body": frame(b""),
}


@pytest.mark.parametrize("bad", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_a_bad_frame_is_answered_and_the_next_request_is_read(shared: RawDaemon, bad: bytes) -> None:
    before = len(shared.seen)
    shared.send(bad)
    _assert_serving(shared)
    errors = [m["error"]["code"] for m in shared.seen[before:] if "error" in m and m.get("id") in (None, 5)]
    assert set(errors) & set(FRAME_ERRORS), shared.seen[before:]


def test_an_absurd_content_length_is_refused_without_allocating_it(shared: RawDaemon) -> None:
    before = len(shared.seen)
    shared.send(b"Content-Length: 99999999999999\r\n\r\n" + b'{"jsonrpc": "2.0"}')
    _assert_serving(shared)
    (error,) = [m["error"] for m in shared.seen[before:] if m.get("id") is None]
    assert error["code"] == PARSE_ERROR and str(MAX_FRAME_BYTES) in error["message"]
    shared.send(f"Content-Length: {MAX_FRAME_BYTES + 1}\r\n\r\n".encode())
    _assert_serving(shared)


# random bytes and broken frames; a declared length never exceeds the bytes that follow, or
# the frame would rightly swallow the good request after it
eols = st.sampled_from([b"\r\n", b"\n"])
header_names = st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-length", b"Content-Type"])


@st.composite
def broken_frames(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(max_size=60) | st.just(GOOD) | st.just(b"[" * 5000))
    length = draw(st.integers(0, len(body)) | st.sampled_from([MAX_FRAME_BYTES + 1, 10**30]))
    declared = draw(st.sampled_from([str(length).encode(), b"-1", b"x", b""]))
    eol = draw(eols)
    if length > len(body):
        body = b""  # an absurd length: refused, the reader resynchronises on the next header
    return draw(header_names) + b":" + declared + eol + eol + body


garbage = st.lists(st.binary(max_size=80) | broken_frames(), min_size=1, max_size=3).map(b"".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=garbage)
def test_random_bytes_between_requests_never_lose_a_good_request(shared: RawDaemon, junk: bytes) -> None:
    shared.send(junk)
    answer = shared.call(CLASSIFY, {})
    assert answer["error"]["code"] == INVALID_PARAMS, (junk, answer)
    assert shared.process.poll() is None


@settings(max_examples=300, deadline=None)
@given(junks=st.lists(garbage, min_size=1, max_size=4), read_size=st.integers(1, 70))
def test_the_reader_finds_every_good_frame_after_junk(junks: list[bytes], read_size: int) -> None:
    """The reader alone, with many more cases than a daemon round trip allows, and input
    arriving in pieces of any size."""
    goods = [message(1000 + i, CLASSIFY, {}) for i in range(len(junks))]
    stream = io.BytesIO(b"".join(junk + frame(good) for junk, good in zip(junks, goods, strict=True)))
    bodies = iter([c.body for c in FrameReader(lambda n: stream.read(min(n, read_size))).chunks()])
    assert all(good in bodies for good in goods)  # each in order, junk frames between


# --- life cycle ----------------------------------------------------------------------------


def test_a_request_before_initialize_is_refused_and_the_daemon_works_after(
    raw: RawDaemon, tiny_bundle: Path
) -> None:
    early = raw.call(CLASSIFY_TREE, {"tree": "main.py\n"})
    assert early["error"]["code"] == SERVER_NOT_INITIALIZED and "initialize" in early["error"]["message"]
    raw.notify("workspace/didChangeConfiguration", {"settings": {"treelens": {"device": "gpu"}}})
    assert "result" in raw.initialize({"modelPath": str(tiny_bundle)})
    result = raw.call(CLASSIFY_TREE, {"tree": "main.py\nlib/util.py\n"})
    assert "python" in result["result"]["languages"], result
    again = raw.call("initialize", {"processId": None, "capabilities": {}})
    assert again["error"]["code"] == INVALID_REQUEST


@pytest.mark.parametrize(
    "params",
    [
        {"processId": "not a number", "capabilities": 3},
        [1, 2],
        None,
        {"processId": None},
        {"capabilities": {}, "workspaceFolders": [{"uri": 3}]},
    ],
    ids=["wrong types", "a list", "no params", "no capabilities", "a folder without a name"],
)
def test_a_malformed_initialize_is_answered_and_the_daemon_keeps_serving(raw: RawDaemon, params: Any) -> None:
    bad = raw.call("initialize", params)
    assert bad["error"]["code"] == INVALID_PARAMS and bad["error"]["message"], bad
    assert "result" in raw.initialize()
    _assert_serving(raw)


def test_requests_after_shutdown_are_refused_and_exit_ends_the_daemon(raw: RawDaemon) -> None:
    raw.initialize()
    assert raw.call("shutdown")["result"] is None
    late = raw.call(CLASSIFY, {})
    assert late["error"]["code"] == INVALID_REQUEST and "exit" in late["error"]["message"]
    raw.notify("exit")
    assert raw.process.wait(TIMEOUT_S) == 0


def test_finished_notification_handlers_are_not_kept() -> None:
    """pygls kept a Task and a Future for every notification handled (every settings change,
    i.e. every model reload) for the daemon's whole life."""
    server = build_server()
    server.protocol.set_writer(io.BytesIO())  # the answers are not read here

    async def notify_many() -> int:
        dispatch(server.protocol, message(1, "initialize", {"processId": None, "capabilities": {}}))
        for _ in range(20):
            dispatch(
                server.protocol, message(None, "workspace/didChangeConfiguration", {"settings": {"x": {}}})
            )
        await asyncio.sleep(0.5)
        return len(server.protocol._request_futures)

    assert asyncio.run(notify_many()) == 0


def test_the_extensions_liveness_probe_is_answered_in_every_state(raw: RawDaemon) -> None:
    """extension/src/common/liveness.ts asks treelens/ping; any answer proves the daemon
    reads and answers."""
    assert raw.call(PING, {})["error"]["code"] == SERVER_NOT_INITIALIZED
    raw.initialize()
    assert raw.call(PING, {})["result"] == {}
    raw.call("shutdown")
    assert raw.call(PING, {})["error"]["code"] == INVALID_REQUEST


# --- client-sent trees ---------------------------------------------------------------------


@pytest.fixture
def modelled(raw: RawDaemon, tiny_bundle: Path) -> RawDaemon:
    raw.initialize({"modelPath": str(tiny_bundle)})
    return raw


def _technologies(daemon: RawDaemon, tree: Any, manifests: dict[str, str] | None = None) -> list[str]:
    params = {"tree": tree} if manifests is None else {"tree": tree, "manifests": manifests}
    answer = daemon.call(CLASSIFY_TREE, params)
    assert "result" in answer, answer
    return answer["result"]["technologies"]


def test_client_manifests_are_cut_like_the_scanners(modelled: RawDaemon) -> None:
    padding = " " * MAX_MANIFEST_BYTES
    late = '{"description": "x",' + padding + '"dependencies": {"react": "18"}}'
    assert _technologies(modelled, ["package.json", "a.js"], {"package.json": late}) == []
    files = [["package.json", 10, "file"], ["a.js", 1, "file"]]
    record = {"files": files, "manifests": {"package.json": late}}
    assert _technologies(modelled, record) == []
    early = '{"dependencies": {"react": "18"}}' + padding
    assert _technologies(modelled, ["package.json", "a.js"], {"package.json": early}) == ["react"]


def test_a_huge_client_manifest_is_answered_quickly(modelled: RawDaemon) -> None:
    huge = '{"dependencies": {' + ", ".join(f'"p{i}": "1"' for i in range(1_000_000)) + "}}"
    answer = modelled.call(CLASSIFY_TREE, {"tree": ["package.json"], "manifests": {"package.json": huge}})
    assert "result" in answer, answer


def test_only_the_scanners_manifests_are_read(modelled: RawDaemon) -> None:
    paths = [f"m{i:03}/package.json" for i in range(100)]
    manifests = dict.fromkeys(paths, '{"dependencies": {"express": "4"}}')
    manifests["m099/package.json"] = '{"dependencies": {"react": "18"}}'  # past the 40 read
    manifests["notes.txt"] = '{"dependencies": {"react": "18"}}'  # no manifest
    assert _technologies(modelled, [*paths, "notes.txt"], manifests) == ["express"]


@pytest.mark.parametrize(
    ("tree", "wanted"),
    [
        (["a/" * (MAX_PATH_CHARS // 2) + "x.py"], "characters"),
        ({"files": [["a" * (MAX_PATH_CHARS + 1), 1, "file"]]}, "characters"),
        ({"files": [[f"f{i}.py", 1, "file"] for i in range(MAX_TREE_PATHS + 1)]}, "paths"),
    ],
    ids=["long path", "long path in a record", "too many paths in a record"],
)
def test_client_tree_limits_answer_invalid_params(modelled: RawDaemon, tree: Any, wanted: str) -> None:
    error = modelled.call(CLASSIFY_TREE, {"tree": tree})["error"]
    assert error["code"] == INVALID_PARAMS and wanted in error["message"], error


@pytest.mark.parametrize(
    ("method", "params"),
    [
        (CLASSIFY, {"folder": "file:///" + "a" * 3 * MAX_PATH_CHARS}),
        (SUGGEST_QUERY_SET, {"engine": "semgrep", "catalog": "/" + "a" * MAX_PATH_CHARS}),
    ],
    ids=["folder URI", "catalog path"],
)
def test_overlong_paths_in_params_answer_invalid_params(shared: RawDaemon, method: str, params: Any) -> None:
    error = shared.call(method, params)["error"]
    assert error["code"] == INVALID_PARAMS and "characters" in error["message"], error


# --- settings ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_change_without_treelens_settings_leaves_them_alone(
    tmp_path: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "default-data"))  # where defaults would go
    database = tmp_path / "feedback.sqlite3"
    write_files(tmp_path / "project", {"main.go": "", "go.mod": "module x\n"})
    options = {"modelPath": str(tiny_bundle), "feedbackDatabase": str(database)}
    daemon = await start_daemon([tmp_path / "project"], options)
    try:
        for foreign in ({"python": {"analysis": {"typeCheckingMode": "strict"}}}, None, []):
            daemon.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=foreign))
        await asyncio.sleep(0.5)  # the changes are handled before the request that follows
        labels = dict.fromkeys(LABELS, 0)
        answer = await daemon.call(SUBMIT_FEEDBACK, {"folder": uri(tmp_path / "project"), "labels": labels})
        assert answer["stored"] is True
    finally:
        await daemon.close()
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone() == (1,)
    assert not (tmp_path / "default-data").exists()
