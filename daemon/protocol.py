"""The daemon's wire protocol: custom method names, error codes and the error types.

This module is the single source of the names (the engines are the query-set registry's,
model/querysets/suggest.py); the extension mirrors them in one TypeScript module, and its
tests compare that module with what ``python -m treelens.daemon --describe-protocol``
prints. Params and results are the JSON shapes of DESIGN.md's protocol table.

Error codes: request errors use JSON-RPC's InvalidParams (-32602) for params a client
got wrong and InternalError (-32603) for bugs. The conditions a person can fix get
their own codes (outside the JSON-RPC and LSP reserved ranges) so the extension can
offer the fix: build or point to a model, move a broken feedback database aside.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage
from pygls.protocol import default_converter as pygls_default_converter

from treelens.model.querysets import ENGINES

CLASSIFY = "treelens/classify"
CLASSIFY_TREE = "treelens/classifyTree"
LABELS_CHANGED = "treelens/labelsChanged"
PING = "treelens/ping"
SUGGEST_QUERY_SET = "treelens/suggestQuerySet"
SUBMIT_FEEDBACK = "treelens/submitFeedback"
TOKENIZE = "treelens/tokenize"

REQUESTS: tuple[str, ...] = (CLASSIFY, CLASSIFY_TREE, PING, SUGGEST_QUERY_SET, SUBMIT_FEEDBACK, TOKENIZE)
"""Client -> server requests."""
NOTIFICATIONS: tuple[str, ...] = (LABELS_CHANGED,)
"""Server -> client notifications."""

SETTINGS_SECTION = "treelens"
"""The configuration section (package.json ``contributes.configuration``) the settings live in."""

# error codes a person can act on (JSON-RPC leaves every code outside -32768..-32000 to
# applications; LSP reserves -32899..-32800)
MODEL_UNAVAILABLE = 1001
"""No usable model bundle: build one or set treelens.modelPath."""
FEEDBACK_UNAVAILABLE = 1002
"""The feedback database cannot be opened or written."""
FOLDER_UNAVAILABLE = 1003
"""The workspace folder is gone, unreadable or not on the local disk."""
QUERY_SETS_UNAVAILABLE = 1004
"""Query-set suggestions are not available in this installation."""

ERROR_CODES: dict[str, int] = {
    "modelUnavailable": MODEL_UNAVAILABLE,
    "feedbackUnavailable": FEEDBACK_UNAVAILABLE,
    "folderUnavailable": FOLDER_UNAVAILABLE,
    "querySetsUnavailable": QUERY_SETS_UNAVAILABLE,
}


def describe() -> dict[str, Any]:
    """The names the extension mirrors, for ``python -m treelens.daemon --describe-protocol``
    (the settings are daemon/settings.py's part)."""
    return {
        "requests": list(REQUESTS),
        "notifications": list(NOTIFICATIONS),
        "errorCodes": ERROR_CODES,
        "engines": list(ENGINES),
    }


class InvalidParams(JsonRpcInvalidParams):
    """Params that do not fit the method (the message says which field and why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


class InternalError(JsonRpcInternalError):
    """A bug: the message says what failed; the traceback is in the daemon's log."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message)


class ModelUnavailable(JsonRpcException):
    CODE = MODEL_UNAVAILABLE


class FeedbackUnavailable(JsonRpcException):
    CODE = FEEDBACK_UNAVAILABLE


class FolderUnavailable(JsonRpcException):
    CODE = FOLDER_UNAVAILABLE


class QuerySetsUnavailable(JsonRpcException):
    CODE = QUERY_SETS_UNAVAILABLE


def _keep_json(data: dict[str, Any], cls: type) -> Any:
    """Build a generic JSON-RPC message keeping ``params``/``result`` as plain JSON.

    pygls' default turns unknown params into namedtuples (renaming keys that are not
    identifiers) and drops a request without ``params``; custom methods validate
    plain dicts themselves instead.
    """
    return cls(**{field.name: data.get(field.name) for field in attrs.fields(cls)})


def json_converter() -> cattrs.Converter:
    """pygls' converter, except that custom methods get their params and results as JSON."""
    converter = pygls_default_converter()
    for message_type in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(message_type, _keep_json)
    return converter
