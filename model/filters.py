"""Which paths of a project the model looks at.

Two layers, both applied to plain path lists so that a data-set record and a scanned
folder are filtered identically:

- *skips*: directories that are never part of the project proper (VCS data, installed
  dependencies, virtualenvs, build output). The scanner also uses them to avoid
  descending into such folders at all.
- *noise*: files that say little about what a project is (the seed report's filters):
  media, fonts, locale/translation data, migrations, docs and markdown, and names with
  two or more consecutive digits (hashes, generated files). Each category can be turned
  off, and extra gitignore-style patterns can be added.

Manifest files are never dropped as noise: they carry the dependency section.

Every gitignore-style pattern that comes from outside (a repository's ignore files, the
``extraIgnores`` setting, ``--ignore``) is matched by RE2 (IgnorePatterns): linear in the
path, so no pattern can freeze the scanner or the daemon with catastrophic backtracking.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import pathspec
import re2
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from treelens.model.manifests import is_manifest

log = logging.getLogger(__name__)

SKIP_DIRS: frozenset[str] = frozenset(
    {
        # version control
        ".git",
        ".hg",
        ".svn",
        # installed dependencies
        "node_modules",
        "bower_components",
        "jspm_packages",
        "Pods",
        "Carthage",
        ".bundle",
        "vendor",  # Go modules, Composer, Bundler; semgrep and GitHub linguist skip it too
        # virtualenvs and tool caches
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".eggs",
        ".gradle",
        ".terraform",
        ".dart_tool",
        ".pub-cache",
        # build output
        "build",
        "dist",
        "out",
        "target",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".parcel-cache",
        ".angular",
        ".cache",
        "coverage",
        ".expo",
        "DerivedData",
    }
)
"""Directory names skipped wherever they appear."""

OUTPUT_PREFIX = "treelens-"
"""Files at the project root named so are Treelens' own query-set files
(treelens-semgrep.json, treelens-codeql.qls, ...): saving one must not change the labels."""

VENV_MARKER = "pyvenv.cfg"
"""A directory holding this file is a virtualenv, whatever its name."""

MEDIA_EXTENSIONS = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".ico",
        ".icns",
        ".svg",
        ".webp",
        ".tif",
        ".tiff",
        ".psd",
        ".xcf",
        ".ai",
        ".eps",
        ".heic",
        ".mp3",
        ".wav",
        ".ogg",
        ".oga",
        ".flac",
        ".aac",
        ".m4a",
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".wmv",
        ".flv",
    ]
)
FONT_EXTENSIONS = frozenset([".ttf", ".otf", ".woff", ".woff2", ".eot", ".pfb", ".pfm", ".fnt"])
LOCALE_EXTENSIONS = frozenset(
    [".po", ".pot", ".mo", ".xliff", ".xlf", ".resx", ".strings", ".stringsdict", ".arb"]
)
LOCALE_DIRS = frozenset({"locale", "locales", "i18n", "l10n", "lang", "langs", "translations", "nls"})
LOCALE_DIR_PATTERN = re.compile(r"^(values-[a-z]{2,3}(-r[A-Z]{2})?|[A-Za-z_-]+\.lproj)$")
MIGRATION_DIRS = frozenset({"migrations", "migrate", "alembic"})
DOC_EXTENSIONS = frozenset([".md", ".markdown", ".mdx", ".rst", ".adoc", ".asciidoc", ".textile", ".rdoc"])
DOC_DIRS = frozenset({"docs", "doc", "documentation"})
DIGITS_PATTERN = re.compile(r"\d\d")

NOISE_CATEGORIES: tuple[str, ...] = ("media", "fonts", "locale", "migrations", "docs", "digits")


def extension(name: str) -> str:
    """Lower-cased extension of a file name including the dot, or '' (dotfiles have none)."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


@lru_cache(maxsize=1 << 18)
def noise_category(path: str) -> str | None:
    """The noise category a file path falls in, or None when it is signal (memoised)."""
    if is_manifest(path):
        return None
    folder, _, name = path.rpartition("/")
    ext = extension(name)
    if ext in MEDIA_EXTENSIONS:
        return "media"
    if ext in FONT_EXTENSIONS:
        return "fonts"
    if ext in LOCALE_EXTENSIONS:
        return "locale"
    by_folder = _folder_category(folder) if folder else None
    if by_folder in ("locale", "migrations"):
        return by_folder
    if ext in DOC_EXTENSIONS or by_folder == "docs":
        return "docs"
    if DIGITS_PATTERN.search(name):
        return "digits"
    return None


@lru_cache(maxsize=65536)
def _folder_category(folder: str) -> str | None:
    """Noise category implied by the folders on a path (locale > migrations > docs)."""
    dirs = [d.lower() for d in folder.split("/")]
    if any(d in LOCALE_DIRS for d in dirs) or any(LOCALE_DIR_PATTERN.match(d) for d in folder.split("/")):
        return "locale"
    if any(d in MIGRATION_DIRS for d in dirs):
        return "migrations"
    if any(d in DOC_DIRS for d in dirs):
        return "docs"
    return None


