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

import dataclasses
import gzip
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pathspec
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
from treelens.model.querysets.needs import rule_needs
from treelens.model.querysets.policy import DETECTABLE_LANGUAGES, Policy, literal_of
from treelens.model.tree import ProjectTree

if TYPE_CHECKING:
    from treelens.model.querysets.suggest import QuerySet

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
        needs=rule_needs(rule),
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


@dataclass(frozen=True)
class Skip:
    """One semgrep exclude pattern of the opt-in vendored skip, where it came from, and the
    project files it leaves out."""

    pattern: str
    source: str
    files: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "source": self.source, "files": len(self.files)}


@dataclass(frozen=True)
class PathScope:
    """Where the rules of a merged config run, narrowed two ways, each optional.

    - Component scoping (``suggest --scope-components``): a rule is excluded from the
      components (top-level folders and folders holding a manifest) that hold no file of
      its languages, read the way semgrep reads them (extensions, file names, shebangs;
      ``javascript`` rules also scan TypeScript). semgrep would never run the rule there, so
      no finding is lost; and for the same reason it saves no matching time (measured:
      bench/scan_savings.py), so it is off by default. Its limit: files the scanner never
      lists (SKIP_DIRS such as ``target/`` or ``out/``, when git does not ignore them) are
      unknown to it.
    - The vendored skip (``suggest --skip-vendored``): vendored, generated and minified
      files (the policy's ``vendored`` list and the project's own signals, IGNORE_SIGNALS)
      are excluded from every rule; the findings there are reported apart (``skips``).

    Both add to a rule's own ``paths.exclude`` (a file must pass the rule's include and
    every exclude), so the rule's own paths keep their meaning. Folders are anchored at
    the project root (``/backend/``), which is the root semgrep scans from.
    """

    policy: Policy
    folder_languages: dict[str, frozenset[str]] = field(default_factory=dict)
    """Component folder -> the languages of every file beneath it (empty: no scoping)."""
    skips: tuple[Skip, ...] = ()
    _scoped: dict[frozenset[str], tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def skipped_spec(self) -> pathspec.GitIgnoreSpec:
        return pathspec.GitIgnoreSpec.from_lines([s.pattern for s in self.skips])

    def is_skipped(self, path: str) -> bool:
        """Whether the vendored skip leaves this project path out."""
        return bool(self.skips) and self.skipped_spec.match_file(path)

    def scope_excludes(self, query: Query) -> tuple[str, ...]:
        """The component folders that hold no file ``query`` can run on; none for rules whose
        files cannot be told by name (generic, regex, unknown languages)."""
        if not self.folder_languages:
            return ()
        languages = [self.policy.language(lang) for lang in query.languages]
        if not languages or any(
            lang in self.policy.generic_languages
            or lang in self.policy.language_files
            or lang not in DETECTABLE_LANGUAGES
            for lang in languages
        ):
            return ()
        equivalents = self.policy.language_equivalents.get("semgrep", {})
        wanted = frozenset(e for lang in languages for e in equivalents.get(lang, (lang,)))
        if wanted not in self._scoped:
            free = [f for f, langs in sorted(self.folder_languages.items()) if not langs & wanted]
            self._scoped[wanted] = tuple(
                f"/{f}/" for f in free if not any(f.startswith(f"{g}/") for g in free)
            )
        return self._scoped[wanted]

    def excludes(self, query: Query) -> tuple[str, ...]:
        """Everything this scope adds to the rule's ``paths.exclude``."""
        return self.scope_excludes(query) + tuple(s.pattern for s in self.skips)

    def to_json(self, selected: list[Query]) -> dict[str, Any]:
        """What the config leaves out: scoped rules and components, every vendored skip."""
        return {
            "components": sorted(self.folder_languages),
            "scopedRules": sum(1 for q in selected if self.scope_excludes(q)),
            "skipped": [s.to_json() for s in self.skips],
            "skippedFiles": len({f for s in self.skips for f in s.files}),
        }


def path_scope(
    tree: ProjectTree,
    root: Path | None,
    policy: Policy,
    *,
    components: bool = True,
    skip_vendored: bool = False,
) -> PathScope:
    """The scope of a project's configs: components from every listed file (noise included:
    semgrep scans it) and, with ``skip_vendored``, the vendored skip (``root`` is where the
    project's ``.gitattributes`` files are read; None: the policy's list alone)."""
    paths = tree.paths
    folders: dict[str, frozenset[str]] = {}
    if components:
        folders = _folder_languages(paths, tree.scripts, _components(paths, tree.manifests), policy)
    skips = _skips(paths, _vendored_patterns(paths, root, policy)) if skip_vendored else ()
    return PathScope(policy, folders, skips)


def _components(paths: list[str], manifests: Iterable[str]) -> set[str]:
    """Top-level folders and every folder holding a manifest (a monorepo's packages)."""
    found = {p.split("/", 1)[0] for p in paths if "/" in p}
    found |= {m.rsplit("/", 1)[0] for m in manifests if "/" in m}
    return found


def _folder_languages(
    paths: list[str], scripts: dict[str, str], folders: set[str], policy: Policy
) -> dict[str, frozenset[str]]:
    languages: dict[str, set[str]] = {f: set() for f in folders}
    for path in paths:
        language = scripts.get(path) or policy.language_of(path) or "?"
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder in languages:
                languages[folder].add(language)
    return {f: frozenset(langs) for f, langs in languages.items()}


GENERATED_ATTRIBUTES = frozenset(
    {"linguist-vendored", "linguist-generated", "linguist-vendored=true", "linguist-generated=true"}
)


def _vendored_patterns(paths: list[str], root: Path | None, policy: Policy) -> list[tuple[str, str]]:
    """(gitignore pattern from the project root, source) of the policy's list and of the
    project's own signals: what ``.gitattributes`` marks vendored or generated, and what
    its linters are told to leave alone (``.eslintignore``, biome's ignores, ruff's
    excludes): code a project does not lint is code it did not write."""
    found = [(p, "policy vendored list") for p in policy.vendored]
    if root is None:
        return found
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        reader = IGNORE_SIGNALS.get(name)
        if reader is None:
            continue
        try:
            text = read_input(root / path, f"{name} file")
            patterns = reader(text)
        except (InputError, ValueError, TypeError, AttributeError):
            continue  # unreadable or malformed: the other signals still apply
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        found += [(_relative_to(folder, pattern), path) for pattern in patterns if pattern.strip()]
    return found


def _gitattributes(text: str) -> list[str]:
    """Patterns whose attributes mark files vendored or generated."""
    lines = (line.split() for line in text.splitlines())
    return [
        w[0] for w in lines if len(w) > 1 and not w[0].startswith("#") and GENERATED_ATTRIBUTES & set(w[1:])
    ]


def _ignore_lines(text: str) -> list[str]:
    """gitignore-style lines (``.eslintignore``); a re-included ``!`` line is left out."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "!"))]


def _biome(text: str) -> list[str]:
    """biome.json's ignored globs: ``files.ignore`` (biome 1) and the ``!`` entries of
    ``files.includes`` (biome 2)."""
    files = json.loads(text).get("files") or {}
    ignored = list(as_strings(files.get("ignore")))
    return ignored + [g.lstrip("!") for g in as_strings(files.get("includes")) if g.startswith("!")]


def _ruff(text: str) -> list[str]:
    """ruff's ``exclude`` and ``extend-exclude`` (pyproject.toml's ``[tool.ruff]`` or ruff.toml)."""
    data = tomllib.loads(text)
    table = data.get("tool", {}).get("ruff", {}) if "tool" in data else data
    return [*as_strings(table.get("exclude")), *as_strings(table.get("extend-exclude"))]


IGNORE_SIGNALS = {
    ".gitattributes": _gitattributes,
    ".eslintignore": _ignore_lines,
    "biome.json": _biome,
    "pyproject.toml": _ruff,
    "ruff.toml": _ruff,
    ".ruff.toml": _ruff,
}
"""The project's files that name vendored or generated code, and how each is read."""


