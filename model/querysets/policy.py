"""The query policy: which queries a project can trigger, and why the others were dropped.

The rules themselves live in ``policy.yaml`` beside this module (one readable data file);
this module loads them and applies them to one project in four steps (language, words,
label gates, technology), each documented at the top of that file. Every decision carries a
reason: the drop reason of a dropped query, or the conservative rule that kept a query
the plain rules would have dropped.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import cattrs
import pathspec
import yaml

from treelens.model.detect import (
    LANGUAGE_BY_EXTENSION,
    LANGUAGE_BY_NAME,
    language_of,
    technologies_from_dependencies,
)
from treelens.model.errors import TreelensError
from treelens.model.filters import extension
from treelens.model.guards import read_beneath
from treelens.model.input import Analysis
from treelens.model.labels import UNCERTAIN_RATIO, UNTUNED_THRESHOLD, label_state
from treelens.model.querysets.catalog import Query
from treelens.model.querysets.needs import file_words, files_meeting, needed_words, unmet_words

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")
DETECTABLE_LANGUAGES = frozenset(LANGUAGE_BY_EXTENSION.values()) | frozenset(LANGUAGE_BY_NAME.values())
"""Languages model.detect can see from file names; a query language outside this set and
the policy's ``language_files`` cannot be ruled out, so its queries are kept."""
READ_IN_FULL = frozenset({"terraform"})
"""Ecosystems whose every file the policy itself reads, given the project's folder: the
only ones a ``decided_by_files`` family may name."""
MAX_TERRAFORM_BYTES = 4 << 20
"""A larger HCL file is not read: the project's providers are then unknown (nothing is
decided by files)."""
MAX_WORDS_BYTES = 4 << 20
"""A larger file is not read for words: its language's words are then unknown, and no rule
of that language is dropped for a word it lacks."""
MAX_WORDS_TOTAL_BYTES = 64 << 20
"""At most this much of a project's files of one language is read for words (about 3 s on
one core); a larger code base keeps that language's words unknown, as above."""
WORDS_APART = "holds the words its patterns need together"
"""The words step's reason where every needed word is in some file but no one file holds
them all (the bench measures this check on its own)."""
_TF_PROVIDERS = re.compile(
    r"""^\s*(?:resource|data)\s+"?([A-Za-z0-9-]+)_|^\s*provider\s+"?([\w-]+)"""
    r"""|source\s*=\s*"(?:[\w.-]+/)?[\w-]+/([\w-]+)\"""",
    re.M,
)
"""Provider names in HCL text: a resource or data source's type prefix (Terraform infers
``hashicorp/azurerm`` from ``resource "azurerm_..."`` without any declaration), a
``provider`` block, and a ``required_providers`` or registry module ``source``."""


class PolicyError(TreelensError):
    """The policy file is missing or malformed; the message names the key at fault."""


@lru_cache(maxsize=65536)
def _names_module(patterns: str, name: str) -> bool:
    escaped = re.escape(name)
    anchor = (
        rf"""\\?["']@?{escaped}[\w./-]*\\?["']|(?<![\w$.]){escaped}\.[a-z_]|(?:import|from)\s+{escaped}\b"""
    )
    return re.search(anchor, patterns) is not None


def at_any_depth(patterns: Iterable[str]) -> tuple[str, ...]:
    """Evidence patterns that match inside sub-projects too.

    In gitignore syntax a pattern with a slash before its end (``.github/workflows/*``) is
    anchored at the root, but a monorepo's ``backend/.github/workflows/`` or
    ``deploy/k8s/`` is evidence all the same: such patterns get a leading ``**/``. A
    pattern that starts with ``/`` stays anchored on purpose.
    """
    return tuple(p if p.startswith(("/", "**/")) or "/" not in p.rstrip("/") else f"**/{p}" for p in patterns)


@lru_cache(maxsize=1024)
def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(patterns)


_GLOB_PARTS = re.compile(r"\[[^\]]*\]|[*?/]")


