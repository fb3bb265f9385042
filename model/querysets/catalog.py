"""Query catalogs: the queries an engine could run, each with the facts the policy reads.

Every engine's catalog reader (semgrep rules directory or metadata index, CodeQL query
pack, bandit's installed test list) produces the same shape, so the policy has one input
type and the outputs one place to look up what to write.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from treelens.model.dataset import default_data_dir
from treelens.model.errors import TreelensError
from treelens.model.querysets.needs import Needs

SHARED_SEMGREP_INDEX = default_data_dir() / "semgrep-rules-index.jsonl"
"""The default semgrep catalog: in the data folder ($TREELENS_DATA_DIR or ../shared/data)."""

MAX_CATALOG_DEPTH = 32
"""Folder levels below a catalog root that are read: semgrep-rules and CodeQL's packs
nest at most about 8; hundreds of levels would only exhaust the recursion of a walk."""

_CWE_NUMBER = re.compile(r"cwe[-_ ]?0*(\d+)", re.IGNORECASE)


class CatalogError(TreelensError):
    """A catalog cannot be read; the message names the path, the problem and the fix."""


@dataclass(frozen=True)
class Query:
    """One query with the facts the policy decides on.

    ``id`` is what the engine reports and selects by: semgrep's check id (the rule id
    prefixed with its folder, dotted, as ``semgrep --config RULES_DIR`` run from that
    folder reports it), CodeQL's ``@id``, bandit's test id.
    """

    id: str
    engine: str
    languages: tuple[str, ...]
    technologies: tuple[str, ...] = ()
    category: str | None = None
    subcategory: tuple[str, ...] = ()
    cwe: tuple[int, ...] = ()
    name: str = ""
    source: str = ""
    """File the query comes from, relative to the catalog root ('' when none)."""
    include: tuple[str, ...] = ()
    """semgrep ``paths.include`` globs: the query only runs on files matching one."""
    exclude: tuple[str, ...] = ()
    patterns: str | None = None
    """The query's own patterns as lower-case text (semgrep rules folders), for the policy to
    see which libraries they name; None when the catalog has no bodies (an index)."""
    needs: Needs | None = None
    """Words one file of the query's languages must hold before it can match (semgrep rules
    folders; model/querysets/needs.py); None when nothing is certain."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Engine-specific facts (CodeQL kind, precision, tags, pack; bandit checks)."""


@dataclass(frozen=True)
class Catalog:
    """The queries of one engine and where they were read from."""

    engine: str
    source: str
    kind: str
    """semgrep: 'rules' (rule bodies, can be merged) or 'index' (metadata only);
    codeql: 'pack'; bandit: 'installed'."""
    queries: tuple[Query, ...]
    rules: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """semgrep rule bodies by query id (kind 'rules' only)."""
    packs: dict[str, str] = field(default_factory=dict)
    """CodeQL pack name -> pack folder relative to the catalog root."""

    def __post_init__(self) -> None:
        ids = [q.id for q in self.queries]
        if len(set(ids)) != len(ids):
            raise ValueError(f"catalog {self.source} has duplicate query ids")

    def __len__(self) -> int:
        return len(self.queries)


def cwe_numbers(values: Iterable[Any]) -> tuple[int, ...]:
    """CWE numbers from 'CWE-89: ...', 'cwe-089', 'external/cwe/cwe-089' or 89."""
    found: list[int] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            found.append(value)
        elif isinstance(value, str):
            found.extend(int(n) for n in _CWE_NUMBER.findall(value))
    return tuple(sorted(set(found)))


def as_strings(value: Any) -> tuple[str, ...]:
    """A metadata field that may be a string, a list of strings, or missing."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int | float) and str(v).strip())
    return ()


def unique_ids(queries: list[Query]) -> list[Query]:
    """Queries with ids made unique: a repeated id gets '@<source file stem>' appended.

    Two rule files in one folder can declare the same rule id; the policy and the
    outputs need one name per query.
    """
    seen: set[str] = set()
    result = []
    for query in queries:
        qid = query.id
        if qid in seen:
            stem = Path(query.source).stem or "dup"
            qid = f"{query.id}@{stem}"
            n = 2
            while qid in seen:
                qid, n = f"{query.id}@{stem}-{n}", n + 1
            query = replace(query, id=qid)
        seen.add(qid)
        result.append(query)
    return result


def catalog_files(root: Path, wanted: Callable[[str], bool]) -> list[Path]:
    """The files under ``root`` whose name is ``wanted``, sorted: hidden files and folders
    skipped, symlinked folders not followed (like ``Path.rglob``), at most
    MAX_CATALOG_DEPTH folder levels deep; a deeper tree is refused with a CatalogError
    instead of walking it (a walk 600 levels deep overflowed the recursion)."""
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if dirs and depth >= MAX_CATALOG_DEPTH:
            raise CatalogError(
                f"{root}: folders nest deeper than {MAX_CATALOG_DEPTH} levels (at {here / dirs[0]}); "
                "give the rules folder itself"
            )
        found.extend(here / name for name in files if not name.startswith(".") and wanted(name))
    return sorted(found)
