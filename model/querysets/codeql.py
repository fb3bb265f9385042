"""CodeQL catalogs (query pack folders) and query suites (.qls).

A query pack is a folder with ``qlpack.yml`` (``name``, and the language as
``extractor`` or implied by a ``codeql/<lang>-all`` dependency) and ``.ql`` files whose
leading QLDoc comment carries ``@id``, ``@kind``, ``@tags``, ``@precision``... The
catalog path may be one pack or a folder holding several (as the codeql repository
does). CodeQL queries carry no technology tags: frameworks are modelled inside the
libraries, so the policy decides on language, CWE tags and id alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from treelens.model.filters import OUTPUT_PREFIX
from treelens.model.querysets.catalog import Catalog, CatalogError, Query, catalog_files, cwe_numbers

PACK_FILE = "qlpack.yml"
SUITE_FILE_NAME = f"{OUTPUT_PREFIX}codeql.qls"  # left out of the tree (model/filters.py)
CATEGORY_TAGS = ("security", "correctness", "maintainability", "reliability", "performance", "readability")
_DOC = re.compile(r"^\s*/\*\*(.*?)\*/", re.DOTALL)
_PACK_LANGUAGE = re.compile(r"^codeql/([a-z]+)-(?:all|queries)$")


def pack_language(manifest: dict[str, Any], where: Path) -> str:
    """The language of a pack: ``extractor``, else a ``codeql/<lang>-all`` dependency or name."""
    if isinstance(manifest.get("extractor"), str):
        return manifest["extractor"]
    names = [manifest.get("name")]
    if isinstance(manifest.get("dependencies"), dict):
        names.extend(manifest["dependencies"])
    for name in names:
        if isinstance(name, str) and (match := _PACK_LANGUAGE.match(name)):
            return match.group(1)
    raise CatalogError(
        f"{where}: cannot tell the pack's language; add 'extractor: <language>' or a "
        "'codeql/<language>-all' dependency"
    )


def parse_header(text: str) -> dict[str, str]:
    """The ``@key value`` pairs of a query's leading QLDoc comment (values joined on spaces)."""
    match = _DOC.match(text)
    if not match:
        return {}
    fields: dict[str, str] = {}
    key = None
    for raw in match.group(1).splitlines():
        line = raw.strip().lstrip("*").strip()
        if line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            fields[key] = value.strip()
        elif key is not None and line:
            fields[key] = f"{fields[key]} {line}".strip()
        elif not line:
            key = None
    return fields


def read_packs(root: Path) -> Catalog:
    """Every query with an ``@id`` in the pack(s) at ``root``."""
    if not root.is_dir():
        raise CatalogError(f"{root}: not a folder; give a CodeQL query pack folder (with {PACK_FILE})")
    pack_files = catalog_files(root, lambda name: name == PACK_FILE)
    if not pack_files:
        raise CatalogError(f"{root}: no {PACK_FILE} found; give a CodeQL query pack folder")
    pack_dirs = [p.parent for p in pack_files]
    queries: list[Query] = []
    packs: dict[str, str] = {}
    for pack_file in pack_files:
        try:
            manifest = yaml.safe_load(pack_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise CatalogError(f"{pack_file}: cannot read the pack file ({error})") from error
        if not isinstance(manifest, dict) or not isinstance(manifest.get("name"), str):
            raise CatalogError(f"{pack_file}: a pack file needs a 'name'")
        language = pack_language(manifest, pack_file)
        pack_dir = pack_file.parent
        packs[manifest["name"]] = pack_dir.relative_to(root).as_posix()
        nested = [d for d in pack_dirs if d != pack_dir and pack_dir in d.parents]
        for ql in catalog_files(pack_dir, lambda name: name.endswith(".ql")):
            if any(d in ql.parents for d in nested):
                continue
            query = _query(ql, root, manifest["name"], language)
            if query is not None:
                queries.append(query)
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise CatalogError(f"{root}: query ids are not unique ({', '.join(dup)}); CodeQL selects by @id")
    return Catalog(engine="codeql", source=str(root), kind="pack", queries=tuple(queries), packs=packs)


def _query(path: Path, root: Path, pack: str, language: str) -> Query | None:
    try:
        header = parse_header(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(f"{path}: cannot read this query ({error})") from error
    if not header.get("id"):
        return None  # not selectable by id: a test or helper query
    tags = tuple(header.get("tags", "").split())
    category = next((t for t in tags if t in CATEGORY_TAGS), None)
    return Query(
        id=header["id"],
        engine="codeql",
        languages=(language,),
        category=category,
        cwe=cwe_numbers(t for t in tags if "cwe" in t),
        name=header.get("name", ""),
        source=path.relative_to(root).as_posix(),
        extra={
            "kind": header.get("kind", ""),
            "precision": header.get("precision", ""),
            "tags": list(tags),
            "pack": pack,
        },
    )


def suite(catalog: Catalog, selected: list[Query], description: str) -> str:
    """A .qls suite: every query of the packs that hold a selected query, filtered by id."""
    used_packs = list(dict.fromkeys(q.extra["pack"] for q in selected))
    instructions: list[dict[str, Any]] = [{"description": description}]
    instructions += [{"queries": ".", "from": pack} for pack in used_packs]
    if selected:
        instructions.append({"include": {"id": [q.id for q in selected]}})
    return yaml.safe_dump(instructions, sort_keys=False, width=1 << 16)


def config(catalog: Catalog, selected: list[Query], description: str) -> dict[str, Any]:
    """The CodeQL config of a selection: a query suite, run as ``codeql database analyze DB FILE``."""
    return {
        "format": "codeql-suite",
        "fileName": SUITE_FILE_NAME,
        "text": suite(catalog, selected, description),
        "args": [SUITE_FILE_NAME],
    }