def is_skipped_dir(name: str) -> bool:
    """True for a directory name that is never part of the project proper."""
    return name in SKIP_DIRS


def _folder_skipped(folder: str, venvs: set[str]) -> bool:
    """True when a folder lies in a skipped directory or inside a virtualenv."""
    if not folder:
        return False
    parts = folder.split("/")
    if any(is_skipped_dir(d) for d in parts):
        return True
    return bool(venvs) and any("/".join(parts[: i + 1]) in venvs for i in range(len(parts)))


IGNORE_BACKEND = "re2"
"""pathspec's RE2 backend (google-re2): matching time is linear in the path, whatever the
pattern. Python's re, pathspec's default without RE2, backtracks exponentially on
patterns like ``*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b``."""


@dataclass(frozen=True)
class IgnorePatterns:
    """The gitignore-style patterns of one source (an ignore file, a setting), compiled for
    RE2. Lines pathspec refuses (``!`` alone, a trailing backslash, a reversed range) are
    skipped with a warning, as git skips patterns that can never match; a pattern too big
    for RE2's memory budget is skipped the same way, and a file too big for one RE2 set is
    split into several (``specs``, in file order)."""

    specs: tuple[pathspec.GitIgnoreSpec, ...] = ()

    @classmethod
    def parse(cls, lines: Iterable[str], source: str) -> IgnorePatterns:
        patterns = []
        for number, line in enumerate(lines, 1):
            try:
                patterns.append(GitIgnoreSpecPattern(line))
            except (ValueError, re.error) as error:
                log.warning("%s:%d: pattern %r skipped: %s", source, number, line[:200], error)
        return cls(tuple(_compiled(patterns, source)))

    def __bool__(self) -> bool:
        return bool(self.specs)

    def verdict(self, path: str) -> bool | None:
        """True: ignored, False: re-included by a negation, None: no pattern matches. The
        last matching pattern decides (the last part of a split file first)."""
        for spec in reversed(self.specs):
            include = spec.check_file(path).include
            if include is not None:
                return include
        return None


def deepest_verdict(sources: Iterable[tuple[str, IgnorePatterns]], path: str) -> bool:
    """git's precedence between ignore files: of the ``sources`` that apply to ``path``
    (each with the folder its patterns are relative to, given root first, a folder's
    sources in git's order), the deepest with a matching pattern decides, negations
    included; no match means not ignored. ``path`` is relative to the root, '/'-separated,
    with a trailing '/' for a folder."""
    for base, patterns in reversed(list(sources)):
        verdict = patterns.verdict(path[len(base) + 1 :] if base else path)
        if verdict is not None:
            return verdict
    return False


def _compiled(patterns: list[GitIgnoreSpecPattern], source: str) -> list[pathspec.GitIgnoreSpec]:
    """One RE2 spec for the patterns, or (over RE2's memory budget) specs for each half."""
    if not any(pattern.include is not None for pattern in patterns):
        return []
    try:
        return [pathspec.GitIgnoreSpec(patterns, backend=IGNORE_BACKEND)]
    except re2.error:
        if len(patterns) == 1:
            log.warning("%s: pattern %r skipped: too big to match", source, str(patterns[0].pattern)[:200])
            return []
    middle = len(patterns) // 2
    return _compiled(patterns[:middle], source) + _compiled(patterns[middle:], source)


@dataclass(frozen=True)
class PathFilter:
    """The configurable part of path filtering.

    ``noise`` lists the noise categories that are dropped (default: all of them);
    ``extra_ignores`` are gitignore-style patterns dropped on top (the daemon's
    ``extraIgnores`` setting).
    """

    noise: frozenset[str] = frozenset(NOISE_CATEGORIES)
    extra_ignores: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = sorted(self.noise - set(NOISE_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown noise categories {unknown}; choose from {list(NOISE_CATEGORIES)}")

    @cached_property
    def _extra_patterns(self) -> IgnorePatterns:
        return IgnorePatterns.parse(self.extra_ignores, "extra ignores")

    def project_paths(self, paths: list[str]) -> list[str]:
        """Paths that are part of the project proper: skips, Treelens' own files and extra
        ignores removed."""
        venvs = {
            posixpath.dirname(p)
            for p in paths
            if p.endswith(VENV_MARKER) and p.rsplit("/", 1)[-1] == VENV_MARKER
        }
        skipped: dict[str, bool] = {}  # per folder: files share folders, so decide once each
        kept = []
        for path in paths:
            folder = path.rpartition("/")[0]
            if not folder and path.startswith(OUTPUT_PREFIX):
                continue
            skip = skipped.get(folder)
            if skip is None:
                skip = skipped[folder] = _folder_skipped(folder, venvs)
            if not skip:
                kept.append(path)
        extra = self._extra_patterns
        if extra:
            kept = [p for p in kept if not extra.verdict(p)]
        return kept

    def signal_paths(self, paths: list[str]) -> list[str]:
        """Project paths minus the enabled noise categories: what the tree text shows."""
        if not self.noise:
            return list(paths)
        return [p for p in paths if noise_category(p) not in self.noise]


DEFAULT_FILTER = PathFilter()
