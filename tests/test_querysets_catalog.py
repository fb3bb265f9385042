"""Catalog readers: semgrep rules folders and the semgrep-rules index, CodeQL query packs,
and bandit's installed test list."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.folders import write_files
from tests.querysets_fixtures import FIXTURES, RULES
from tests.shared_data import DATA_DIR
from treelens.model.querysets import CatalogError, load_catalog
from treelens.model.querysets.bandit import _FormatterFailures
from treelens.model.querysets.codeql import parse_header, read_packs
from treelens.model.querysets.semgrep import check_id, read_index, read_rules_dir

INDEX = DATA_DIR / "semgrep-rules-index.jsonl"


def test_rules_folder_reads_every_rule_with_its_facts() -> None:
    catalog = read_rules_dir(RULES)
    assert catalog.kind == "rules" and len(catalog) == 23
    queries = {q.id: q for q in catalog.queries}
    flask = queries["python.flask.security.xss.template-unescaped-with-safe"]
    assert flask.languages == ("regex",)
    assert flask.technologies == ("flask",)
    assert flask.category == "security" and flask.subcategory == ("audit",)
    assert flask.cwe == (79,)
    assert flask.include == ("*.html", "*.j2", "*.jinja")
    assert flask.source == "python/flask/security/xss/template-unescaped-with-safe.yaml"
    eqeq = queries["javascript.lang.correctness.eqeq-is-bad"]
    assert eqeq.languages == ("js", "ts") and eqeq.technologies == ("js",) and eqeq.category == "correctness"
    assert catalog.rules[eqeq.id]["patterns"], "the rule body is kept for the merged config"


def test_check_ids_follow_semgreps_folder_prefix() -> None:
    assert check_id("python/flask/debug.yaml", "debug-enabled") == "python.flask.debug-enabled"
    assert check_id("top.yaml", "r") == "r"


def test_rules_folder_skips_tests_hidden_folders_and_non_rule_yaml(tmp_path: Path) -> None:
    rule = "rules:\n  - id: {id}\n    languages: [python]\n    severity: INFO\n    message: m\n"
    rule += "    pattern: f()\n"
    write_files(
        tmp_path,
        {
            "a/one.yaml": rule.format(id="one"),
            "a/one.test.yaml": rule.format(id="test-rule"),
            ".github/workflow.yml": "on: push\n",
            ".hidden/two.yaml": rule.format(id="hidden"),
            "b/values.yml": "replicas: 2\n",
            "b/same.yaml": rule.format(id="one"),
            "a/again.yml": rule.format(id="one"),
        },
    )
    ids = [q.id for q in read_rules_dir(tmp_path).queries]
    assert ids == ["a.one", "a.one@one", "b.one"], "sorted by file; a repeated check id gets its file stem"


def test_bad_rules_folders_are_reported_with_the_file(tmp_path: Path) -> None:
    write_files(tmp_path, {"bad.yaml": "rules: [\n"})
    with pytest.raises(CatalogError, match=r"bad\.yaml: cannot read"):
        read_rules_dir(tmp_path)
    (tmp_path / "bad.yaml").write_text("rules:\n  - languages: [python]\n")
    with pytest.raises(CatalogError, match=r"rules\[0\] has no string 'id'"):
        read_rules_dir(tmp_path)
    (tmp_path / "bad.yaml").write_text("key: value\n")
    with pytest.raises(CatalogError, match="no semgrep rule files"):
        read_rules_dir(tmp_path)
    with pytest.raises(CatalogError, match="not a semgrep rules folder"):
        load_catalog("semgrep", tmp_path / "missing")


def test_the_shared_semgrep_rules_index_is_read_whole() -> None:
    if not INDEX.is_file():
        pytest.skip(f"shared index not found at {INDEX}")
    catalog = read_index(INDEX)
    assert catalog.kind == "index" and len(catalog) == 1967
    queries = {q.id: q for q in catalog.queries}
    nginx = queries["generic.nginx.security.alias-path-traversal"]
    assert nginx.languages == ("generic",) and nginx.technologies == ("nginx",)
    assert nginx.source == "generic/nginx/security/alias-path-traversal.yaml"
    assert queries["go.lang.security.shared-url-struct-mutation"].cwe == (436,)
    assert load_catalog("semgrep").source == str(INDEX), "the shared index is the default semgrep catalog"


def test_a_broken_index_line_is_named(tmp_path: Path) -> None:
    good = json.dumps({"id": "r", "path": "python/lang/r.yaml", "languages": ["python"]})
    index = tmp_path / "index.jsonl"
    index.write_text(f"{good}\n{{not json\n")
    with pytest.raises(CatalogError, match=r"index\.jsonl:2: not valid JSON"):
        read_index(index)


def test_codeql_header_with_multi_line_tags() -> None:
    text = (FIXTURES / "codeql" / "python" / "Security" / "SqlInjection.ql").read_text()
    header = parse_header(text)
    assert header["id"] == "py/sql-injection"
    assert header["kind"] == "path-problem"
    assert header["precision"] == "high"
    assert header["tags"].split() == ["security", "external/cwe/cwe-089"]


def test_codeql_packs_give_language_ids_tags_and_cwe() -> None:
    catalog = read_packs(FIXTURES / "codeql")
    queries = {q.id: q for q in catalog.queries}
    assert set(queries) == {
        "py/sql-injection",
        "py/flask-debug",
        "py/unused-import",
        "js/xss",
        "java/android/webview-debugging-enabled",
    }, "a .ql without @id (a test helper) is not selectable and is skipped"
    assert catalog.packs == {
        "acme/python-queries": "python",
        "acme/javascript-queries": "javascript",
        "acme/java-queries": "java",
    }
    sql = queries["py/sql-injection"]
    assert sql.languages == ("python",) and sql.cwe == (89,) and sql.category == "security"
    assert sql.extra["kind"] == "path-problem" and sql.extra["pack"] == "acme/python-queries"
    assert queries["js/xss"].languages == ("javascript",), "language from a codeql/<lang>-all dependency"
    assert queries["py/unused-import"].category == "maintainability"


def test_codeql_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"no qlpack\.yml"):
        read_packs(tmp_path)
    write_files(tmp_path, {"qlpack.yml": "name: acme/odd\n", "Q.ql": "/** @id x/y */\nselect 1\n"})
    with pytest.raises(CatalogError, match="cannot tell the pack's language"):
        read_packs(tmp_path)
    with pytest.raises(CatalogError, match="codeql needs a catalog"):
        load_catalog("codeql")


def test_bandit_catalog_is_the_installed_test_list() -> None:
    catalog = load_catalog("bandit")
    queries = {q.id: q for q in catalog.queries}
    assert catalog.source.startswith("bandit ")
    assert {"B101", "B201", "B301", "B602", "B701"} <= set(queries)
    assert "flask" in queries["B201"].technologies, "words of the test name stand in for tags"
    assert "django" in queries["B308"].technologies, "the blacklisted module names too"
    assert queries["B301"].cwe == (502,)
    assert all(q.languages == ("python",) for q in catalog.queries)
    with pytest.raises(CatalogError, match="installed bandit package"):
        load_catalog("bandit", Path("somewhere"))


def test_bandit_catalog_reads_without_formatter_noise(tmp_path: Path) -> None:
    """bandit's optional report formatters whose packages are missing (sarif without
    sarif-om, as installed here) printed "Could not load 'sarif'" on every bandit request; a
    test plugin that fails to load is still reported."""
    write_files(tmp_path, {"app.py": "import subprocess\n"})
    command = [sys.executable, "-m", "treelens.daemon.cli", "suggest", str(tmp_path), "--engine", "bandit"]
    done = subprocess.run([*command, "--no-model", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["bandit"]["totalCount"] > 60, done.stderr
    assert "Could not load" not in done.stderr, done.stderr
    quiet = _FormatterFailures()
    record = logging.LogRecord("stevedore.extension", logging.ERROR, "", 0, "Could not load %r: %s", (), None)
    record.args = ("sarif", "No module named 'sarif_om'")
    assert not quiet.filter(record)
    record.args = ("hardcoded_password_string", "No module named 'x'")
    assert quiet.filter(record)
