"""Driving the real daemon (``python -m treelens.daemon``) over stdio in tests.

pytest-lsp's client (pygls underneath) with the daemon's JSON converter, so custom
results arrive as plain JSON, plus what the daemon tests need: the labelsChanged
notifications in a queue, the daemon's stderr log kept for assertions, and kill -9.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import BaseLanguageClient
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient
from pytest_lsp.client import register_lsp_features

from treelens.daemon.protocol import LABELS_CHANGED, json_converter

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 30.0
"""Generous: two cores shared with other test runs and a training job."""


def uri(path: Path) -> str:
    return from_fs_path(str(path)) or ""


class Daemon(LanguageClient):
    """A client connected to one daemon process."""

    def __init__(self) -> None:
        super().__init__(converter_factory=json_converter)
        register_lsp_features(self)
        self.labels: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.log: list[str] = []  # the daemon's stderr lines
        self._reader: asyncio.Task[None] | None = None

        @self.feature(LABELS_CHANGED)
        def on_labels(params: dict[str, Any]) -> None:
            self.labels.put_nowait(params)

    async def launch(self, *args: str, cwd: Path | None = None, prelude: str | None = None) -> None:
        """Start ``python -m treelens.daemon`` (debug log on stderr, kept in ``log``).

        ``prelude``: Python run in the daemon's process before it starts, to inject a fault
        (a bug) into one function and see how the daemon reports it."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        argv = ["--log-level", "debug", *args]
        if prelude is None:
            command = ["-m", "treelens.daemon", *argv]
        else:
            main = f"from treelens.daemon.__main__ import main\nsys.exit(main({argv!r}))\n"
            command = ["-c", f"import sys\n{prelude}\n{main}"]
        await BaseLanguageClient.start_io(self, sys.executable, *command, cwd=str(cwd or REPO), env=env)
        self._reader = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        process = self._server
        if process is None or process.stderr is None:
            return
        while line := await process.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            self.log.append(text)
            sys.stderr.write(text + "\n")  # shown by pytest when a test fails

    async def open(
        self,
        folders: list[Path],
        options: dict[str, Any] | None = None,
        *,
        progress: bool = True,
    ) -> types.InitializeResult:
        """initialize + initialized with these workspace folders and settings."""
        capabilities = types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=progress),
            workspace=types.WorkspaceClientCapabilities(configuration=True, workspace_folders=True),
        )
        return await self.initialize_session(
            types.InitializeParams(
                capabilities=capabilities,
                workspace_folders=[types.WorkspaceFolder(uri(f), f.name) for f in folders],
                initialization_options={"treelens": options or {}},
            )
        )

    async def call(self, method: str, params: Any = None, timeout: float = TIMEOUT_S) -> Any:
        """A request; an error answer raises pygls' JsonRpcException (with .code)."""
        return await asyncio.wait_for(self.protocol.send_request_async(method, params), timeout)

    async def next_labels(self, folder: Path | None = None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next labelsChanged (for ``folder`` when given; others are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                params = await self.labels.get()
                if folder is None or params["folder"] == uri(folder):
                    return params

    def settings(self, options: dict[str, Any]) -> None:
        change = types.DidChangeConfigurationParams(settings={"treelens": options})
        self.workspace_did_change_configuration(change)

    async def kill(self) -> None:
        """kill -9: no shutdown, no flush, no cleanup."""
        if self._server is not None and self._server.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._server.kill()
            await self._server.wait()

    async def close(self) -> None:
        """shutdown + exit when the daemon lives, then stop the client."""
        if self._server is not None and self._server.returncode is None:
            try:
                await asyncio.wait_for(self.shutdown_session(), TIMEOUT_S)
            except Exception:
                await self.kill()
        if self._server is not None:
            await self._server.wait()
        await self.stop()
        if self._reader:
            self._reader.cancel()


async def start_daemon(
    folders: list[Path],
    options: dict[str, Any] | None = None,
    *,
    progress: bool = True,
    prelude: str | None = None,
) -> Daemon:
    daemon = Daemon()
    await daemon.launch(prelude=prelude)
    await daemon.open(folders, options, progress=progress)
    return daemon
