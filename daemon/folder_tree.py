"""A folder's project tree, kept current by small updates instead of rescans.

The first scan is daemon/scan.py's. After that the watcher reports the paths that were
created, deleted, moved or (for manifests) rewritten, and ``apply`` reconciles just
those paths with the disk: a path that is gone leaves the tree with everything below
it, a file is (re)added with its size and kind, a new folder is walked with the
scanner's rules. Reconciling against the disk, rather than replaying events, makes a
batch idempotent and independent of event order, so a debounced burst (a checkout, an
unzip) needs no bookkeeping. Manifest texts are re-read only when a manifest is touched.
A new ignore file anywhere makes the folder rescan. Not thread-safe: the caller runs
one operation at a time.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from treelens.daemon.ignores import GITIGNORE, Ignores
from treelens.daemon.scan import (
    DEFAULT_MAX_FILES,
    ScanError,
    check_depth,
    display_path,
    file_entry,
    git_listing,
    read_manifest,
    scan,
    script_language,
    walk_listing,
)
from treelens.model.filters import VENV_MARKER, PathFilter, is_skipped_dir
from treelens.model.manifests import is_manifest, select_manifests
from treelens.model.tree import FileEntry, ProjectTree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanInfo:
    """How the tree was last built from scratch."""

    method: str  # "git", "walk", or "git-dir" (a bare repository: nothing listed)
    unreadable: tuple[str, ...]
    limited: bool


class FolderTree:
    """The files and manifest texts of one workspace folder."""

    def __init__(self, root: Path, path_filter: PathFilter) -> None:
        self.root = root
        self.path_filter = path_filter
        self.files: dict[str, FileEntry] = {}  # display path -> entry
        self.manifests: dict[str, str] = {}  # display path -> text
        self.scripts: dict[str, str] = {}  # display path -> language its shebang names
        self._on_disk: dict[
            str, str
        ] = {}  # display path -> path as the file system spells it, when they differ
        self._folders: Counter[str] = Counter()  # folder -> number of entries below it
        self.ignores = Ignores(root, path_filter)
        self.info = ScanInfo("none", (), False)
        self._root_fd = -1  # the root folder, open while a batch is applied

    def rescan(self) -> None:
        """Rebuild everything with a full scan (raises ScanError when the folder is unusable
        or cannot be scanned completely; the tree is then left as it was)."""
        result = scan(self.root, path_filter=self.path_filter)
        gitignores = [entry.path for entry in result.tree.files if entry.path.rpartition("/")[2] == GITIGNORE]
        ignores = Ignores.load(result.root, self.path_filter, gitignores, result.method == "git")
        self.root = result.root
        self.files, self._on_disk, self._folders = {}, {}, Counter()
        for entry in result.tree.files:
            self._add(entry.path, entry.path, entry)
        self.manifests = dict(result.tree.manifests)
        self.scripts = dict(result.tree.scripts)
        self.ignores = ignores
        self.info = ScanInfo(result.method, tuple(result.unreadable), result.limited)

    def snapshot(self, sizes: bool = False) -> ProjectTree:
        """The current tree (a copy the caller may keep). The scanner leaves most sizes at
        0 (the model text does not use them); ``sizes=True`` reads them all, e.g. for a
        data-set record."""
        files = list(self.files.values())
        if sizes:
            files = self._with_sizes(files)
        return ProjectTree(files, dict(self.manifests), dict(self.scripts), self.root.name)

    def _with_sizes(self, files: list[FileEntry]) -> list[FileEntry]:
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return [
                file_entry(root_fd, self._on_disk.get(entry.path, entry.path)) or entry for entry in files
            ]
        finally:
            os.close(root_fd)

    def apply(self, touched: Iterable[str]) -> bool:
        """Reconcile the given paths (relative, '/'-separated) with the disk; True when
        the tree changed. Rescans instead when a new ignore file appeared."""
        # a virtualenv marker coming or going changes what its whole folder holds
        paths = {rel.rpartition("/")[0] if rel.endswith("/" + VENV_MARKER) else rel for rel in touched}
        changed_manifests: set[str] = set()
        changed = False
        try:
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as error:
            raise ScanError(f"{self.root}: {error.strerror or error}") from None
        try:
            for rel in sorted(paths):
                if _has_ancestor_in(rel, paths):
                    continue  # reconciling the folder covers it
                outcome = self._reconcile(rel, changed_manifests)
                if outcome is None:
                    log.info("%s: a new %s appeared under %s; rescanning", self.root, GITIGNORE, rel)
                    self.rescan()
                    return True
                changed |= outcome
        finally:
            os.close(self._root_fd)
        if changed_manifests:
            changed |= self._refresh_manifests(changed_manifests)
        return changed

    def _reconcile(self, rel: str, changed_manifests: set[str]) -> bool | None:
        """Make the tree agree with the disk at ``rel``; None asks for a rescan."""
        try:
            info = os.lstat(self.root / rel)
        except OSError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            return self._reconcile_folder(rel, changed_manifests)
        key = display_path(rel)
        old = self.files.get(key)
        entry = None
        # an entry already in the tree stays even when ignored: git lists tracked files
        wanted = old is not None or not self.ignores.excluded(rel)
        if info is not None and wanted and not self._inside_repository_entry(rel):
            entry = file_entry(self._root_fd, rel)
        removed_below = self._remove_below(key, changed_manifests)
        if entry is None:
            if old is not None:
                self._forget(key, changed_manifests)
            return old is not None or removed_below
        self._put(key, rel, entry)
        if is_manifest(key):
            changed_manifests.add(key)  # new, or its text was rewritten
        return old != entry or removed_below

    def _reconcile_folder(self, rel: str, changed_manifests: set[str]) -> bool | None:
        """Replace everything below a folder with what is on disk now."""
        key = display_path(rel)
        before = {}
        if key in self._folders:
            before = {path: entry for path, entry in self.files.items() if path.startswith(key + "/")}
        if key in self.files:  # a file replaced by a folder of the same name
            before[key] = self.files[key]
        found = self._folder_entries(rel)
        if found is None:
            return None
        after = {display_path(path): (path, entry) for path, entry in found}
        for path in before.keys() - {p for p in after}:
            self._forget(path, changed_manifests)
        for path, (raw, entry) in after.items():
            self._put(path, raw, entry)
            if is_manifest(path) and (path not in before or before[path] != entry):
                changed_manifests.add(path)
        return before != {path: entry for path, (_raw, entry) in after.items()}

    def _folder_entries(self, rel: str) -> list[tuple[str, FileEntry]] | None:
        """(raw path, entry) of each file below a folder by the scanner's rules; None when
        an ignore file was found (its rules must be loaded by a rescan)."""
        name = rel.rpartition("/")[2]
        if is_skipped_dir(name) or self._inside_repository_entry(rel) or self.ignores.excluded(rel, True):
            return []
        if self.info.method == "git" and (self.root / rel / ".git").exists():
            # git lists a nested repository (or submodule) as one entry
            entry = file_entry(self._root_fd, rel)
            return [(rel, entry)] if entry else []
        listed = git_listing(self.root / rel) if self.info.method == "git" else None
        if listed is not None:  # git's own verdict, nested repositories as one "name/" entry
            found = [path.rstrip("/") for path, _kind in listed]
        else:
            walked, _limited = walk_listing(self.root / rel, [], DEFAULT_MAX_FILES)
            found = [path for path, _kind in walked]
        if any(path.rpartition("/")[2] == GITIGNORE for path in found):
            return None
        paths = self.path_filter.project_paths([f"{rel}/{path}" for path in found])
        check_depth(self.root, paths)
        if listed is None:  # the walk knew only the ignore files below the folder
            paths = [path for path in paths if not self.ignores.gitignored(path)]
        entries = []
        for path in paths:
            entry = file_entry(self._root_fd, path)
            if entry is not None:
                entries.append((path, entry))
        return entries

    def _inside_repository_entry(self, rel: str) -> bool:
        """True below a submodule or nested repository that the tree holds as one entry."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            entry = self.files.get(display_path("/".join(parts[:depth])))
            if entry is not None and entry.kind == "submodule":
                return True
        return False

    def _remove_below(self, key: str, changed_manifests: set[str]) -> bool:
        """Drop the entries below ``key`` (it was a folder); True when there were any."""
        if key not in self._folders:
            return False
        below = [path for path in self.files if path.startswith(key + "/")]
        for path in below:
            self._forget(path, changed_manifests)
        return bool(below)

    def _add(self, key: str, raw: str, entry: FileEntry) -> None:
        if key not in self.files:
            self._folders.update(_folders_of(key))
        self.files[key] = entry
        if key != raw:
            self._on_disk[key] = raw

    def _put(self, key: str, raw: str, entry: FileEntry) -> None:
        """Add or update a file the disk changed: its shebang is read again here, once per
        change, so a snapshot reads nothing."""
        self._add(key, raw, entry)
        language = script_language(self.root, raw, entry)
        if language:
            self.scripts[key] = language
        else:
            self.scripts.pop(key, None)

    def _forget(self, key: str, changed_manifests: set[str]) -> None:
        del self.files[key]
        self._on_disk.pop(key, None)
        self.scripts.pop(key, None)
        self._folders.subtract(_folders_of(key))
        for folder in _folders_of(key):
            if self._folders[folder] <= 0:
                del self._folders[folder]
        if key in self.manifests or is_manifest(key):
            changed_manifests.add(key)

    def _refresh_manifests(self, changed: set[str]) -> bool:
        """Re-select the manifests; read the text of those new or rewritten."""
        selected = select_manifests(path for path, entry in self.files.items() if entry.kind == "file")
        manifests = {}
        for path in selected:
            if path in self.manifests and path not in changed:
                manifests[path] = self.manifests[path]
                continue
            text = read_manifest(self.root, self._on_disk.get(path, path))
            if text is not None:
                manifests[path] = text
        if manifests == self.manifests:
            return False
        self.manifests = manifests
        return True


def _has_ancestor_in(rel: str, paths: set[str]) -> bool:
    parts = rel.split("/")
    return any("/".join(parts[:depth]) in paths for depth in range(1, len(parts)))


def _folders_of(path: str) -> list[str]:
    """The folders above a path: 'a/b/c.py' -> ['a', 'a/b']."""
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]
