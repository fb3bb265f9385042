"""What a semgrep rule needs in a file before it can match (model/querysets/needs.py), and
the words a project's files hold (policy.Project.words). Real semgrep confirms the drops in
tests/test_querysets_scan.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from treelens.model.querysets import policy
from treelens.model.querysets.needs import AllOf, AnyOf, file_words, met, pattern_words, rule_needs
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


def project_at(root: Path) -> Project:
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return Project(paths, frozenset(), frozenset(), frozenset(), frozenset(), root=root)


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
    words = project_at(root).words(frozenset({"javascript", "typescript"}))
    assert words is not None and {"eval", "query", "spawnsync"} <= words
    assert "require" not in words and "pickle" not in words
    assert project_at(root).words(frozenset({"python"})) >= {"pickle"}  # type: ignore[operator]
    assert Project(["server.js"], *[frozenset()] * 4).words(frozenset({"javascript"})) is None, "no folder"


@pytest.mark.parametrize("cap", ["MAX_WORDS_BYTES", "MAX_WORDS_TOTAL_BYTES"])
def test_a_file_that_cannot_be_read_in_full_makes_the_words_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: str
) -> None:
    """One file over the cap, or the files of the languages over the total: unknown, so
    no rule is dropped for a word it lacks."""
    (tmp_path / "small.js").write_text("eval(x)\n")
    (tmp_path / "large.js").write_text("x" * 64)
    assert project_at(tmp_path).words(frozenset({"javascript"})) == {"eval", "x", "x" * 64}
    monkeypatch.setattr(policy, cap, 32 if cap == "MAX_WORDS_BYTES" else 70)
    assert project_at(tmp_path).words(frozenset({"javascript"})) is None
