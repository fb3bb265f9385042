"""Request params -> typed values, or InvalidParams saying which field is wrong and why.

Custom methods receive their params as plain JSON (daemon.protocol.json_converter), so
everything a client can send, including nothing at all, lands here first. What a client
sends is limited as the scanner limits what it reads (paths, path lengths, manifests), so a
client-built tree costs no more than a scanned one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treelens.daemon.protocol import InvalidParams
from treelens.daemon.scan import DEFAULT_MAX_FILES
from treelens.model.labels import LABELS, label_vector
from treelens.model.listing import ListingError, clean_path, parse_listing
from treelens.model.manifests import MAX_MANIFEST_BYTES, cut_manifest, select_manifests
from treelens.model.tree import ProjectTree

MAX_COMMENT_CHARS = 10_000
MAX_TREE_CHARS = 64 * 1024 * 1024
MAX_TREE_PATHS = DEFAULT_MAX_FILES
"""Paths in a client-built tree: the scanner's own limit."""
MAX_PATH_CHARS = 4096
"""Characters in one client path (Linux's PATH_MAX)."""
MAX_URI_CHARS = 3 * MAX_PATH_CHARS
"""Characters in a folder URI (a path with every byte %-escaped)."""


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
    if len(value) > MAX_URI_CHARS:
        raise InvalidParams(
            f"'folder' is {len(value)} characters; a workspace folder URI has at most {MAX_URI_CHARS}"
        )
    return value


def labels(params: dict[str, Any]) -> dict[str, int]:
    """Every label set to 0 or 1 by the person (the data-set format; true/false accepted)."""
    value = params.get("labels")
    if not isinstance(value, dict):
        raise InvalidParams(f"'labels' must be an object {{label: 0|1}}, got {_kind(value)}")
    try:
        return dict(zip(LABELS, label_vector(value, "'labels'", booleans=True), strict=True))
    except ValueError as error:
        raise InvalidParams(str(error)) from None


def comment(params: dict[str, Any]) -> str:
    value = params.get("comment")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParams(f"'comment' must be a string, got {_kind(value)}")
    if len(value) > MAX_COMMENT_CHARS:
        raise InvalidParams(f"'comment' is {len(value)} characters; at most {MAX_COMMENT_CHARS}")
    return value


@dataclass(frozen=True)
class Scope:
    """The path scope a semgrep config is asked to carry (``treelens suggest
    --scope-components --skip-vendored``); both off by default."""

    components: bool = False
    skip_vendored: bool = False


def scope(params: dict[str, Any]) -> Scope:
    """``scopeComponents`` and ``skipVendored``, each an optional true/false."""
    return Scope(_flag(params, "scopeComponents"), _flag(params, "skipVendored"))


def _flag(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise InvalidParams(f"'{name}' must be true or false, got {_kind(value)}")
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
    if len(value) > MAX_PATH_CHARS:
        raise InvalidParams(f"'catalog' is {len(value)} characters; a path has at most {MAX_PATH_CHARS}")
    return Path(value)


def tree(params: dict[str, Any]) -> ProjectTree:
    """A client-built tree: text with one relative file path per line, a list of paths,
    or a data-set record ``{"files": [[path, size, kind]...], "manifests": {path: text}}``.
    ``manifests`` beside a text or list adds manifest texts.

    Cut and limited as the scanner's own trees are: at most MAX_TREE_PATHS paths of at most
    MAX_PATH_CHARS characters; of the manifests only those the scanner would read (at most
    MAX_MANIFESTS, by name, shallowest first), each cut to MAX_MANIFEST_BYTES."""
    value = params.get("tree")
    if isinstance(value, dict):
        files = value.get("files")
        _check_count(len(files) if isinstance(files, list) else 0)
        try:
            result = ProjectTree.from_record(value, "'tree'")
        except ValueError as error:
            raise InvalidParams(str(error)) from None
        paths = [entry.path for entry in result.files]
        _check_lengths(paths)
        result.manifests = _manifests(result.manifests, paths)
        return result
    if isinstance(value, str):
        paths = _listing(value)
    elif isinstance(value, list) and all(isinstance(line, str) for line in value):
        _check_count(len(value))
        paths = [p for p in map(clean_path, value) if p]
    else:
        raise InvalidParams(
            "'tree' must be a listing (`git ls-files` or `tree` output), a list of paths, or a record "
            f"{{files, manifests}}; got {_kind(value)}"
        )
    if not paths:
        raise InvalidParams("'tree' holds no file paths")
    _check_lengths(paths)
    result = ProjectTree.from_paths(paths)
    manifests = params.get("manifests")
    if manifests is not None:
        if not isinstance(manifests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in manifests.items()
        ):
            raise InvalidParams("'manifests' must map paths to their text")
        result.manifests = _manifests({clean_path(k): v for k, v in manifests.items()}, paths)
    return result


def _listing(text: str) -> list[str]:
    """The paths of a listing as the CLI's --tree-file reads it (model/listing.py): one
    path per line, C-quoted git paths included, or a `tree` drawing."""
    if len(text) > MAX_TREE_CHARS:
        raise InvalidParams(f"'tree' is {len(text)} characters; at most {MAX_TREE_CHARS}")
    _check_count(text.count("\n") + 1)
    try:
        return parse_listing(text)
    except ListingError:
        return []


def _check_count(count: int) -> None:
    if count > MAX_TREE_PATHS:
        raise InvalidParams(
            f"'tree' holds {count} paths; at most {MAX_TREE_PATHS} (the scanner's limit): send a smaller tree"
        )


def _check_lengths(paths: list[str]) -> None:
    longest = max(paths, key=len, default="")
    if len(longest) > MAX_PATH_CHARS:
        raise InvalidParams(
            f"'tree' has a path of {len(longest)} characters ({longest[:60]!r}...); at most {MAX_PATH_CHARS}"
        )


def _manifests(given: dict[str, str], paths: list[str]) -> dict[str, str]:
    """The manifests the scanner would read for these paths, each cut as it cuts them."""
    listed = set(paths)
    chosen = select_manifests(path for path in given if path in listed)
    return {
        path: cut_manifest(given[path][:MAX_MANIFEST_BYTES].encode("utf-8", "replace")) for path in chosen
    }
