"""What a semgrep rule needs in a file before it can match (model/querysets/needs.py), and
where a project's files hold them (policy.Project.word_files). Real semgrep confirms the
drops in tests/test_querysets_scan.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from treelens.model.querysets import policy
from treelens.model.querysets.needs import (
    AllOf,
    AnyOf,
    file_words,
    files_meeting,
    met,
    needed_words,
    pattern_words,
    rule_needs,
)
from treelens.model.querysets.policy import Project


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("require($X)", {"require"}),
        ("$EL.innerHTML = $VALUE", {"innerhtml"}),
        ("subprocess.call(..., shell=True)", {"call", "shell"}),
        # only the last name of a qualified one is certain (Java's implicit java.lang)
        ("java.lang.Runtime.getRuntime().exec($CMD)", {"getruntime", "exec"}),
        # a type before a metavariable can be inferred, generics too
        ("(HttpServletRequest $REQ).getParameter(...)", {"getparameter"}),
        ("List<String> $X = $Y", set()),
        # keywords: semgrep matches `function` patterns against arrow functions
        ("function ($REQ, $RES) { ... }", set()),
        # strings can be built by constant folding; a prefix or tag is not certain either
        ('open($F, "w")', set()),
        ('f"...{$X}..."', set()),
        ("$F(...)", set()),
    ],
)
def test_a_pattern_needs_only_the_names_it_certainly_matches(pattern: str, words: set[str]) -> None:
    assert pattern_words(pattern) == words


def test_rule_needs_follow_semgreps_operators() -> None:
    """`patterns` needs every positive item (negations and filters need nothing),
    `pattern-either` one alternative, a taint rule a source and a sink."""
    search = {
        "patterns": [
            {"pattern-inside": "$APP.get(...)"},
            {"pattern-either": [{"pattern": "eval($X)"}, {"pattern": "exec($X)"}]},
            {"pattern-not": "safe_eval($X)"},
            {"metavariable-regex": {"metavariable": "$X", "regex": "user"}},
        ]
    }
    assert rule_needs(search) == AnyOf(("eval", "exec"))  # `get` is a keyword (C# accessors)
    taint = {
        "mode": "taint",
        "pattern-sources": [{"pattern": "$REQ.query"}],
        "pattern-sinks": [{"pattern": "require(...)"}],
    }
    assert rule_needs(taint) == AllOf(("query", "require"))
    assert met(AllOf(("query", "require")), frozenset({"query", "require", "x"}))
    assert not met(AllOf(("query", "require")), frozenset({"query"}))


@pytest.mark.parametrize(
    "rule",
    [
        {"pattern-regex": "password\\s*="},
        {"pattern-either": [{"pattern": "eval($X)"}, {"pattern-regex": "eval"}]},
        {"mode": "join", "join": {}},
        {
            "mode": "taint",
            "pattern-sources": [{"pattern-regex": "x"}],
            "pattern-sinks": [{"pattern-regex": "y"}],
        },
        {"match": {"all": ["eval($X)"]}},
        {"equivalences": [{"equivalence": "foo($X) <==> bar($X)"}], "pattern": "bar($X)"},
    ],
    ids=["regex", "either-with-regex", "join", "taint-of-regexes", "match-syntax", "equivalences"],
)
def test_what_cannot_be_read_with_certainty_needs_nothing(rule: dict) -> None:
    assert rule_needs(rule) is None


def test_file_words_are_every_identifier_in_lower_case() -> None:
    assert file_words('const x = require("child_process"); // Exec\n') == {
        "const",
        "x",
        "require",
        "child_process",
        "exec",
    }


def test_a_rule_is_met_only_where_one_file_holds_what_it_needs() -> None:
    """Bit i of a mask is file i: a taint rule's source and sink must meet in one file."""
    needs = AllOf((AnyOf(("query", "body")), "exec"))
    assert needed_words(needs) == {"query", "body", "exec"}
    assert files_meeting(needs, {"query": 0b001, "body": 0b100, "exec": 0b110}) == 0b100
    assert files_meeting(needs, {"query": 0b001, "exec": 0b010}) == 0, "source and sink apart"
    assert files_meeting(needs, {"query": 0b001}) == 0 and files_meeting("exec", {"exec": 0b10}) == 0b10


def project_at(root: Path, vocabulary: frozenset[str] | None = None) -> Project:
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return Project(paths, *[frozenset()] * 4, root=root, vocabulary=vocabulary)


def words_of(project: Project, languages: set[str]) -> frozenset[str] | None:
    """Every word the files of ``languages`` hold, or None when they are unknown."""
    groups = project.word_files(frozenset(languages))
    return None if groups is None else frozenset().union(*groups)


def test_project_words_read_the_languages_files_and_scripts_but_not_links(tmp_path: Path) -> None:
    """A link is passed over (semgrep scans none); an extension-less script counts for every
    language (its shebang decides); other languages' files are not read."""
    root = tmp_path / "app"
    (root / "bin").mkdir(parents=True)
    (root / "server.js").write_text("eval(req.query.code)\n")
    (root / "bin" / "serve").write_text("#!/usr/bin/env node\nspawnSync(process.argv)\n")
    (root / "app.py").write_text("import pickle\n")
    (tmp_path / "outside.js").write_text("require(x)\n")
    (root / "linked.js").symlink_to(tmp_path / "outside.js")
    words = words_of(project_at(root), {"javascript", "typescript"})
    assert words is not None and {"eval", "query", "spawnsync"} <= words
    assert "require" not in words and "pickle" not in words
    assert words_of(project_at(root), {"python"}) >= {"pickle"}  # type: ignore[operator]
    assert words_of(Project(["server.js"], *[frozenset()] * 4), {"javascript"}) is None, "no folder"
    javascript, scripts = project_at(root, frozenset({"eval", "spawnsync", "pickle"})).word_files(
        frozenset({"javascript"})
    )  # type: ignore[misc]
    # only the vocabulary's words, each with its files (linked.js is bit 0, server.js bit 1)
    assert javascript == {"eval": 0b10} and scripts == {"spawnsync": 0b1}


@pytest.mark.parametrize("cap", ["MAX_WORDS_BYTES", "MAX_WORDS_TOTAL_BYTES"])
def test_a_file_that_cannot_be_read_in_full_makes_the_words_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: str
) -> None:
    """One file over the cap, or the files of the languages over the total: unknown, so
    no rule is dropped for a word it lacks."""
    (tmp_path / "small.js").write_text("eval(x)\n")
    (tmp_path / "large.js").write_text("x" * 64)
    assert words_of(project_at(tmp_path), {"javascript"}) == {"eval", "x", "x" * 64}
    monkeypatch.setattr(policy, cap, 32 if cap == "MAX_WORDS_BYTES" else 70)
    assert words_of(project_at(tmp_path), {"javascript"}) is None
