"""Build the ProjectTree of a folder on disk.

Fast path: ``git ls-files -co --exclude-standard -z`` when the folder is inside a git
work tree, which honours every .gitignore, .git/info/exclude and the global excludes.
Otherwise an os.scandir walk that honours nested .gitignore files with pathspec.
Both skip the directories in model.filters.SKIP_DIRS, never follow symlinked
directories, and survive unreadable folders and names that are not UTF-8. Nothing
from the workspace is executed: git runs with hooks, pagers and credential helpers
off and a timeout.

What a repository anyone clones can carry is held at the mechanism: every file read
(manifests, shebangs, ignore files) opens its path one folder at a time below the root
and refuses symlinks (``read_beneath``), so nothing outside the workspace is read; paths
git still lists below a folder that is now a symlink are dropped; ignore patterns are
matched in linear time (model.filters.IgnorePatterns); and a tree nested deeper than
MAX_DEPTH is an error (ScanError), never a partial result.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from treelens.daemon.git import GIT_TIMEOUT_S, read_git
from treelens.model.detect import language_of_shebang
from treelens.model.errors import TreelensError
from treelens.model.filters import DEFAULT_FILTER, IgnorePatterns, PathFilter, deepest_verdict, is_skipped_dir
from treelens.model.guards import read_beneath
from treelens.model.manifests import MAX_MANIFEST_BYTES, cut_manifest, select_manifests
from treelens.model.tree import FileEntry, ProjectTree

log = logging.getLogger(__name__)

DEFAULT_MAX_FILES = 500_000
"""Stop listing beyond this many files, so a workspace opened on a home folder cannot
exhaust memory; the result says it was limited."""

MAX_DEPTH = 256
"""Folders a listed file may lie below. Deeper nesting is no project layout (a Java
package is some 20 levels); it is refused with an error rather than half served."""
MAX_IGNORE_BYTES = 1 << 18
"""An ignore file is read up to this size, some 10,000 patterns (git refuses ones over
100 MB; a real one is a few KiB)."""
MAX_IGNORE_FILES = 10_000
"""Ignore files one folder may hold: each costs an RE2 set (some 6 KiB)."""


class ScanError(TreelensError):
    """The folder cannot be scanned completely (missing, not a folder, unreadable, nested
    too deep): no tree is better than a partial one."""


@dataclass
class ScanResult:
    """A folder's tree and how it was obtained."""

    root: Path
    tree: ProjectTree
    method: str  # "git", "walk", or "git-dir" (a bare repository: nothing listed)
    unreadable: list[str] = field(default_factory=list)
    limited: bool = False


