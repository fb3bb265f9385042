"""The LSP stream on stdin, read so that no input can make the daemon deaf or kill it.

pygls 2's reader (``pygls.io_.run_async``) takes only ``Content-Length: N`` spelt exactly
with CRLF, loses every frame after one it cannot read (the lost body glues itself to the
next header), reads whatever length a header declares (``Content-Length: 99999999999999``
kills the process) and answers nothing to a body it cannot parse. This module replaces
that loop and nothing else; pygls' protocol still handles every message.

- Header names are case-insensitive and lines may end in LF alone.
- A stretch of input that is no frame (no usable ``Content-Length``, a line that is no
  header, a body that is not JSON) is answered with a ParseError (id null), and the reader
  resynchronises on the next ``Content-Length`` header, even one glued to the end of junk.
- A frame longer than MAX_FRAME_BYTES is refused the same way without reading it into
  memory; what follows it up to the next header is skipped.
- A body that is JSON but no JSON-RPC message gets InvalidRequest; a request whose params
  do not fit its method (a malformed ``initialize``) gets InvalidParams; an exception
  while handing a message to pygls is logged with its traceback and a request gets
  InternalError. The loop itself ends only at the end of stdin (or ``exit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import cattrs
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.protocol import JsonRPCProtocol

from treelens.model.guards import load_json

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""The largest body read; a longer frame is refused (a client-built tree fits many times)."""
MAX_HEADER_LINE_BYTES = 8 * 1024
"""A longer header line keeps only its end (where a glued ``Content-Length`` would be)."""
READ_CHUNK_BYTES = 64 * 1024
"""Input is read in chunks, so a declared length is only held once it has arrived."""
MAX_LENGTH_DIGITS = len(str(MAX_FRAME_BYTES))
QUEUED_CHUNKS = 2
"""Frames read ahead of the event loop (the reader waits when they are not handled yet)."""

_CONTENT_LENGTH = b"content-length"
_HEADER = re.compile(rb"^[!#-'*+.0-9A-Z^_`a-z|~-]+[ \t]*:")  # an RFC 7230 token, a colon


def find_content_length(line: bytes) -> tuple[int, bytes] | None:
    """Where the last ``Content-Length:`` header of a line starts (at the start of the line,
    or glued to the end of junk) and its value; None when the line has none. Linear time."""
    lowered = line.lower()
    end = len(lowered)
    while (start := lowered.rfind(_CONTENT_LENGTH, 0, end)) >= 0:
        rest = line[start + len(_CONTENT_LENGTH) :].lstrip(b" \t")
        if rest.startswith(b":"):
            return start, rest[1:].strip(b" \t")
        end = start
    return None


@dataclass
class Chunk:
    """What the reader found: a frame's body, or why a stretch of input is no frame."""

    body: bytes | None = None
    problem: str | None = None


class _Block:
    """The header lines read since the last frame."""

    def __init__(self) -> None:
        self.length: int | None = None
        self.problem: str | None = None
        self.lines = 0  # lines that belong to this block (headers or junk)
        self.junk = False

    def take_length(self, value: bytes) -> None:
        self.lines += 1
        if not value.isdigit():
            self.problem = f"Content-Length {value[:40]!r} is not a number of bytes"
        elif len(value) > MAX_LENGTH_DIGITS or int(value) > MAX_FRAME_BYTES:
            shown = value.decode() if len(value) <= 20 else f"{value[:20].decode()}..."
            self.problem = (
                f"a frame of {shown} bytes is refused: at most {MAX_FRAME_BYTES} bytes "
                "(MAX_FRAME_BYTES); it was skipped up to the next Content-Length header"
            )
        else:
            self.length = int(value)

    def why_no_frame(self) -> str:
        if self.problem:
            return self.problem
        if self.length is not None:
            return "a frame whose headers did not end with an empty line was skipped"
        if self.junk:
            return "input that is no LSP frame (a line that is no header) was skipped"
        return "a frame without a Content-Length header was skipped"


