"""Pasted or piped file listings (`git ls-files`, `tree`): parsed into relative paths.

Two shapes are understood, the two people paste or pipe:

- one path per line, as ``git ls-files`` (or ``find . -type f``) prints them, C-quoted
  paths included (``"caf\\303\\251.py"``);
- the indented drawing of ``tree`` or ``eza -T`` (``├── src``, ``│   └── main.py``, the
  ASCII ``|--`` / ``\\`--`` variants too): an entry's depth is the column of its branch
  marker, its parents are the entries above it at smaller columns.

Folder lines (a trailing ``/``, or an entry with children) are not files; the root line,
blank lines and ``tree``'s closing "N directories, M files" are skipped.

Lines end at a newline (CRLF too) and nowhere else, as in git's and tree's output: a name
holding another line break (vertical tab, U+2028, ...) stays one name, and whatever
characters a name holds, the model text escapes them (model.input.printable).
"""

from __future__ import annotations

import re

from treelens.model.errors import TreelensError

BRANCH = re.compile(r"(├──|└──|\|--|`--)[\s\u00a0]")
SUMMARY = re.compile(r"^\d+ director(y|ies)(, \d+ files?)?$")
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r", "v": "\v"}


class ListingError(TreelensError, ValueError):
    """Text that holds no file paths."""


def unquote(path: str) -> str:
    """Undo git's C-style quoting of a path with unusual characters (``core.quotePath``)."""
    if not (len(path) >= 2 and path[0] == path[-1] == '"'):
        return path
    body, out, i = path[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            following = body[i + 1]
            if following in "01234567" and re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.extend(ESCAPES.get(following, following).encode("utf-8"))
            i += 2
            continue
        out.extend(char.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace")


def clean_path(path: str) -> str:
    """A path given by a person or a client, as a tree spells paths: '/'-separated and
    relative (no leading ``./`` or ``/``); '' for what names no file (a blank, ``.``,
    ``..``, a folder line ending in '/')."""
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")
    return "" if path in (".", "..") or path.endswith("/") else path


def parse_path_list(lines: list[str]) -> list[str]:
    """One path per line (git ls-files style); folder lines ending in '/' are skipped."""
    return [p for p in (clean_path(unquote(line.strip())) for line in lines) if p]


def parse_drawing(lines: list[str]) -> list[str]:
    """Paths of a ``tree`` / ``eza -T`` drawing."""
    entries: list[tuple[int, str]] = []  # (column of the branch marker, name)
    for line in lines:
        match = BRANCH.search(line)
        if match is None:
            continue  # the root line, the summary, blank lines
        name = line[match.end() :].strip()
        if " -> " in name:  # tree prints symlinks as "name -> target"
            name = name.split(" -> ", 1)[0]
        if name:
            entries.append((match.start(), name))
    paths: list[str] = []
    stack: list[tuple[int, str]] = []  # open folders: (column, name)
    for index, (column, name) in enumerate(entries):
        while stack and stack[-1][0] >= column:
            stack.pop()
        has_children = index + 1 < len(entries) and entries[index + 1][0] > column
        if has_children or name.endswith("/"):
            stack.append((column, name.rstrip("/")))
            continue
        paths.append("/".join([*(n for _c, n in stack), name]))
    return paths


def parse_listing(text: str) -> list[str]:
    """Relative file paths from a path list or a tree drawing (see the module docstring)."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip() and not SUMMARY.match(line.strip())]
    drawing = any(BRANCH.search(line) for line in lines)
    paths = parse_drawing(lines) if drawing else parse_path_list(lines)
    if not paths:
        raise ListingError("the tree text holds no file paths (expected `git ls-files` or `tree` output)")
    return list(dict.fromkeys(paths))