def check_folder(root: Path) -> Path:
    """The resolved folder, or ScanError saying what is wrong with it."""
    if not root.exists():
        raise ScanError(f"{root}: no such folder")
    if not root.is_dir():
        raise ScanError(f"{root}: is a file, not a folder; give the project's folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ScanError(f"{root}: permission denied; Treelens needs to list this folder")
    return root.resolve()


def display_path(raw: str) -> str:
    """A path safe to show and send as JSON: undecodable bytes become U+FFFD."""
    if raw.isascii():
        return raw
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


Listing = list[tuple[str, str | None]]
"""Relative paths with their kind ('file', 'link', 'submodule'), None where unknown."""

GIT_KINDS = {"120000": "link", "160000": "submodule"}


def git_listing(root: Path, timeout: float = GIT_TIMEOUT_S) -> Listing | None:
    """What git lists for the folder (tracked + untracked, not ignored), or None when the
    folder is not in a git work tree or git is unavailable.

    Tracked entries carry their kind from the index mode (no stat per file); untracked
    ones get None. Files deleted from the work tree but still in the index are dropped.
    """
    # the two listings run side by side: together they take as long as the slower one
    with ThreadPoolExecutor(max_workers=2) as pool:
        listed = pool.submit(
            read_git, root, "ls-files", "-co", "-s", "--exclude-standard", "-z", timeout=timeout
        )
        deleted = read_git(root, "ls-files", "-d", "-z", timeout=timeout)
        listing = listed.result()
    if listing is None or deleted is None:
        return None
    # one decode per listing; undecodable bytes survive as surrogates (os.fsdecode's way)
    gone = set(deleted.decode("utf-8", "surrogateescape").split("\0"))
    found: Listing = []
    for item in listing.decode("utf-8", "surrogateescape").split("\0"):
        meta, tab, path = item.partition("\t")
        if tab and _STAGE_ENTRY.match(meta):  # "<mode> <object> <stage>\t<path>": tracked
            if path not in gone:
                found.append((path, GIT_KINDS.get(meta[:6], "file")))
        elif item:
            found.append((item, None))
    return in_real_folders(root, found)


def in_real_folders(root: Path, listing: Listing) -> Listing:
    """The listed paths whose folders are real folders on disk now. git's index may still
    list ``evil/package.json`` when ``evil`` became a symlink: that file lies outside the
    workspace, as git status would say. One lstat per distinct folder."""
    known: dict[str, bool] = {"": True}
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return listing
    kept: Listing = []
    previous, real = "", True  # git lists a folder's files one after another
    try:
        for path, kind in listing:
            folder = path.rstrip("/").rpartition("/")[0]
            if folder != previous:
                previous, real = folder, _real_folder(root_fd, folder, known)
            if real:
                kept.append((path, kind))
    finally:
        os.close(root_fd)
    return kept


def _real_folder(root_fd: int, folder: str, known: dict[str, bool]) -> bool:
    """Whether ``folder`` and each folder above it is a directory, not a link (memoised in
    ``known``; iterative: a path may be deeper than Python's recursion limit)."""
    unknown = []
    while folder not in known:
        unknown.append(folder)
        folder = folder.rpartition("/")[0]
    real = known[folder]
    for name in reversed(unknown):
        if real:
            try:
                real = stat.S_ISDIR(os.lstat(name, dir_fd=root_fd).st_mode)
            except OSError:
                real = False
        known[name] = real
    return real


def inside_git_dir(root: Path) -> bool:
    """Whether ``root`` is a bare repository or inside a ``.git`` folder: git's own data."""
    return read_git(root, "rev-parse", "--is-inside-git-dir") == b"true\n"


_STAGE_ENTRY = re.compile(r"^[0-7]{6} [0-9a-f]{40,64} [0-3]$")


def walk_listing(root: Path, unreadable: list[str], max_files: int) -> tuple[Listing, bool]:
    """Relative file paths under ``root`` honouring nested .gitignore files.

    Symlinks are listed, never followed; unreadable folders are recorded and skipped.
    Returns the listing and whether ``max_files`` cut it short.
    """
    found: Listing = []
    # each pending folder carries the ignore patterns that apply to it, root first
    pending: list[tuple[str, list[tuple[str, IgnorePatterns]]]] = [("", [])]
    ignore_files = 0
    while pending:
        rel, specs = pending.pop()
        folder = root / rel if rel else root
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            unreadable.append(display_path(rel) or ".")
            log.warning("cannot list %s: %s", folder, error.strerror or error)
            continue
        loaded = _gitignore_spec(root, rel, entries)
        if loaded:
            ignore_files += 1
            check_ignore_files(root, ignore_files)
            specs = specs + loaded
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir and (is_skipped_dir(entry.name) or deepest_verdict(specs, path + "/")):
                continue
            if is_dir:
                pending.append((path, specs))
            elif not deepest_verdict(specs, path):
                found.append((path, "link" if entry.is_symlink() else "file"))
                if len(found) >= max_files:
                    return found, True
    return found, False


def _gitignore_spec(root: Path, rel: str, entries: list[os.DirEntry]) -> list[tuple[str, IgnorePatterns]]:
    if not any(e.name == ".gitignore" for e in entries):
        return []
    path = f"{rel}/.gitignore" if rel else ".gitignore"
    lines = read_ignore_lines(root, path)
    return [(rel, IgnorePatterns.parse(lines, display_path(path)))] if lines else []


def read_ignore_lines(root: Path, path: str) -> list[str]:
    """The lines of an ignore file below ``root`` (none when it is missing, a link, or
    lies below a link)."""
    head = read_beneath(root, path, MAX_IGNORE_BYTES + 1)
    if head is None:
        return []
    if len(head) > MAX_IGNORE_BYTES:
        log.warning("%s: only its first %d bytes are read", root / path, MAX_IGNORE_BYTES)
        head = head[:MAX_IGNORE_BYTES].rpartition(b"\n")[0]
    return head.decode("utf-8", "replace").splitlines()


def file_entry(root_fd: int, path: str) -> FileEntry | None:
    """The entry for one listed path with size and kind from lstat (relative to the open
    root folder, which spares a path join per file), None when it vanished."""
    try:
        info = os.lstat(path, dir_fd=root_fd)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        kind = "link"
    elif stat.S_ISDIR(info.st_mode):
        kind = "submodule"  # git lists a submodule as one entry; a folder otherwise
    else:
        kind = "file"
    return FileEntry(display_path(path), info.st_size if kind != "submodule" else 0, kind)


def read_manifest(root: Path, path: str) -> str | None:
    """A manifest's text as the data set stores it (first 32 KiB); None if unreadable.

    Symlinks are not read, nor files below one: a link named package.json, or a folder
    replaced by a link, must not pull in a file from outside the workspace.
    """
    head = read_beneath(root, path, MAX_MANIFEST_BYTES)
    return None if head is None else cut_manifest(head)


def check_ignore_files(root: Path, count: int) -> None:
    """ScanError when a folder holds more than MAX_IGNORE_FILES ignore files."""
    if count > MAX_IGNORE_FILES:
        raise ScanError(
            f"{root}: more than {MAX_IGNORE_FILES} .gitignore files, more than Treelens reads; "
            "leave the folders that hold them out with the treelens.extraIgnores setting (CLI: --ignore)"
        )


def check_depth(root: Path, paths: Iterable[str]) -> None:
    """ScanError when a path lies below more than MAX_DEPTH folders."""
    for path in paths:
        if path.count("/") > MAX_DEPTH:
            shown = "/".join(display_path(path).split("/")[:3])
            raise ScanError(
                f"{root}: {shown}/… nests deeper than {MAX_DEPTH} levels, more than Treelens reads; "
                "leave that folder out with the treelens.extraIgnores setting (CLI: --ignore) or "
                "a .gitignore line"
            )


def scan(
    root: Path,
    *,
    path_filter: PathFilter = DEFAULT_FILTER,
    use_git: bool = True,
    sizes: bool = False,
    max_files: int = DEFAULT_MAX_FILES,
) -> ScanResult:
    """The ProjectTree of a folder (see the module docstring for the rules).

    File sizes cost one lstat per file and the model text does not use them, so they
    are read only with ``sizes=True`` (e.g. to write a data-set record); otherwise
    sizes are 0 and only files of unknown kind are stat'ed.
    """
    root = check_folder(root)
    unreadable: list[str] = []
    listing = git_listing(root) if use_git else None
    method = "git"
    limited = False
    if listing is None and use_git and inside_git_dir(root):
        method, listing = "git-dir", []  # git's own files (a bare repository): no project here
    if listing is None:
        method = "walk"
        listing, limited = walk_listing(root, unreadable, max_files)
    elif len(listing) > max_files:
        listing, limited = listing[:max_files], True
    # git lists an untracked nested repository as "name/": keep it as one entry
    kinds = {path.rstrip("/"): kind for path, kind in listing}
    on_disk: dict[str, str] = {}  # display path -> path as the file system spells it
    entries = []
    project = path_filter.project_paths(list(kinds))
    check_depth(root, project)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in project:
            kind = kinds[path]
            entry = (
                file_entry(root_fd, path) if sizes or kind is None else FileEntry(display_path(path), 0, kind)
            )
            if entry is not None:
                entries.append(entry)
                on_disk[entry.path] = path
    finally:
        os.close(root_fd)
    manifests = {}
    for path in select_manifests(e.path for e in entries if e.kind == "file"):
        text = read_manifest(root, on_disk[path])
        if text is not None:
            manifests[path] = text
    scripts = script_languages(root, entries, on_disk)
    return ScanResult(root, ProjectTree(entries, manifests, scripts, root.name), method, unreadable, limited)


def script_languages(root: Path, entries: Iterable[FileEntry], on_disk: dict[str, str]) -> dict[str, str]:
    """Extension-less files whose shebang names a language (``mvnw``: bash), by display path;
    ``on_disk`` maps a display path to the path as the file system spells it, where they differ."""
    found = {}
    for entry in entries:
        language = script_language(root, on_disk.get(entry.path, entry.path), entry)
        if language:
            found[entry.path] = language
    return found


SHEBANG_BYTES = 128


def script_language(root: Path, path: str, entry: FileEntry) -> str | None:
    """The language the shebang of an extension-less file names, or None (it has an
    extension, is no script, a symlink or below one, unreadable). Reads at most
    SHEBANG_BYTES."""
    if entry.kind != "file" or "." in entry.path.rsplit("/", 1)[-1]:
        return None
    head = read_beneath(root, path, SHEBANG_BYTES)
    if head is None:
        return None
    return language_of_shebang(head.split(b"\n", 1)[0].decode("utf-8", "replace"))
