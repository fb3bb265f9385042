"""The words a semgrep rule needs: identifiers its patterns name, which any file the rule
matches must hold.

A pattern that names an identifier (``require($X)``, ``$RES.set(...)``) matches only code
where that identifier occurs. semgrep checks this file by file for most rules (its
prefilter), but it runs a taint rule's dataflow on every file of the rule's languages:
those are the rules that cost most on projects where they cannot fire. A rule whose needs
no file of its languages meets is left out by the policy, and semgrep never loads it.

What cannot be read with certainty needs nothing, so a rule is never dropped by a guess:
string literals (constant folding can build them) and their prefixes (``f"..."`` also
matches ``rf"..."``), metavariables, keywords (semgrep
matches ``function`` patterns against arrow functions), qualifiers before a dot
(``java.lang.Runtime`` matches ``Runtime``: only the last name is certain), types before a
metavariable (semgrep infers them), generics, regexes, negations and modes other than
search and taint. Words are compared in lower case (PHP and Apex names are
case-insensitive). ``bench/rule_needs_check.py`` checks every rule of a catalog against its
own positive test file.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`(?:\\.|[^`\\])*`')
_METAVARIABLE = re.compile(r"\$(?:\.\.\.)?[A-Z_][A-Z0-9_]*")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""An identifier, in a pattern and in a project's files alike."""
_QUALIFIER = re.compile(r"\s*\.\s*[A-Za-z_$]")
_TYPE = re.compile(r"\s*(?:<[^()]*>)?\s*(?:\[\s*\]\s*)*(?:\.\.\.)?\s*[&*?]?\s*\$")
_GENERIC_AFTER = re.compile(r"\s*[<>]")
_GENERIC_BEFORE = re.compile(r"<\s*$")
KEYWORDS = frozenset(
    """
    abstract alias and any array as assert async await base begin bool boolean break byte callable case
    catch chan char checked class companion const continue crate data decimal declare def default defer
    defined del delete do double dyn dynamic echo elif else elsif end enddeclare endfor endforeach endif
    endswitch endwhile ensure enum event except explicit export extends false final finally fixed float
    fn for foreach from fun func function get global go goto if impl implements implicit import in
    include include_once init inline instanceof insteadof int interface internal is lambda lazy let list
    lock long map match mod module mut nameof namespace new nil none nonlocal not null object of open
    operator or out override package params partial pass print private protected pub public raise range
    readonly record redo ref require_once rescue retry return sbyte sealed select self set short sizeof
    stackalloc static string struct super suspend switch then this throw throws trait true try type
    typeof uint ulong undefined unless unsafe unchecked until use ushort using val value var virtual void
    when where while with xor yield
    """.split()  # noqa: SIM905 - a word list reads better as text than as 180 quoted strings
)
"""Reserved words of the languages semgrep parses, lower case. Leaving a method name that
is a keyword elsewhere (``get``, ``set``, ``print``) out only weakens a rule's needs."""
REWRITING_KEYS = ("equivalences", "r2c-internal-project-depends-on")
"""Rule keys under which a match needs no word of the patterns: equivalences rewrite the
code, dependency rules match lockfiles."""
SEARCH_KEYS = ("pattern", "patterns", "pattern-either", "pattern-inside")
"""The keys of a rule or of a ``patterns`` item whose matches a finding must lie in."""


@dataclass(frozen=True)
class AllOf:
    """Every part is needed (the items of ``patterns``; a taint rule's source and sink)."""

    parts: tuple[Needs, ...]


@dataclass(frozen=True)
class AnyOf:
    """One part is enough (the alternatives of ``pattern-either``; a taint rule's sources)."""

    parts: tuple[Needs, ...]


Needs = str | AllOf | AnyOf
"""A word, all of some needs, or one of them; None (elsewhere) where nothing is certain."""


def all_of(parts: Iterable[Needs | None]) -> Needs | None:
    known = tuple(dict.fromkeys(p for p in parts if p is not None))
    return None if not known else known[0] if len(known) == 1 else AllOf(known)


