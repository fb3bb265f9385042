"""The LSP life cycle, enforced: what the daemon answers before ``initialize`` and after
``shutdown``.

pygls hands a request sent before ``initialize`` to its handler (a classify then starts the
model load without the client's capabilities, and that failed load poisoned every later
request) and drops every request after ``shutdown`` without an answer, so the client
waits forever. The specification says what to answer instead:

- before a successful ``initialize``: requests get ServerNotInitialized (-32002),
  notifications are dropped (``exit`` excepted);
- a second ``initialize`` gets InvalidRequest;
- after ``shutdown``: requests get InvalidRequest, notifications other than ``exit`` are
  dropped.

It also forgets each handler's future once the handler is done: pygls keeps the future of
every notification handler (and of every step of its generator handlers) in
``_request_futures`` for ever, a Task and a Future per settings change, file event or
progress notification for the daemon's whole life.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcServerNotInitialized
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import RPCNotification, RPCRequest

from treelens.daemon.framing import send_error

log = logging.getLogger(__name__)


class TreelensProtocol(LanguageServerProtocol):
    """pygls' LSP protocol with the life cycle's answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialized = False  # an initialize request was answered with a result

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Any:
        """pygls' initialize; the session counts as initialized once it has returned."""
        result = yield from super().lsp_initialize(params)
        self.initialized = True
        return result

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Callable[[Any], None],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """pygls' handler execution, forgetting the handler's future once it is done."""
        loop = asyncio.get_running_loop()

        def done(future: Any) -> None:
            try:
                callback(future)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is exiting
                    loop.call_soon_threadsafe(self._forget, msg_id, future)

        super()._execute_handler(msg_id, handler, done, args, kwargs)

    def _forget(self, msg_id: Any, future: Any) -> None:
        """Drop a finished handler's future; on the loop, so never while pygls iterates the
        futures (``shutdown`` cancels them all, and a cancelled Future calls back at once)."""
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    def handle_message(self, message: Any) -> None:
        refusal = self._refusal(message)
        if refusal is None:
            super().handle_message(message)
        elif isinstance(message, RPCRequest):
            log.info("%s refused: %s", message.method, refusal.message)
            send_error(self, message.id, refusal)
        elif isinstance(message, RPCNotification):
            log.debug("%s dropped: %s", message.method, refusal.message)

    def _refusal(self, message: Any) -> JsonRpcException | None:
        """The error a message gets in the current state, or None when it is handled."""
        method = getattr(message, "method", None)
        if method is None or method == types.EXIT:
            return None
        if self._shutdown:
            return JsonRpcInvalidRequest(
                message=f"{method}: the daemon has been shut down; only 'exit' is accepted now"
            )
        if method == types.INITIALIZE:
            if self.initialized:
                return JsonRpcInvalidRequest(message="initialize: the session is already initialized")
            return None
        if not self.initialized:
            return JsonRpcServerNotInitialized(
                message=f"{method}: the daemon is not initialized yet; send 'initialize' first"
            )
        return None
