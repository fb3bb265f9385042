"""Which paths of a watched folder can never change its tree, decided without I/O on git.

The watcher asks this on watchdog's thread for every file-system event, so that events
under skipped directories (.git, node_modules, build output, virtualenvs), .gitignore'd
paths and the ``extraIgnores`` globs are dropped before they start any work. The rules
are the scanner's: daemon/scan.py's skips and PathFilter, and git's ignore files in
git's precedence order (core.excludesFile < .git/info/exclude < .gitignore files, the
deepest deciding), including those above the folder when it sits inside a repository.
Changes to the ignore files themselves make the folder rescan, which reloads them.
Patterns are matched in linear time (model.filters.IgnorePatterns), and ignore files of
the repository are read as the scanner reads them: never through a symlink.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from treelens.daemon.git import read_git
from treelens.daemon.scan import MAX_IGNORE_BYTES, check_ignore_files, read_ignore_lines
from treelens.model.filters import VENV_MARKER, IgnorePatterns, PathFilter, deepest_verdict, is_skipped_dir

log = logging.getLogger(__name__)

GITIGNORE = ".gitignore"

Rules = dict[str, list[IgnorePatterns]]
"""Base folder (relative to the repository top, '' for the top) -> its patterns, lowest
precedence first."""


class Ignores:
    """The ignore rules of one folder at one moment (immutable: a rescan builds a new one)."""

    def __init__(
        self,
        root: Path,
        path_filter: PathFilter,
        rules: Rules | None = None,
        prefix: str = "",
        exclude_file: str | None = None,
    ) -> None:
        self.root = root
        self.path_filter = path_filter
        self._rules = rules or {}
        self._prefix = prefix  # the folder relative to the repository top, '' or ending in '/'
        self.exclude_file = exclude_file  # .git/info/exclude relative to root, when inside it

    @classmethod
    def load(cls, root: Path, path_filter: PathFilter, gitignores: Iterable[str], use_git: bool) -> Ignores:
        """Rules for ``root``: the given .gitignore files (paths relative to root), plus, in
        a git work tree, those above root, .git/info/exclude and the global excludes.
        Raises ScanError for more than MAX_IGNORE_FILES of them."""
        gitignores = list(gitignores)
        check_ignore_files(root, len(gitignores))
        rules: Rules = {}
        prefix, exclude_file = "", None
        if use_git:
            located = _git_locations(root)
            if located is not None:
                prefix, exclude_path = located
                for path in (_global_excludes(root), exclude_path):
                    _add(rules, "", _config_lines(path), str(path))
                top = root
                for _ in range(prefix.count("/")):
                    top = top.parent
                parts = prefix.rstrip("/").split("/") if prefix else []
                for depth in range(len(parts)):  # .gitignore files between the top and root
                    base = "/".join(parts[:depth])
                    rel = "/".join([*parts[:depth], GITIGNORE])
                    _add(rules, base, read_ignore_lines(top, rel), str(top / rel))
                if exclude_path.is_relative_to(root):
                    exclude_file = exclude_path.relative_to(root).as_posix()
        for rel in sorted(gitignores, key=lambda p: p.count("/")):
            folder = rel.rpartition("/")[0]
            base = f"{prefix}{folder}".rstrip("/")
            _add(rules, base, read_ignore_lines(root, rel), str(root / rel))
        return cls(root, path_filter, rules, prefix, exclude_file)

    def excluded(self, rel: str, is_dir: bool = False) -> bool:
        """True when ``rel`` (relative to root, '/'-separated) is never part of the tree."""
        parts = rel.split("/")
        folders = parts if is_dir else parts[:-1]
        if any(is_skipped_dir(name) for name in folders):
            return True
        if not self.path_filter.project_paths([rel + "/" if is_dir else rel]):
            return True
        return self._in_virtualenv(folders) or self.gitignored(rel, is_dir)

    def gitignored(self, rel: str, is_dir: bool = False) -> bool:
        """git's verdict: a path is ignored when it or any folder above it is."""
        if not self._rules:
            return False
        parts = f"{self._prefix}{rel}".split("/")
        for depth in range(1, len(parts) + 1):
            last = depth == len(parts)
            candidate = "/".join(parts[:depth]) + ("/" if not last or is_dir else "")
            if depth > self._prefix.count("/") and self._decide(candidate, parts[: depth - 1]):
                return True
        return False

    def _decide(self, candidate: str, folders: list[str]) -> bool:
        """git's verdict on ``candidate`` from the ignore files of ``folders`` (root first)."""
        bases = ("/".join(folders[:depth]) for depth in range(len(folders) + 1))
        return deepest_verdict(((base, p) for base in bases for p in self._rules.get(base, ())), candidate)

    def _in_virtualenv(self, folders: list[str]) -> bool:
        """A folder holding pyvenv.cfg is a virtualenv whatever its name (one stat per level)."""
        for depth in range(1, len(folders) + 1):
            if os.path.isfile(self.root.joinpath(*folders[:depth], VENV_MARKER)):
                return True
        return False

    def triggers_rescan(self, rel: str) -> bool:
        """Ignore files: changing one changes which files belong to the tree."""
        return rel.rpartition("/")[2] == GITIGNORE or rel == self.exclude_file


def _add(rules: Rules, base: str, lines: list[str], source: str) -> None:
    """Add one ignore file's patterns (lines pathspec refuses are skipped, as git does)."""
    patterns = IgnorePatterns.parse(lines, source)
    if patterns:
        rules.setdefault(base, []).append(patterns)


def _config_lines(path: Path | None) -> list[str]:
    """Lines of git's own exclude files (the person's configuration, not the workspace's:
    a symlinked dotfile is fine); none when missing."""
    if path is None:
        return []
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_IGNORE_BYTES).decode("utf-8", "replace").splitlines()
    except OSError:
        return []  # no such file is the usual case


def _git(root: Path, *args: str) -> str | None:
    """Decoded output of a read-only git command in ``root`` (daemon/git.py), None when it fails."""
    out = read_git(root, *args)
    return None if out is None else os.fsdecode(out)


def _git_locations(root: Path) -> tuple[str, Path] | None:
    """(root relative to the repository top, path of .git/info/exclude), or None."""
    out = _git(root, "rev-parse", "--show-prefix", "--git-path", "info/exclude")
    if out is None:
        return None
    lines = out.split("\n")
    if len(lines) < 2:
        return None
    exclude = Path(lines[1])
    return lines[0], exclude if exclude.is_absolute() else root / exclude


def _global_excludes(root: Path) -> Path | None:
    """core.excludesFile, else git's default ($XDG_CONFIG_HOME/git/ignore)."""
    configured = _git(root, "config", "--path", "--get", "core.excludesFile")
    if configured and configured.strip():
        return Path(configured.strip()).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "git" / "ignore"