@lru_cache(maxsize=4096)
def literal_of(pattern: str) -> str | None:
    """The longest literal run every path matching ``pattern`` contains, or None (negated
    or escaped patterns): a C-speed ``str.find`` over all paths narrows the candidates."""
    if pattern.startswith("!") or "\\" in pattern:
        return None
    return max(_GLOB_PARTS.split(pattern), key=len) or None


def scanned_language(path: str, scanned: dict[str, str]) -> str | None:
    """The language of a file as the engines read it: model.detect's, else the one an engine
    scans its extension (or, for keys without a dot, its whole name) as: the policy's
    ``scanned_extensions``, where ``.phtml`` is PHP."""
    return language_of(path) or scanned.get(extension(path)) or scanned.get(path.rsplit("/", 1)[-1].lower())


@dataclass(frozen=True)
class Family:
    """Technology tags that stand for each other, and how to see them in a project."""

    name: str
    members: frozenset[str]
    files: tuple[str, ...] = ()
    ecosystems: tuple[str, ...] = ()
    languages: frozenset[str] = frozenset()
    """When not empty, the family only gates queries of these languages."""
    decided_by_files: bool = False
    """When the policy read every file of the family's ecosystems and none shows a member,
    the family is certainly absent: a label gate does not re-admit its technology drop."""


@dataclass(frozen=True)
class Gate:
    """A category of queries that needs one of some labels (server-side, mobile, IaC)."""

    name: str
    why: str
    labels: tuple[str, ...]
    families: frozenset[str] = frozenset()
    id_patterns: tuple[str, ...] = ()
    languages: frozenset[str] = frozenset()
    and_cwe: frozenset[int] = frozenset()
    evidence: tuple[str, ...] = ()


# the policy file's shape: structured by cattrs, so that an unknown or misspelt key is an
# error naming it (a silently ignored key is a rule that does nothing) -----------------------


@dataclass(frozen=True)
class _FamilySpec:
    members: tuple[str, ...]
    files: tuple[str, ...] = ()
    ecosystems: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    decided_by_files: bool = False


@dataclass(frozen=True)
class _MatchSpec:
    families: tuple[str, ...] = ()
    id_patterns: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class _GateSpec:
    why: str
    labels: tuple[str, ...]
    match: _MatchSpec
    and_cwe: tuple[int, ...] = ()
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class _PolicyFile:
    version: int
    language_aliases: dict[str, str]
    language_equivalents: dict[str, dict[str, tuple[str, ...]] | None]
    generic_languages: tuple[str, ...]
    script_folders: tuple[str, ...]
    technology_aliases: dict[str, str]
    ecosystem_languages: dict[str, tuple[str, ...]]
    families: dict[str, _FamilySpec]
    gates: dict[str, _GateSpec]
    language_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    engine_language_files: dict[str, dict[str, tuple[str, ...]] | None] = field(default_factory=dict)
    ungated_engines: tuple[str, ...] = ()
    vendored: tuple[str, ...] = ()
    scanned_extensions: dict[str, str] = field(default_factory=dict)


_POLICY_FILE = cattrs.Converter(forbid_extra_keys=True)


def _read_policy_file(data: Any) -> _PolicyFile:
    """The policy file's data, checked for its version, its keys and their types."""
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError("expected 'version: 1'")
    try:
        return _POLICY_FILE.structure(data, _PolicyFile)
    except cattrs.BaseValidationError as error:
        raise ValueError("; ".join(cattrs.transform_error(error, path="policy"))) from None