def _relative_to(folder: str, pattern: str) -> str:
    """A pattern of a sub-folder's ignore file as a pattern from the project root; ``a/**``
    and ``a/**/*`` become the folder ``a/`` (the same files, one semgrep exclude)."""
    for tail in ("/**/*", "/**"):
        if pattern.endswith(tail) and len(pattern) > len(tail):
            pattern = pattern.removesuffix(tail) + "/"
    if not folder:
        return pattern
    inner = pattern.lstrip("/") if "/" in pattern.rstrip("/") else f"**/{pattern}"
    return f"/{folder}/{inner}"


def _skips(paths: list[str], patterns: list[tuple[str, str]]) -> tuple[Skip, ...]:
    """Each pattern that matches a listed file, as semgrep exclude patterns with the same
    meaning: a name pattern (``*.min.js``, ``vendor/``) as it is, since semgrep matches it at
    any depth as git does; any other pattern as the anchored folders or files it matches
    (semgrep reads ``a/b/`` at any depth, git from the root)."""
    skips: dict[str, Skip] = {}
    covered: set[str] = set()
    for pattern, source in patterns:
        spec = pathspec.GitIgnoreSpec.from_lines([pattern])
        literal = literal_of(pattern)  # a plain substring test first: most paths never match
        matched = [p for p in paths if (literal is None or literal in p) and spec.match_file(p)]
        if not matched:
            continue
        if "/" not in pattern.rstrip("/") and not pattern.startswith("!"):
            emitted = {pattern: matched}
        else:
            emitted = {}
            for path in matched:
                emitted.setdefault(_anchored(path, spec), []).append(path)
        for name, files in emitted.items():
            if name not in skips and not covered.issuperset(files):  # each pattern adds files
                skips[name] = Skip(name, source, tuple(files))
                covered.update(files)
    return tuple(skips.values())