def any_of(parts: Iterable[Needs | None]) -> Needs | None:
    options = tuple(dict.fromkeys(parts))
    if not options or None in options:
        return None
    return options[0] if len(options) == 1 else AnyOf(options)  # type: ignore[return-value]


def pattern_words(pattern: str) -> frozenset[str]:
    """The identifiers a code pattern names with certainty, lower case."""
    text = _METAVARIABLE.sub(" $ ", _STRINGS.sub("\0", pattern))  # \0: where a string was
    words = set()
    for match in IDENTIFIER.finditer(text):
        word, before, after = match.group(), text[: match.start()], text[match.end() :]
        if (
            word.lower() in KEYWORDS
            or after.startswith("\0")  # a string's prefix or tag (f"...", html`...`)
            or _QUALIFIER.match(after)
            or _TYPE.match(after)
            or _GENERIC_AFTER.match(after)
            or _GENERIC_BEFORE.search(before)
        ):
            continue
        words.add(word.lower())
    return frozenset(words)


def rule_needs(rule: dict[str, Any]) -> Needs | None:
    """What a semgrep rule needs in one file before it can match there, or None."""
    if any(key in rule for key in REWRITING_KEYS):
        return None
    mode = rule.get("mode", "search")
    if mode == "taint":  # a finding needs a source and a sink
        return all_of(_specs(rule.get(key)) for key in ("pattern-sources", "pattern-sinks"))
    if mode != "search":
        return None
    return next((_needs(key, rule[key]) for key in SEARCH_KEYS if key in rule), None)


def _specs(specs: Any) -> Needs | None:
    if not isinstance(specs, list) or not specs:
        return None
    return any_of(rule_needs(spec) if isinstance(spec, dict) else None for spec in specs)


def _needs(key: str, value: Any) -> Needs | None:
    if key in ("pattern", "pattern-inside"):
        return all_of(sorted(pattern_words(value))) if isinstance(value, str) else None
    if not isinstance(value, list):
        return None
    items = [_item(item) for item in value]
    if key == "patterns":  # every positive item must match; negations and filters need nothing
        return all_of(needs for key, needs in items if key in SEARCH_KEYS)
    return any_of(needs if key in SEARCH_KEYS else None for key, needs in items)  # pattern-either


def _item(item: Any) -> tuple[str, Needs | None]:
    if not isinstance(item, dict) or len(item) != 1:
        return "", None
    ((key, value),) = item.items()
    return key, _needs(key, value) if key in SEARCH_KEYS else None


def met(needs: Needs, words: frozenset[str]) -> bool:
    """Whether a file (or a set of files) holding ``words`` can meet ``needs``."""
    if isinstance(needs, str):
        return needs in words
    if isinstance(needs, AllOf):
        return all(met(part, words) for part in needs.parts)
    return any(met(part, words) for part in needs.parts)


def files_meeting(needs: Needs, files: Mapping[str, int]) -> int:
    """The files that can meet ``needs``, as a bit mask: ``files`` maps each word to the
    mask of the files holding it (bit i: file i). A rule matches inside one file, a taint
    rule's source and sink too (semgrep's open-source engine follows data within a file),
    so words spread over several files meet nothing."""
    if isinstance(needs, str):
        return files.get(needs, 0)
    masks = [files_meeting(part, files) for part in needs.parts]
    if isinstance(needs, AllOf):
        return functools.reduce(operator.and_, masks)
    return functools.reduce(operator.or_, masks)


def needed_words(needs: Needs) -> frozenset[str]:
    """Every word ``needs`` names."""
    if isinstance(needs, str):
        return frozenset({needs})
    return frozenset().union(*(needed_words(part) for part in needs.parts))


def unmet_words(needs: Needs, words: frozenset[str]) -> list[str]:
    """The needed words ``words`` lacks, for a reason a person reads (sorted, unique)."""
    if isinstance(needs, str):
        return [] if needs in words else [needs]
    found = {w for part in needs.parts if not met(part, words) for w in unmet_words(part, words)}
    return sorted(found)


def file_words(text: str) -> frozenset[str]:
    """Every identifier-like word of a file, lower case (inside strings and comments too)."""
    return frozenset(IDENTIFIER.findall(text.lower()))
