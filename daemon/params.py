"""Request params -> typed values, or InvalidParams saying which field is wrong and why.

Custom methods receive their params as plain JSON (daemon.protocol.json_converter), so
everything a client can send, including nothing at all, lands here first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.protocol import InvalidParams
from daemon.scan import DEFAULT_MAX_FILES
from model.labels import LABELS
from model.tree import ProjectTree

MAX_COMMENT_CHARS = 10_000
MAX_TREE_CHARS = 64 * 1024 * 1024


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def as_object(params: Any, method: str) -> dict[str, Any]:
    """The params object; omitted params mean {}."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidParams(f"{method}: params must be a JSON object, got {_kind(params)}")
    return params


def folder(params: dict[str, Any]) -> str | None:
    """A workspace folder URI, or None for the first folder."""
    value = params.get("folder")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidParams(f"'folder' must be a workspace folder URI (a string), got {_kind(value)}")
    return value


def labels(params: dict[str, Any]) -> dict[str, int]:
    """Every label set to 0 or 1 by the person (the data-set format; true/false accepted)."""
    value = params.get("labels")
    if not isinstance(value, dict):
        raise InvalidParams(f"'labels' must be an object {{label: 0|1}}, got {_kind(value)}")
    unknown = sorted(str(k) for k in set(value) - set(LABELS))
    if unknown:
        raise InvalidParams(f"'labels': unknown label(s) {unknown!r:.200}; known labels are {list(LABELS)}")
    missing = [name for name in LABELS if name not in value]
    if missing:
        raise InvalidParams(f"'labels' must give every label 0 or 1; missing {missing}")
    bad = {k: v for k, v in value.items() if v not in (0, 1)}  # True/False equal 1/0
    if bad:
        raise InvalidParams(f"'labels' values must be 0 or 1, got {bad!r:.200}")
    return {name: int(value[name]) for name in LABELS}


def comment(params: dict[str, Any]) -> str:
    value = params.get("comment")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParams(f"'comment' must be a string, got {_kind(value)}")
    if len(value) > MAX_COMMENT_CHARS:
        raise InvalidParams(f"'comment' is {len(value)} characters; at most {MAX_COMMENT_CHARS}")
    return value


def engine(params: dict[str, Any], engines: tuple[str, ...]) -> str:
    value = params.get("engine")
    if value not in engines:
        raise InvalidParams(f"'engine' must be one of {list(engines)}, got {value!r:.80}")
    return value


def catalog(params: dict[str, Any]) -> Path | None:
    """An engine's catalog (a folder or index file) on this machine; None: the engine's default."""
    value = params.get("catalog")
    if value is None:
        return None
    if not isinstance(value, str) or not Path(value).is_absolute():
        raise InvalidParams(f"'catalog' must be an absolute path, got {_kind(value)} {value!r:.200}")
    return Path(value)


def tree(params: dict[str, Any]) -> ProjectTree:
    """A client-built tree: text with one relative file path per line, a list of paths,
    or a data-set record ``{"files": [[path, size, kind]...], "manifests": {path: text}}``.
    ``manifests`` beside a text or list adds manifest texts."""
    value = params.get("tree")
    if isinstance(value, dict):
        try:
            return ProjectTree.from_record(value, "'tree'")
        except ValueError as error:
            raise InvalidParams(str(error)) from None
    if isinstance(value, str):
        if len(value) > MAX_TREE_CHARS:
            raise InvalidParams(f"'tree' is {len(value)} characters; at most {MAX_TREE_CHARS}")
        lines = value.splitlines()
    elif isinstance(value, list) and all(isinstance(line, str) for line in value):
        lines = value
    else:
        raise InvalidParams(
            "'tree' must be text with one relative file path per line, a list of paths, or a record "
            f"{{files, manifests}}; got {_kind(value)}"
        )
    paths = [p for p in (_clean(line) for line in lines) if p]
    if not paths:
        raise InvalidParams("'tree' holds no file paths")
    if len(paths) > DEFAULT_MAX_FILES:
        raise InvalidParams(f"'tree' holds {len(paths)} paths; at most {DEFAULT_MAX_FILES}")
    result = ProjectTree.from_paths(paths)
    manifests = params.get("manifests")
    if manifests is not None:
        if not isinstance(manifests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in manifests.items()
        ):
            raise InvalidParams("'manifests' must map paths to their text")
        listed = set(paths)
        result.manifests = {_clean(k): v for k, v in manifests.items() if _clean(k) in listed}
    return result


def _clean(line: str) -> str:
    """A client path as the tree spells paths: '/'-separated, relative, no folder lines."""
    path = line.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")
    return "" if path.endswith("/") else path