class FrameReader:
    """Frames from a ``read(n)`` that returns up to n bytes (b"" at the end), buffered here."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._buffer = bytearray()
        self._ended = False

    def _fill(self) -> bool:
        """Read more input into the buffer; False at the end of the input."""
        data = b"" if self._ended else self._read(READ_CHUNK_BYTES)
        self._ended = not data
        self._buffer += data
        return bool(data)

    def _line(self) -> bytes | None:
        """The next line without its end (at most its last MAX_HEADER_LINE_BYTES); None at the end."""
        searched = 0
        while (end := self._buffer.find(b"\n", searched)) < 0:
            if len(self._buffer) > MAX_HEADER_LINE_BYTES:
                del self._buffer[:-MAX_HEADER_LINE_BYTES]  # keep only the end of a long line
            searched = len(self._buffer)
            if not self._fill():
                line, self._buffer = bytes(self._buffer), bytearray()
                return line or None
        line = bytes(self._buffer[max(0, end - MAX_HEADER_LINE_BYTES) : end])
        del self._buffer[: end + 1]
        return line.rstrip(b"\r")

    def _body(self, length: int) -> bytes | None:
        """Exactly ``length`` bytes, or None when the input ends first."""
        while len(self._buffer) < length:
            if not self._fill():
                return None
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body

    def chunks(self) -> Iterator[Chunk]:
        """Every frame's body, and a problem for each stretch of input that is no frame."""
        block, skipping = _Block(), False  # skipping: what follows a refused header block
        while (line := self._line()) is not None:
            if not line.strip():  # the end of a header block
                if block.length is not None and block.problem is None:
                    body = self._body(block.length)
                    if body is None:
                        return
                    yield Chunk(body=body)
                elif block.lines:
                    yield Chunk(problem=block.why_no_frame())
                    skipping = True
                block = _Block()
                continue
            found = find_content_length(line)
            if found is None:
                if not skipping:
                    block.lines += 1
                    block.junk = block.junk or _HEADER.match(line) is None
                continue
            start, value = found
            junk_before = start > 0 and not skipping
            if junk_before or block.junk or block.length is not None or block.problem is not None:
                block.junk = block.junk or junk_before
                yield Chunk(problem=block.why_no_frame())  # this header starts the next frame
                block = _Block()
            skipping = False
            block.take_length(value)


def send_error(protocol: JsonRPCProtocol, msg_id: Any, error: JsonRpcException) -> None:
    """Answer ``msg_id`` (None: a message whose id is unknown) with an error."""
    protocol._send_response(msg_id, error=error.to_response_error())


def _request_id(data: Any) -> int | str | None:
    """The id of a message that has a usable one."""
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _not_a_message(data: Any) -> str | None:
    """Why parsed JSON is not a JSON-RPC 2.0 message, or None when it is one."""
    if not isinstance(data, dict):
        return f"a JSON-RPC message must be a JSON object, got {type(data).__name__}"
    if data.get("jsonrpc") != "2.0":
        return 'a JSON-RPC message needs "jsonrpc": "2.0"'
    if "method" in data and not isinstance(data["method"], str):
        return "'method' must be a string"
    if "id" in data and data["id"] is not None and _request_id(data) is None:
        return "'id' must be a number or a string"
    if "method" not in data and "id" not in data:
        return "a JSON-RPC message needs a 'method' or an 'id'"
    return None


def _params_problem(method: str, error: Exception) -> str:
    """One line saying which params of ``method`` are wrong."""
    cause = error.__cause__
    try:
        details = "; ".join(cattrs.transform_error(cause)) if cause is not None else str(error)
    except Exception:  # transform_error knows cattrs' own errors only
        details = str(cause)
    return f"{method}: the params do not fit the method: {details[:500]}"


def dispatch(protocol: JsonRPCProtocol, body: bytes) -> None:
    """Parse one frame's body and hand the message to pygls; every failure is answered."""
    try:
        data = load_json(body, "a frame's body", JsonRpcParseError)
    except JsonRpcParseError as error:
        send_error(protocol, None, error)
        return
    msg_id = _request_id(data)
    problem = _not_a_message(data)
    if problem is not None:
        send_error(protocol, msg_id, JsonRpcInvalidRequest(message=problem))
        return
    method = data.get("method")
    try:
        message = protocol.structure_message(data)
    except Exception as error:  # params that do not fit an LSP method's type
        if msg_id is not None and method is not None:
            problem = _params_problem(method, error)
            log.info("answered InvalidParams: %s", problem)
            send_error(protocol, msg_id, JsonRpcInvalidParams(message=problem))
        else:
            log.warning("ignored: %s", _params_problem(method or "a response", error))
        return
    try:
        protocol.handle_message(message)
    except Exception as error:
        log.exception("handling %s failed", method or "a response")
        if msg_id is not None and method is not None:
            send_error(protocol, msg_id, JsonRpcInternalError(message=f"{method} failed: {error!r:.300}"))


async def serve(stream: BinaryIO, protocol: JsonRPCProtocol, stop: threading.Event) -> None:
    """Dispatch frames until stdin ends or the server stops.

    A daemon thread reads stdin's file descriptor (no buffered object whose lock it would
    hold), so ``exit`` ends the process even while a read blocks; pygls reads on its
    thread pool, which the interpreter waits for at exit."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=QUEUED_CHUNKS)

    def pump() -> None:
        try:
            for chunk in FrameReader(functools.partial(os.read, stream.fileno())).chunks():
                asyncio.run_coroutine_threadsafe(chunks.put(chunk), loop).result()
        except Exception:  # stdin itself failed (closed, an I/O error): the client is gone
            log.exception("reading stdin failed")
        with contextlib.suppress(RuntimeError):  # the loop is gone: the daemon is exiting
            asyncio.run_coroutine_threadsafe(chunks.put(None), loop)

    threading.Thread(target=pump, name="treelens-stdin", daemon=True).start()
    while (chunk := await chunks.get()) is not None and not stop.is_set():
        if chunk.body is None:
            log.warning("stdin: %s", chunk.problem)
            send_error(protocol, None, JsonRpcParseError(message=chunk.problem))
        else:
            dispatch(protocol, chunk.body)