def _anchored(path: str, spec: pathspec.GitIgnoreSpec) -> str:
    """The shallowest folder of ``path`` that ``spec`` matches (``/a/b/``), else the file."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth]) + "/"
        if spec.match_file(folder):
            return f"/{folder}"
    return f"/{path}"


def scoped(
    query_set: QuerySet,
    tree: ProjectTree,
    root: Path | None,
    *,
    components: bool = False,
    skip_vendored: bool = False,
    policy: Policy | None = None,
) -> QuerySet:
    """A semgrep query set whose config carries the project's path scope (other engines'
    sets unchanged): ``treelens suggest`` calls this with its scan of the project."""
    scopes_rules = components and query_set.catalog.kind == "rules"  # an index has no bodies to scope
    if query_set.engine != "semgrep" or not (scopes_rules or skip_vendored):
        return query_set
    scope = path_scope(
        tree, root, policy or Policy.load(), components=components, skip_vendored=skip_vendored
    )
    return dataclasses.replace(query_set, config=config(query_set.catalog, query_set.selected, scope))


def merged_rules(catalog: Catalog, selected: list[Query], scope: PathScope | None = None) -> str:
    """One JSON rules file holding the selected rules, each under its semgrep check id, and
    with ``scope`` each rule's ``paths.exclude`` extended by what the scope leaves out.

    JSON, because semgrep reads a config mostly by parsing it: one JSON file loads about
    10x faster than the same rules as YAML, and a rules folder is slower still.
    """
    rules = []
    for q in selected:
        rule = {**catalog.rules[q.id], "id": semgrep_id(q)}
        extra = scope.excludes(q) if scope else ()
        if extra:
            paths = dict(rule["paths"]) if isinstance(rule.get("paths"), dict) else {}
            paths["exclude"] = [*as_strings(paths.get("exclude")), *extra]
            rule["paths"] = paths
        rules.append(rule)
    return json.dumps({"rules": rules}, ensure_ascii=False) + "\n"


def config(catalog: Catalog, selected: list[Query], scope: PathScope | None = None) -> dict[str, Any]:
    """The semgrep config of a selection: a merged rules file, or rule-file paths (index).

    With ``scope``: a merged file carries it in each rule's ``paths.exclude``; an index,
    without rule bodies, can only take the vendored skip, as ``--exclude`` arguments."""
    if catalog.kind == "rules":
        written = {
            "format": "semgrep-rules",
            "fileName": MERGED_FILE_NAME,
            "text": merged_rules(catalog, selected, scope),
            "args": ["--config", MERGED_FILE_NAME],
        }
        return written | ({"scope": scope.to_json(selected)} if scope else {})
    files = list(dict.fromkeys(q.source for q in selected))
    skipped = [arg for s in scope.skips for arg in ("--exclude", s.pattern)] if scope else []
    written = {
        "format": "semgrep-rule-paths",
        "fileName": PATHS_FILE_NAME,
        "text": "".join(f"{f}\n" for f in files),
        "args": [arg for f in files for arg in ("--config", f)] + skipped,
        "note": "paths relative to a semgrep-rules checkout; run semgrep from its root",
    }
    if scope:
        written["scope"] = scope.to_json([]) | {
            "note": "component scoping needs rule bodies (a rules folder); the vendored skip is in args"
        }
    return written
