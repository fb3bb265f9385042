"""LSP handlers: each turns params into values and calls the server (daemon/server.py).

Every request answers with a result or an LSP error whose message a person can act
on: InvalidParams for params a client got wrong, the codes of daemon/protocol.py for
what a person can fix (no model, broken feedback database, folder gone), and
InternalError, logged with its traceback, for bugs. None of them stops the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError

from treelens.daemon import params
from treelens.daemon.protocol import (
    CLASSIFY,
    CLASSIFY_TREE,
    ENGINES,
    PING,
    SETTINGS_SECTION,
    SUBMIT_FEEDBACK,
    SUGGEST_QUERY_SET,
    TOKENIZE,
    InternalError,
    ModelUnavailable,
)
from treelens.daemon.server import TreelensServer
from treelens.daemon.settings import Settings
from treelens.model.bundle import BundleError, no_model_message

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
PULL_TIMEOUT_S = 10.0
"""How long a settings change waits for the client's answer to workspace/configuration."""


class _ExpectedErrors(logging.Filter):
    """pygls logs every error answer, and every message whose params do not fit their LSP
    type, with a traceback; for the errors a client or a person causes (bad params, no
    model, ...) the one line logged by ``request`` or daemon/framing.py is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Unable to deserialize message"):
            return False
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, JsonRpcException) and not isinstance(error, JsonRpcInternalError))


def build_server() -> TreelensServer:
    """A server with every handler registered."""
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_ExpectedErrors())
    server = TreelensServer()
    _register_lifecycle(server)
    _register_requests(server)
    return server


def request(server: TreelensServer, method: str) -> Callable[[Handler], Handler]:
    """Register a custom request; unexpected exceptions become InternalError, logged."""

    def register(handler: Handler) -> Handler:
        async def answer(raw: Any) -> Any:
            try:
                return await handler(params.as_object(raw, method))
            except JsonRpcInternalError:
                raise
            except JsonRpcException as error:
                log.info("%s answered error %d: %s", method, error.code, error.message)
                raise
            except BundleError as error:  # a model that breaks on this input (NaN) is no usable model
                log.warning("%s: %s", method, error)
                raise ModelUnavailable(no_model_message(error)) from None
            except Exception as error:
                log.exception("%s failed", method)
                raise InternalError(
                    f"{method} failed: {type(error).__name__}: {error}. This is a Treelens bug; the "
                    "daemon's log (the Treelens output channel) has the details"
                ) from error

        server.feature(method)(answer)
        return handler

    return register


def _register_lifecycle(server: TreelensServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(init: types.InitializeParams) -> None:
        problems = server.configure(init.initialization_options)
        for folder in init.workspace_folders or []:
            server.folders.add(folder.uri, folder.name)
        if not init.workspace_folders and init.root_uri:
            server.folders.add(init.root_uri)
        log.info("%s", server.describe_start())
        _show_problems(server, problems)

    @server.feature(types.INITIALIZED)
    def initialized(_params: types.InitializedParams) -> None:
        server.start()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(change: types.DidChangeConfigurationParams) -> None:
        raw = change.settings
        if not Settings.carried(raw) and _can_pull_configuration(server):
            raw = await _pull_settings(server)
        _show_problems(server, server.configure(raw))

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_folders(change: types.DidChangeWorkspaceFoldersParams) -> None:
        for removed in change.event.removed:
            server.folders.remove(removed.uri)
        for added in change.event.added:
            server.folders.add(added.uri, added.name)

    @server.feature(types.SHUTDOWN)
    def shutdown(_params: None) -> None:
        server.stop()


def _register_requests(server: TreelensServer) -> None:
    @server.feature(PING)
    def ping(_params: Any) -> dict[str, Any]:
        """The extension's liveness probe: answered at once on the loop that reads every
        message (blocking work runs on workers), so an answer proves the daemon still reads."""
        return {}

    @request(server, CLASSIFY)
    async def classify(given: dict[str, Any]) -> dict[str, Any]:
        return await server.classify(await server.workspace_folder(params.folder(given)))

    @request(server, CLASSIFY_TREE)
    async def classify_tree(given: dict[str, Any]) -> dict[str, Any]:
        return await server.classify_tree(params.tree(given))

    @request(server, TOKENIZE)
    async def tokenize(given: dict[str, Any]) -> dict[str, Any]:
        return await server.tokenize(await server.workspace_folder(params.folder(given)))

    @request(server, SUBMIT_FEEDBACK)
    async def submit_feedback(given: dict[str, Any]) -> dict[str, Any]:
        labels, comment = params.labels(given), params.comment(given)
        folder = await server.workspace_folder(params.folder(given))
        return await server.submit_feedback(folder, labels, comment)

    @request(server, SUGGEST_QUERY_SET)
    async def suggest_query_set(given: dict[str, Any]) -> dict[str, Any]:
        engine, catalog = params.engine(given, ENGINES), params.catalog(given)
        scope = params.scope(given)
        folder = await server.workspace_folder(params.folder(given))
        return await server.suggest_query_set(folder, engine, catalog, scope)


async def _pull_settings(server: TreelensServer) -> Any:
    """The client's Treelens section (``workspace/configuration``), asked for when a change
    does not push it; None (the settings are kept) when the client gives none."""
    items = [types.ConfigurationItem(section=SETTINGS_SECTION)]
    try:
        pulled = await asyncio.wait_for(
            server.workspace_configuration_async(types.ConfigurationParams(items=items)), PULL_TIMEOUT_S
        )
    except Exception as error:  # a client that refuses, fails or never answers
        log.warning("the client did not give the %r settings (%r); they are kept", SETTINGS_SECTION, error)
        return None
    return pulled[0] if pulled else None


def _can_pull_configuration(server: TreelensServer) -> bool:
    workspace = server.client_capabilities.workspace if server.client_capabilities else None
    return bool(workspace and workspace.configuration)


def _show_problems(server: TreelensServer, problems: list[str]) -> None:
    if problems:
        message = "Treelens settings: " + "; ".join(problems)
        server.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))
