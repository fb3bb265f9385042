"""semgrep catalogs and configs.

Two catalog formats:

- a rules folder: YAML files holding ``rules: [{id, languages, metadata: {technology,
  category, subcategory, cwe}, paths: {include, exclude}, ...}]``, read the way
  ``semgrep --config FOLDER`` reads them (hidden folders and ``*.test.yaml`` skipped);
- the metadata index of the semgrep-rules collection (JSON Lines: id, path, languages,
  technology, category, subcategory, cwe, ...), which has no rule bodies.

Query ids are semgrep's check ids: the rule id prefixed with its folder relative to the
catalog root, dotted (``python/flask/debug.yaml`` rule ``debug`` -> ``python.flask.debug``),
which is what ``semgrep --config .`` run inside the rules folder reports. The config for
a rules folder is one merged JSON rules file whose rules carry those ids, so both report
identical check ids; for the index it is the list of selected rule files.
Every arm of a scan comparison is such a merged file (model/querysets/compare.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import yaml

from treelens.model.filters import OUTPUT_PREFIX
from treelens.model.guards import InputError, bounded_lines, load_json, read_input
from treelens.model.querysets.catalog import (
    SHARED_SEMGREP_INDEX,
    Catalog,
    CatalogError,
    Query,
    as_strings,
    catalog_files,
    cwe_numbers,
    unique_ids,
)

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
RULE_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")
MERGED_FILE_NAME = f"{OUTPUT_PREFIX}semgrep.json"  # left out of the tree (model/filters.py)
PATHS_FILE_NAME = f"{OUTPUT_PREFIX}semgrep-rules.txt"  # left out of the tree (model/filters.py)


def load(path: Path | None) -> Catalog:
    """A rules folder or an index file; the shared index when ``path`` is None."""
    if path is None:
        if not SHARED_SEMGREP_INDEX.is_file():
            raise CatalogError(
                f"no semgrep catalog given and the shared index {SHARED_SEMGREP_INDEX} is not there; "
                "pass --catalog RULES_DIR (a folder of semgrep rule files) or an index .jsonl"
            )
        return read_index(SHARED_SEMGREP_INDEX)
    if path.is_dir():
        return read_rules_dir(path)
    if path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")):
        return read_index(path)
    if path.is_file() and path.suffix in RULE_SUFFIXES:
        raise CatalogError(f"{path}: give the folder holding the rule files, not one file")
    raise CatalogError(f"{path}: not a semgrep rules folder or a rules index (.jsonl)")


def check_id(relative_file: str, rule_id: str) -> str:
    """semgrep's check id of a rule: its folder (relative to the config root), dotted."""
    folder = relative_file.rsplit("/", 1)[0] if "/" in relative_file else ""
    return f"{folder.replace('/', '.')}.{rule_id}" if folder else rule_id


def rule_files(root: Path) -> list[Path]:
    """The YAML files ``semgrep --config root`` loads, sorted."""
    return [
        path
        for path in catalog_files(root, lambda name: name.endswith(RULE_SUFFIXES))
        if not path.name.endswith(TEST_SUFFIXES) and path.is_file()
    ]


def read_rules_dir(root: Path) -> Catalog:
    """Every rule of every rule file under ``root``; files without ``rules:`` are skipped."""
    queries: list[Query] = []
    bodies: list[dict[str, Any]] = []
    for path in rule_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            document = yaml.load(read_input(path, "rule file"), Loader=_LOADER)  # noqa: S506 - safe loader
        except (InputError, RecursionError, yaml.YAMLError) as error:
            raise CatalogError(f"{path}: cannot read this rule file ({error}); fix or remove it") from error
        if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
            continue
        for n, rule in enumerate(document["rules"]):
            if not isinstance(rule, dict) or not isinstance(rule.get("id"), str):
                raise CatalogError(f"{path}: rules[{n}] has no string 'id'; semgrep would reject this file")
            queries.append(_rule_query(rule, rel))
            bodies.append(rule)
    if not queries:
        raise CatalogError(f"{root}: no semgrep rule files found (YAML files with a 'rules:' list)")
    queries = unique_ids(queries)
    return Catalog(
        engine="semgrep",
        source=str(root),
        kind="rules",
        queries=tuple(queries),
        rules={q.id: body for q, body in zip(queries, bodies, strict=True)},
    )