@dataclass(frozen=True)
class Policy:
    """The parsed policy file."""

    language_aliases: dict[str, str]
    language_equivalents: dict[str, dict[str, tuple[str, ...]]]
    language_files: dict[str, tuple[str, ...]]
    engine_language_files: dict[str, dict[str, tuple[str, ...]]]
    """Per engine, query languages recognised by files (checkov's frameworks); they take
    precedence over ``language_files`` and over the language aliases for that engine."""
    generic_languages: frozenset[str]
    script_folders: frozenset[str]
    technology_aliases: dict[str, str]
    ecosystem_languages: dict[str, frozenset[str]]
    families: dict[str, Family]
    gates: tuple[Gate, ...]
    ungated_engines: frozenset[str] = frozenset()
    """Engines whose queries no label gate reads (the model neither drops nor re-admits them)."""
    vendored: tuple[str, ...] = ()
    """gitignore patterns of vendored, generated and minified files, left out of a config only
    on request (``suggest --skip-vendored``); their findings are reported apart."""
    scanned_extensions: dict[str, str] = field(default_factory=dict)
    """Extension -> the language an engine scans it as, where model.detect names none."""
    source: str = ""

    def language_of(self, path: str) -> str | None:
        return scanned_language(path, self.scanned_extensions)

    @cached_property
    def aliases_of(self) -> dict[str, tuple[str, ...]]:
        """Every alias of a canonical technology name (gcp: google, google-cloud)."""
        found: dict[str, list[str]] = {}
        for alias, name in self.technology_aliases.items():
            found.setdefault(name, []).append(alias)
        return {name: tuple(aliases) for name, aliases in found.items()}

    @cached_property
    def families_of_tag(self) -> dict[str, tuple[Family, ...]]:
        found: dict[str, list[Family]] = {}
        for family in self.families.values():
            for member in family.members:
                found.setdefault(member, []).append(family)
        return {tag: tuple(fams) for tag, fams in found.items()}

    @classmethod
    def load(cls, path: Path = DEFAULT_POLICY) -> Policy:
        """Read and check a policy file."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise PolicyError(f"{path}: cannot read the query policy ({error})") from error
        try:
            return cls._parse(data, str(path))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise PolicyError(f"{path}: malformed query policy ({type(error).__name__}: {error})") from error

    @classmethod
    def _parse(cls, data: Any, source: str) -> Policy:
        spec = _read_policy_file(data)
        for name, family in spec.families.items():
            if family.decided_by_files and not (
                family.ecosystems and READ_IN_FULL.issuperset(family.ecosystems)
            ):
                raise ValueError(
                    f"family {name}: decided_by_files needs ecosystems the policy reads in full "
                    f"({sorted(READ_IN_FULL)}), not {list(family.ecosystems)}"
                )
        families = {
            name: Family(
                name=name,
                members=frozenset(m.lower() for m in family.members),
                files=at_any_depth(family.files),
                ecosystems=family.ecosystems,
                languages=frozenset(family.languages),
                decided_by_files=family.decided_by_files,
            )
            for name, family in spec.families.items()
        }
        gates = []
        for name, gate in spec.gates.items():
            unknown = set(gate.match.families) - set(families)
            if unknown:
                raise ValueError(f"gate {name} names unknown families {sorted(unknown)}")
            gates.append(
                Gate(
                    name=name,
                    why=gate.why,
                    labels=gate.labels,
                    families=frozenset(gate.match.families),
                    id_patterns=gate.match.id_patterns,
                    languages=frozenset(gate.match.languages),
                    and_cwe=frozenset(gate.and_cwe),
                    evidence=at_any_depth(gate.evidence),
                )
            )
        return cls(
            language_aliases={k.lower(): v for k, v in spec.language_aliases.items()},
            language_equivalents={
                engine: dict(table or {}) for engine, table in spec.language_equivalents.items()
            },
            language_files={k: at_any_depth(v) for k, v in spec.language_files.items()},
            engine_language_files={
                engine: {k: at_any_depth(v) for k, v in (table or {}).items()}
                for engine, table in spec.engine_language_files.items()
            },
            generic_languages=frozenset(spec.generic_languages),
            script_folders=frozenset(spec.script_folders),
            technology_aliases={k.lower(): v for k, v in spec.technology_aliases.items()},
            ecosystem_languages={k: frozenset(v) for k, v in spec.ecosystem_languages.items()},
            families=families,
            gates=tuple(gates),
            ungated_engines=frozenset(spec.ungated_engines),
            vendored=spec.vendored,
            scanned_extensions={k.lower(): v for k, v in spec.scanned_extensions.items()},
            source=source,
        )

    def language(self, name: str) -> str:
        return self.language_aliases.get(name.lower(), name.lower())

    def technology(self, tag: str) -> str:
        return self.technology_aliases.get(tag.lower(), tag.lower())


@dataclass
class Project:
    """What the policy knows about one project: every path, languages, technologies."""

    paths: list[str]
    languages: frozenset[str]
    technologies: frozenset[str]
    dependency_names: frozenset[str]
    ecosystems: frozenset[str]
    read_in_full: frozenset[str] = frozenset()
    """Ecosystems whose every file was read here (the names found are dependency names)."""
    root: Path | None = None
    """The project's folder, where the words of its files are read (None: they are not)."""
    vocabulary: frozenset[str] | None = None
    """The words worth finding in files (those the catalog's rules need); None: every word."""
    scanned_extensions: dict[str, str] = field(default_factory=dict)
    """The policy's extensions an engine scans as a language model.detect does not name."""
    _word_files: dict[str, dict[str, int] | None] = field(default_factory=dict, repr=False)
    _matches: dict[tuple[Any, ...], bool] = field(default_factory=dict, repr=False)
    _texts: dict[frozenset[str] | None, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_analysis(
        cls,
        analysis: Analysis,
        policy: Policy,
        root: Path | None = None,
        vocabulary: frozenset[str] | None = None,
    ) -> Project:
        """The project as the analysis describes it. With ``root`` (the project's folder),
        every HCL file is read for the Terraform providers it uses: the analysis parsed at
        most MAX_MANIFESTS manifests, each cut at 32 KiB, and no resource type prefix."""
        languages = set(analysis.languages) | set(analysis.script_languages)
        languages |= {policy.language_of(p) for p in analysis.project_paths if not language_of(p)} - {None}
        if any(_is_script(p, policy.script_folders) for p in analysis.project_paths):
            languages.add("bash")
        technologies = {t.lower() for t in analysis.technologies}
        names = {n.lower() for found in analysis.dependencies.values() for n in found}
        providers = None if root is None else terraform_providers(root, analysis.project_paths)
        if providers is not None:
            technologies |= technologies_from_dependencies({"terraform": sorted(providers)})
            names |= providers
        return cls(
            paths=list(analysis.project_paths),
            languages=frozenset(languages),
            technologies=frozenset(technologies),
            dependency_names=frozenset(names),
            ecosystems=frozenset(analysis.dependencies),
            read_in_full=frozenset() if providers is None else frozenset({"terraform"}),
            root=root,
            vocabulary=vocabulary,
            scanned_extensions=policy.scanned_extensions,
        )

    def has_file(
        self,
        patterns: tuple[str, ...],
        exclude: tuple[str, ...] = (),
        languages: frozenset[str] | None = None,
    ) -> bool:
        """True when a project path (of one of ``languages``, when given) matches one of the
        gitignore-style ``patterns`` and none of ``exclude`` (memoised per project)."""
        if not patterns:
            return False
        key = (patterns, exclude, languages)
        if key not in self._matches:
            self._matches[key] = self._match(patterns, exclude, languages)
        return self._matches[key]

    def _match(
        self, patterns: tuple[str, ...], exclude: tuple[str, ...], languages: frozenset[str] | None
    ) -> bool:
        excluded = _spec(exclude).match_file if exclude else None
        literals = [literal_of(p) for p in patterns]
        if None in literals:
            include = _spec(patterns).match_file
            return any(include(p) and not (excluded and excluded(p)) for p in self._paths_of(languages))
        text = self._text(languages)  # one path per line
        for pattern, literal in zip(patterns, literals, strict=True):
            matches = _spec((pattern,)).match_file
            found = text.find(literal)
            while found >= 0:
                start = text.rfind("\n", 0, found) + 1
                end = text.find("\n", found)
                end = len(text) if end < 0 else end
                path = text[start:end]
                if matches(path) and not (excluded and excluded(path)):
                    return True
                found = text.find(literal, end)
        return False

    def _paths_of(self, languages: frozenset[str] | None) -> list[str]:
        if languages is None:
            return self.paths
        return [p for p in self.paths if scanned_language(p, self.scanned_extensions) in languages]

    def _text(self, languages: frozenset[str] | None) -> str:
        if languages not in self._texts:
            self._texts[languages] = "\n".join(self._paths_of(languages))
        return self._texts[languages]

    def word_files(self, languages: frozenset[str]) -> list[dict[str, int]] | None:
        """Where the words (model/querysets/needs.py) of the files of ``languages`` and of
        every extension-less file (a script is of its shebang's language) are: per language,
        each word's bit mask of the files holding it (read_word_files), memoised. None when
        they cannot all be read: no folder given, an unreadable file, one over
        MAX_WORDS_BYTES, more than MAX_WORDS_TOTAL_BYTES of one language's files. Links are
        passed over: semgrep does not scan them."""
        if self.root is None:
            return None
        found = [self._language_word_files(self.root, group) for group in (*sorted(languages), "")]
        known = [files for files in found if files is not None]
        return known if len(known) == len(found) else None

    def _language_word_files(self, root: Path, group: str) -> dict[str, int] | None:
        """One language's word masks ("": the extension-less files), read once."""
        if group not in self._word_files:
            paths = self._files_by_language.get(group, [])
            self._word_files[group] = read_word_files(root, paths, self.vocabulary)
        return self._word_files[group]

    @cached_property
    def _files_by_language(self) -> dict[str, list[str]]:
        files: dict[str, list[str]] = {}
        for path in self.paths:
            language = scanned_language(path, self.scanned_extensions)
            language = language or ("" if "." not in path.rsplit("/", 1)[-1] else None)
            if language is not None:
                files.setdefault(language, []).append(path)
        return files

    def detected(self, family: Family) -> list[str]:
        return sorted(m for m in family.members if m in self.technologies or m in self.dependency_names)


def read_word_files(
    root: Path, paths: Iterable[str], vocabulary: frozenset[str] | None = None
) -> dict[str, int] | None:
    """Each word of the files at ``paths`` below ``root`` (only those of ``vocabulary``,
    when given) with the bit mask of the files holding it (bit i: the i-th path), or None
    when one cannot be read in full (links are passed over) or they hold more than
    MAX_WORDS_TOTAL_BYTES."""
    files: dict[str, int] = {}
    total = 0
    for bit, path in enumerate(paths):
        # a workspace may be hostile: no symlinks, FIFOs or devices, at most the cap read
        data = read_beneath(root, path, MAX_WORDS_BYTES + 1)
        if data is None and (root / path).is_symlink():
            continue  # semgrep scans no linked file either
        total += 0 if data is None else len(data)
        if data is None or len(data) > MAX_WORDS_BYTES or total > MAX_WORDS_TOTAL_BYTES:
            return None
        words = file_words(data.decode("utf-8", "replace"))
        for word in words if vocabulary is None else words & vocabulary:
            files[word] = files.get(word, 0) | 1 << bit
    return files


def terraform_providers(root: Path, paths: Iterable[str]) -> frozenset[str] | None:
    """The provider names the HCL files among ``paths`` use (see _TF_PROVIDERS), or None when
    one cannot be read in full, or a Terraform JSON file (``*.tf.json``) names them in a
    shape not read here: then no family is decided by files."""
    names: set[str] = set()
    for path in paths:
        if path.endswith(".tf.json"):
            return None
        if language_of(path) != "hcl":
            continue
        # a workspace may be hostile: no symlinks, FIFOs or devices, at most the cap read
        head = read_beneath(root, path, MAX_TERRAFORM_BYTES + 1)
        if head is None or len(head) > MAX_TERRAFORM_BYTES:
            return None
        text = head.decode("utf-8", "replace")
        names.update(name.lower() for match in _TF_PROVIDERS.findall(text) for name in match if name)
    return frozenset(names)


def _is_script(path: str, folders: frozenset[str]) -> bool:
    folder, _, name = path.rpartition("/")
    return bool(folder) and "." not in name and not folders.isdisjoint(folder.split("/"))


@dataclass(frozen=True)
class Labels:
    """A model's probabilities read against thresholds and the uncertainty band."""

    probabilities: dict[str, float]
    thresholds: dict[str, float]

    def threshold(self, label: str) -> float:
        """The label's threshold; a label the thresholds do not name gets the untuned 0.5."""
        return self.thresholds.get(label, UNTUNED_THRESHOLD)

    def state(self, label: str) -> str:
        """'present', 'uncertain' (kept), or 'absent'; 'uncertain' for a label the model lacks."""
        p = self.probabilities.get(label)
        if p is None:
            return "uncertain"
        return label_state(p, self.threshold(label), UNCERTAIN_RATIO)

    def describe(self, label: str) -> str:
        p = self.probabilities.get(label)
        if p is None:
            return f"{label} not predicted by the model"
        t = self.threshold(label)
        return f"{label} {p:.2f} (threshold {t:.2f}, uncertain from {UNCERTAIN_RATIO * t:.2f})"


@dataclass(frozen=True)
class Decision:
    """Whether a query is kept, and the reason (drop reason, or conservative keep note)."""

    kept: bool
    reason: str = ""
    uncertain: bool = False
    """A gate kept the query only because a label was uncertain (a conservative keep)."""


class Decider:
    """Applies a policy to one project (and optionally a model's labels), query by query."""

    def __init__(
        self, policy: Policy, project: Project, engine: str, labels: Labels | None, read_words: bool = True
    ) -> None:
        self.policy = policy
        self.read_words = read_words
        self.project = project
        self.labels = labels
        self.equivalents = policy.language_equivalents.get(engine, {})
        own_files = policy.engine_language_files.get(engine, {})
        self.language_files = {**policy.language_files, **own_files}
        self.own_languages = frozenset(own_files)

    def languages(self, query: Query) -> list[str]:
        """The query's languages as the policy names them (an engine's own file-recognised
        languages, such as checkov's ``terraform`` framework, are not aliased)."""
        own, alias = self.own_languages, self.policy.language
        return [lang if lang in own else alias(lang) for lang in query.languages]

    def _generic(self, languages: list[str]) -> bool:
        return any(lang in self.policy.generic_languages for lang in languages)

    def language_drop(self, query: Query) -> str:
        """The drop reason of the language step alone ('' when a matching file exists)."""
        languages = self.languages(query)
        return self._language(query, languages, self._generic(languages))

    def decide(self, query: Query) -> Decision:
        languages = self.languages(query)
        generic = self._generic(languages)
        drop = self._language(query, languages, generic) or self._words(query, languages, generic)
        if drop:
            return Decision(False, drop)
        notes: list[str] = []
        gate = self._gates(query, languages)
        if gate is not None and not gate.kept:
            return gate
        drop, certain = self._technology(query, languages, generic, notes)
        if gate is not None and drop and not certain:  # a label that holds (or may) re-admits it
            return Decision(True, f"{gate.reason}; else dropped: {drop}")
        if drop:  # a label says what kind of project, not which of a certain family's members
            return Decision(False, drop if gate is None else f"{drop}; not re-admitted by {gate.reason}")
        if gate is not None and gate.uncertain:
            notes.insert(0, gate.reason)
        return Decision(True, "; ".join(notes))

    # step 1 ----------------------------------------------------------------------------

    def _language(self, query: Query, languages: list[str], generic: bool) -> str:
        """The drop reason of the language step, or '' when a matching file exists."""
        if not languages:
            return ""  # no language declared: nothing to rule out
        scope: frozenset[str] | None = None
        if not generic:
            wanted: set[str] = set()
            for lang in languages:
                if lang in self.language_files:
                    if self.project.has_file(self.language_files[lang]):
                        wanted.add(lang)
                    continue
                if lang not in DETECTABLE_LANGUAGES:
                    return ""  # cannot be seen from file names: keep
                wanted.update(self.equivalents.get(lang, (lang,)))
            present = wanted & self.project.languages
            file_languages = {lang for lang in languages if lang in self.language_files} & wanted
            if not present and not file_languages:
                return f"language {', '.join(dict.fromkeys(languages))} not in the project"
            if not query.include and not query.exclude:
                return ""
            scope = None if file_languages else frozenset(present)
        if not self.project.paths:
            return "the project has no files"
        if (query.include or query.exclude) and not self.project.has_file(
            query.include or ("*",), query.exclude, scope
        ):
            paths = f"include {list(query.include)}, exclude {list(query.exclude)}"
            return f"no file matches its paths ({paths})"
        return ""

    # step 2 ----------------------------------------------------------------------------

    def _words(self, query: Query, languages: list[str], generic: bool) -> str:
        """The drop reason of the words step: '' unless no one file the query can scan holds
        the words its patterns need, whether a word is in no file or the words are spread
        over several (known only for code languages, with the project's folder)."""
        if query.needs is None or not languages or generic or not self.read_words:
            return ""
        wanted: set[str] = set()
        for lang in languages:
            if lang in self.language_files or lang not in DETECTABLE_LANGUAGES:
                return ""  # files recognised otherwise: their words are not read
            wanted.update(self.equivalents.get(lang, (lang,)))
        groups = self.project.word_files(frozenset(wanted))
        if groups is None or any(files_meeting(query.needs, files) for files in groups):
            return ""
        kinds = "/".join(sorted(wanted))
        missing = unmet_words(query.needs, frozenset().union(*groups))
        if missing:
            return f"cannot match: no {kinds} file holds a word its patterns need ({_listed(missing)})"
        needed = _listed(sorted(needed_words(query.needs)))
        return f"cannot match: no {kinds} file {WORDS_APART} ({needed})"

    # step 3 ----------------------------------------------------------------------------

    def _tag_families(
        self, query: Query, languages: list[str], generic: bool, named_only: bool = False
    ) -> dict[str, list[Family]]:
        """Gating families per technology tag (tags no family lists are neutral). With
        ``named_only``, a tag counts only when the query's patterns (if known) name it."""
        found: dict[str, list[Family]] = {}
        for raw in query.technologies:
            tag = self.policy.technology(raw)
            if named_only and query.patterns is not None and not self._named(query.patterns, raw, tag):
                continue  # its patterns name no such library, so they can match any code
            families = [
                f
                for f in self.policy.families_of_tag.get(tag, ())
                if (not f.languages or f.languages & set(languages)) and (not generic or f.files)
            ]
            if families:
                found[tag] = families
        return found

    def _named(self, patterns: str, raw: str, tag: str) -> bool:
        """Whether a rule's patterns name a technology (its tag, an alias of it, or a member of
        one of its families) as a module: a quoted module name (``'flask'``,
        ``"google_storage_bucket"``), a qualified name (``flask.request``) or an import.
        Only then can the tag gate the rule without a miss: semgrep's i18next rules, tagged
        react, match ``i18n.t(...)`` of any library."""
        names = {raw, tag, *self.policy.aliases_of.get(tag, ())}
        names |= {m for family in self.policy.families_of_tag.get(tag, ()) for m in family.members}
        return any(_names_module(patterns, name) for name in names)

    def _gates(self, query: Query, languages: list[str]) -> Decision | None:
        """None when no gate applies or no model is loaded; else drop, or keep with a note
        (a note means a label re-admits the query past the technology step)."""
        if self.labels is None:
            return None
        families = {f.name for fams in self._tag_families(query, languages, False).values() for f in fams}
        for gate in self.policy.gates:
            matched = (
                families & gate.families
                or set(languages) & gate.languages
                or any(fnmatch.fnmatchcase(query.id, pattern) for pattern in gate.id_patterns)
            )
            if not matched or (gate.and_cwe and not set(query.cwe) & gate.and_cwe):
                continue
            states = {label: self.labels.state(label) for label in gate.labels}
            if "present" in states.values():
                holding = [label for label, s in states.items() if s == "present"]
                return Decision(True, f"{gate.name}: model says {', '.join(holding)}")
            if "uncertain" in states.values():
                unsure = [self.labels.describe(label) for label, s in states.items() if s == "uncertain"]
                return Decision(True, f"{gate.name}: label uncertain, kept ({'; '.join(unsure)})", True)
            if self.project.has_file(gate.evidence):
                return None
            absent = "; ".join(self.labels.describe(label) for label in gate.labels)
            return Decision(False, f"{gate.name} query ({gate.why}); model: {absent}")
        return None

    # step 4 ----------------------------------------------------------------------------

    def _technology(
        self, query: Query, languages: list[str], generic: bool, notes: list[str]
    ) -> tuple[str, bool]:
        """The drop reason of the technology step, or '' (notes get conservative keeps), and
        whether the drop is certain: every family of the tag is decided by files read in full."""
        for tag, families in self._tag_families(query, languages, generic, named_only=True).items():
            unknown = []
            for family in families:
                if self.project.detected(family) or self.project.has_file(family.files):
                    break
                if self._unknown(family):
                    unknown.append(family)
            else:
                if unknown:
                    ecosystems = sorted({e for f in unknown for e in f.ecosystems})
                    notes.append(f"technology {tag}: no {'/'.join(ecosystems)} manifest, frameworks unknown")
                    continue
                names = ", ".join(f.name for f in families)
                if all(self._decided(f) for f in families):
                    read = "/".join(sorted({e for f in families for e in f.ecosystems}))
                    return (
                        f"technology {tag} not detected (family {names}: no member in any {read} file)",
                        True,
                    )
                return f"technology {tag} not detected (family {names}: no member, no evidence file)", False
        return "", False

    def _decided(self, family: Family) -> bool:
        """The family's absence is certain: every file of its ecosystems was read."""
        return family.decided_by_files and self.project.read_in_full.issuperset(family.ecosystems)

    def _unknown(self, family: Family) -> bool:
        """No manifest could show a member, yet the project has code that would need one."""
        if not family.ecosystems or set(family.ecosystems) & self.project.ecosystems or self._decided(family):
            return False
        languages = set().union(*(self.policy.ecosystem_languages.get(e, ()) for e in family.ecosystems))
        return bool(languages & self.project.languages)


def decide_all(
    queries: Iterable[Query],
    analysis: Analysis,
    engine: str,
    labels: Labels | None,
    policy: Policy,
    root: Path | None = None,
    read_words: bool = True,
) -> list[tuple[Query, Decision]]:
    """Each query with its decision, in catalog order; ``root``, the project's folder, lets
    the policy read its Terraform files (see Project.from_analysis) and, unless
    ``read_words`` is off (the bench measures that step on its own), every file's words."""
    queries = list(queries)
    vocabulary = frozenset().union(*(needed_words(q.needs) for q in queries if q.needs is not None))
    project = Project.from_analysis(analysis, policy, root, vocabulary)
    decider = Decider(policy, project, engine, labels, read_words)
    return [(q, decider.decide(q)) for q in queries]


def _listed(words: list[str]) -> str:
    """At most six words of a reason, then an ellipsis."""
    return ", ".join(words[:6]) + (", ..." if len(words) > 6 else "")
