"""Where the rules of a suggested semgrep config run: component scoping and the opt-in
vendored skip, with real semgrep on small rule sets and projects built in the test.

- ``--scope-components`` (rules folders): a rule is excluded from the components (top-level and
  manifest folders) that hold no file of its languages. It must lose nothing: shebang
  scripts, files the model text leaves out as noise (migrations) and the rule's own
  ``paths`` keep their meaning.
- ``--skip-vendored`` (off by default): vendored, generated and minified files are left
  out of every rule; the config names each pattern, and the bench reports the findings
  there apart instead of as misses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from treelens.daemon.cli import main
from treelens.daemon.scan import scan
from treelens.model.input import analyze
from treelens.model.querysets import Query, load_catalog, suggest
from treelens.model.querysets.compare import Finding, run_semgrep
from treelens.model.querysets.policy import Policy
from treelens.model.querysets.semgrep import path_scope, scoped

ROOT = Path(__file__).resolve().parents[1]

RULES = {
    "python/os-system.yaml": {
        "id": "os-system",
        "languages": ["python"],
        "message": "os.system",
        "pattern": "os.system(...)",
    },
    "python/own-paths.yaml": {
        "id": "own-paths",
        "languages": ["python"],
        "message": "subprocess with its own paths",
        "pattern": "os.system(...)",
        "paths": {"include": ["*.py"], "exclude": ["setup.py"]},
    },
    "javascript/eval.yaml": {
        "id": "eval",
        "languages": ["javascript", "typescript"],
        "message": "eval",
        "pattern": "eval(...)",
    },
    "bash/eval.yaml": {"id": "bash-eval", "languages": ["bash"], "message": "eval", "pattern": "eval $X"},
    "generic/secret.yaml": {
        "id": "aws-key",
        "languages": ["generic"],
        "message": "key",
        "pattern": "AKIAABCDEFGHIJKLMNOP",
    },
}

MONOREPO = {
    "backend/pyproject.toml": '[project]\nname = "api"\ndependencies = ["fastapi"]\n',
    "backend/app/main.py": "import os\n\ndef run(cmd):\n    os.system(cmd)\n",
    "backend/run": "#!/usr/bin/env bash\neval $1\n",
    "frontend/package.json": '{"name": "web", "dependencies": {"react": "18.0.0"}}\n',
    "frontend/src/app.ts": "export function run(code: string) {\n  return eval(code);\n}\n",
    "frontend/src/legacy.js": "function run(code) {\n  return eval(code);\n}\n",
    "frontend/.env.example": "KEY=AKIAABCDEFGHIJKLMNOP\n",
    # Python only by its shebang: scoping must read it as semgrep does
    "ops/deploy": "#!/usr/bin/env python3\nimport os\nos.system('make deploy')\n",
    # Python the model text leaves out as noise; semgrep scans it all the same
    "db/migrations/0001_initial.py": "import os\nos.system('psql -f seed.sql')\n",
    "docs/guide.md": "# Guide\n",
    "setup.py": "import os\nos.system('echo setup')\n",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if text.startswith("#!"):
            path.chmod(0o755)  # semgrep reads the shebang of executable files
    return root


def write_catalog(root: Path) -> Path:
    for name, rule in RULES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"rules": [{"severity": "WARNING", **rule}]}))
    return root


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "rules")


def suggest_config(
    capsys: pytest.CaptureFixture[str], project: Path, catalog: Path, out: Path, *flags: str
) -> dict:
    """`treelens suggest --out` with ``flags``: the JSON result of the semgrep engine."""
    argv = ["suggest", str(project), "--engine", "semgrep", "--catalog", str(catalog)]
    code = main([*argv, "--no-model", "--json", "--out", str(out), *flags])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    return json.loads(stdout)["semgrep"]


def findings(config: Path, project: Path) -> set[Finding]:
    run = run_semgrep(config.name, config.parent, project, rules=len(RULES))
    assert run.errors == (), run.errors
    return set(run.findings)


def rule_bodies(config: Path) -> dict[str, dict]:
    return {rule["id"].rsplit(".", 1)[-1]: rule for rule in json.loads(config.read_text())["rules"]}


def test_scoping_excludes_rules_from_components_without_their_languages_and_loses_nothing(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_tree(tmp_path / "monorepo", MONOREPO)
    scoped, plain = tmp_path / "scoped.json", tmp_path / "plain.json"
    result = suggest_config(capsys, project, catalog, scoped, "--scope-components")
    suggest_config(capsys, project, catalog, plain)
    assert result["config"]["scope"]["components"] == ["backend", "db", "docs", "frontend", "ops"]
    assert result["config"]["scope"]["scopedRules"] == 4  # every rule but the generic one

    bodies = rule_bodies(scoped)
    assert bodies["os-system"]["paths"] == {"exclude": ["/docs/", "/frontend/"]}  # ops/ and db/ hold Python
    assert bodies["eval"]["paths"] == {"exclude": ["/backend/", "/db/", "/docs/", "/ops/"]}
    assert bodies["bash-eval"]["paths"]["exclude"] == ["/db/", "/docs/", "/frontend/", "/ops/"]
    assert "paths" not in bodies["aws-key"], "a generic rule runs on any file: never scoped"
    # the rule's own include stays, its own exclude is extended, not replaced
    assert bodies["own-paths"]["paths"] == {
        "include": ["*.py"],
        "exclude": ["setup.py", "/docs/", "/frontend/"],
    }
    assert "paths" not in rule_bodies(plain)["os-system"], "without the flag the rules are as they are"

    found = findings(scoped, project)
    assert found == findings(plain, project), "scoping must lose no finding"
    fired = {(f.rule.rsplit(".", 1)[-1], f.path) for f in found}
    assert {
        ("os-system", "ops/deploy"),
        ("os-system", "db/migrations/0001_initial.py"),
        ("os-system", "setup.py"),
        ("eval", "frontend/src/app.ts"),
        ("bash-eval", "backend/run"),
        ("aws-key", "frontend/.env.example"),
    } <= fired
    assert ("own-paths", "setup.py") not in fired and ("own-paths", "backend/app/main.py") in fired


VENDORED = {
    "web/package.json": '{"name": "web"}\n',
    "web/src/app.js": "function run(code) {\n  return eval(code);\n}\n",
    # a vendored bundle semgrep's defaults let through (not vendor/, not *.min.js)
    "web/public/assets/plugins/jquery/jquery.js": "function globalEval(code) {\n  return eval(code);\n}\n",
    # generated code the project marks so in its own .gitattributes
    "web/gen/client.js": "function load(code) {\n  return eval(code);\n}\n",
    ".gitattributes": "web/gen/** linguist-generated=true\n*.png binary\n",
    # code its linters are told to leave alone, each ignore file read from its own folder
    "web/.eslintignore": "# generated by openapi\nsrc/generated/\n!src/generated/keep.js\n",
    "web/src/generated/api.js": "function call(code) {\n  return eval(code);\n}\n",
    "web/biome.json": '{"files": {"includes": ["**", "!**/src/legacy/**/*"]}}\n',
    "web/src/legacy/old.js": "function old(code) {\n  return eval(code);\n}\n",
    "api/pyproject.toml": '[project]\nname = "api"\n\n[tool.ruff]\nextend-exclude = ["migrations"]\n',
    "api/migrations/0001_init.py": "import os\nos.system('psql')\n",
}
SKIPPED_FILES = {
    "web/public/assets/plugins/jquery/jquery.js",
    "web/gen/client.js",
    "web/src/generated/api.js",
    "web/src/legacy/old.js",
    "api/migrations/0001_init.py",
}


def test_skip_vendored_is_opt_in_and_names_what_it_leaves_out(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_tree(tmp_path / "site", VENDORED)
    default, skipping = tmp_path / "default.json", tmp_path / "skipping.json"
    assert "scope" not in suggest_config(capsys, project, catalog, default)["config"], "off by default"
    result = suggest_config(capsys, project, catalog, skipping, "--skip-vendored")
    scope = result["config"]["scope"]
    assert scope["skipped"] == [
        {"pattern": "/web/public/assets/plugins/", "source": "policy vendored list", "files": 1},
        {"pattern": "/web/gen/", "source": ".gitattributes", "files": 1},
        {"pattern": "/api/migrations/", "source": "api/pyproject.toml", "files": 1},
        {"pattern": "/web/src/generated/", "source": "web/.eslintignore", "files": 1},
        {"pattern": "/web/src/legacy/", "source": "web/biome.json", "files": 1},
    ]
    assert scope["skippedFiles"] == len(SKIPPED_FILES)
    everything = {f.path for f in findings(default, project)}
    assert SKIPPED_FILES | {"web/src/app.js"} <= everything
    assert {f.path for f in findings(skipping, project)} == everything - SKIPPED_FILES


def test_skip_vendored_with_a_rules_index_goes_into_the_arguments(tmp_path: Path) -> None:
    """An index has no rule bodies to carry excludes: the skip becomes --exclude arguments."""
    project = write_tree(tmp_path / "site", VENDORED)
    index = tmp_path / "index.jsonl"
    index.write_text(json.dumps({"id": "eval", "path": "javascript/eval.yaml", "languages": ["javascript"]}))
    tree = scan(project, use_git=False).tree
    query_set = suggest(analyze(tree), "semgrep", load_catalog("semgrep", index))
    config = scoped(query_set, tree, project, components=True, skip_vendored=True).config
    assert config["args"][:2] == ["--config", "javascript/eval.yaml"]
    assert config["args"][2:6] == ["--exclude", "/web/public/assets/plugins/", "--exclude", "/web/gen/"]
    unscoped = scoped(query_set, tree, project, components=True).config
    assert unscoped == query_set.config, "no scoping without rule bodies"


def test_bench_reports_vendored_findings_apart_and_each_arm_on_its_own(tmp_path: Path, catalog: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.scan_savings import ARMS, measure

    project = write_tree(tmp_path / "site", {**VENDORED, **MONOREPO})
    row = measure("site", project, tmp_path, catalog, reps=1, use_model=False)
    assert ARMS == ("all", "languages", "nowords", "anyfile", "suggested", "scoped", "skipped", "fired")
    assert row["rules"]["nowords"] >= row["rules"]["anyfile"] >= row["rules"]["suggested"]
    assert row["findings"]["scoped"] == row["findings"]["suggested"] == row["findings"]["all"]
    assert row["findings"]["fired"] == row["findings"]["all"], "the ceiling loses nothing"
    assert 0 < row["rules"]["fired"] <= row["rules"]["all"]
    assert row["vendoredFindings"] == 6  # one eval in each of four JS files, two rules on the migration
    assert row["findings"]["skipped"] == row["findings"]["all"] - 6
    treelens_arms = ("nowords", "anyfile", "suggested", "scoped", "skipped")
    assert all(row["missedBy"][arm] == [] for arm in treelens_arms), "vendored findings are not misses"
    assert len(row["skipped"]["skipped"]) == 5
    assert row["errors"] == []


def test_generic_and_unknown_language_rules_are_never_scoped(tmp_path: Path, catalog: Path) -> None:
    project = write_tree(tmp_path / "monorepo", MONOREPO)
    scope = path_scope(scan(project, use_git=False).tree, project, Policy.load())
    rules = {q.name: q for q in load_catalog("semgrep", catalog).queries}
    assert scope.scope_excludes(rules["aws-key"]) == ()
    unknown = Query(id="x", engine="semgrep", languages=("cairo",))
    assert scope.scope_excludes(unknown) == (), "a language no file name shows cannot be ruled out"