NOT_PATTERNS = ("id", "message", "metadata", "severity", "languages", "paths", "fix")
"""Rule keys that say nothing about which code a rule matches."""


def _rule_query(rule: dict[str, Any], rel: str) -> Query:
    metadata = rule.get("metadata") if isinstance(rule.get("metadata"), dict) else {}
    paths = rule.get("paths") if isinstance(rule.get("paths"), dict) else {}
    category = metadata.get("category")
    return Query(
        id=check_id(rel, rule["id"]),
        engine="semgrep",
        languages=tuple(lang.lower() for lang in as_strings(rule.get("languages"))),
        technologies=tuple(t.lower() for t in as_strings(metadata.get("technology"))),
        patterns=json.dumps({k: v for k, v in rule.items() if k not in NOT_PATTERNS}).lower(),
        category=category.lower() if isinstance(category, str) else None,
        subcategory=tuple(s.lower() for s in as_strings(metadata.get("subcategory"))),
        cwe=cwe_numbers(as_strings(metadata.get("cwe"))),
        name=rule["id"],
        source=rel,
        include=as_strings(paths.get("include")),
        exclude=as_strings(paths.get("exclude")),
    )


def read_index(path: Path) -> Catalog:
    """The semgrep-rules metadata index: one JSON object per line."""
    opener = gzip.open if path.name.endswith(".gz") else open
    queries = []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for n, line in bounded_lines(handle, str(path)):
                if line.strip():
                    queries.append(_index_query(line, f"{path}:{n}"))
    except (OSError, UnicodeDecodeError, EOFError, InputError) as error:
        raise CatalogError(f"{path}: cannot read the rules index ({error})") from error
    if not queries:
        raise CatalogError(f"{path}: the rules index is empty")
    return Catalog(engine="semgrep", source=str(path), kind="index", queries=tuple(unique_ids(queries)))


def _index_query(line: str, where: str) -> Query:
    row = load_json(line, where, CatalogError, hint="each line must be one rule's metadata")
    if (
        not isinstance(row, dict)
        or not isinstance(row.get("id"), str)
        or not isinstance(row.get("path"), str)
    ):
        raise CatalogError(f"{where}: each line needs string 'id' and 'path' keys")
    category = row.get("category")
    return Query(
        id=check_id(row["path"], row["id"]),
        engine="semgrep",
        languages=tuple(lang.lower() for lang in as_strings(row.get("languages"))),
        technologies=tuple(t.lower() for t in as_strings(row.get("technology"))),
        category=category.lower() if isinstance(category, str) else None,
        subcategory=tuple(s.lower() for s in as_strings(row.get("subcategory"))),
        cwe=cwe_numbers(as_strings(row.get("cwe"))),
        name=row["id"],
        source=row["path"],
    )


def semgrep_id(query: Query) -> str:
    """The check id semgrep reports for a rule. Unlike ``query.id`` it may repeat (two rule
    files of one folder can declare the same id): semgrep accepts that, while the '@' that
    makes catalog ids unique breaks its rule schema."""
    return check_id(query.source, query.name)


def merged_rules(catalog: Catalog, selected: list[Query]) -> str:
    """One JSON rules file holding the selected rules, each under its semgrep check id.

    JSON, because semgrep reads a config mostly by parsing it: one JSON file loads about
    10x faster than the same rules as YAML, and a rules folder is slower still.
    """
    rules = [{**catalog.rules[q.id], "id": semgrep_id(q)} for q in selected]
    return json.dumps({"rules": rules}, ensure_ascii=False) + "\n"


def config(catalog: Catalog, selected: list[Query]) -> dict[str, Any]:
    """The semgrep config of a selection: a merged rules file, or rule-file paths (index)."""
    if catalog.kind == "rules":
        return {
            "format": "semgrep-rules",
            "fileName": MERGED_FILE_NAME,
            "text": merged_rules(catalog, selected),
            "args": ["--config", MERGED_FILE_NAME],
        }
    files = list(dict.fromkeys(q.source for q in selected))
    return {
        "format": "semgrep-rule-paths",
        "fileName": PATHS_FILE_NAME,
        "text": "".join(f"{f}\n" for f in files),
        "args": [arg for f in files for arg in ("--config", f)],
        "note": "paths relative to a semgrep-rules checkout; run semgrep from its root",
    }
