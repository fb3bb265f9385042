"""`treelens scan-compare`: real semgrep runs (every rule, then the suggested set) on the
fixture projects with the fixture rule set.

The suggested set must be smaller and miss nothing; the fixtures are written so that the
loss-case rules really fire (nginx .conf in the Flask app, the flask-tagged template rule
on Django templates, browser and js-tagged rules on the Flask app's one JS file, the
secrets rule on its README). Speed is asserted as rule counts; timings belong in
bench/scan_savings.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.querysets_fixtures import PROJECTS, RULES, copy_project
from treelens.daemon.cli import main
from treelens.daemon.scan import scan
from treelens.model.input import analyze, describe

LOSS_CASE_FINDINGS = {
    "flask_app": {
        "generic.nginx.security.insecure-ssl-version",
        "generic.nginx.security.alias-path-traversal",
        "javascript.browser.security.insecure-innerhtml",
        "javascript.lang.correctness.eqeq-is-bad",
        "generic.secrets.security.detected-aws-access-key-id-value",
    },
    "django_site": {"python.flask.security.xss.template-unescaped-with-safe"},
    "react_app": {"typescript.react.security.react-dangerouslysetinnerhtml"},
    "terraform_infra": {
        "terraform.aws.security.aws-s3-bucket-public-acl",
        "yaml.kubernetes.security.privileged-container",
        "yaml.github-actions.security.run-shell-injection",
    },
}


def write_rules(path: Path, *rules: dict) -> None:
    """A semgrep rule file holding ``rules`` (severity WARNING)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"rules": [{"severity": "WARNING", **rule} for rule in rules]}))


def scan_compare(capsys: pytest.CaptureFixture[str], project: Path, rules: Path) -> dict:
    code = main(["scan-compare", str(project), "--catalog", str(rules), "--no-model", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name", PROJECTS)
def test_suggested_set_is_smaller_and_misses_nothing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = scan_compare(capsys, copy_project(name, tmp_path), RULES)
    assert report["all"]["rules"] == 23 and report["form"] == "one merged JSON rules file per arm"
    assert 0 < report["suggested"]["rules"] <= report["languagesPresent"]["rules"] < report["all"]["rules"]
    assert (
        report["all"]["errors"] == report["languagesPresent"]["errors"] == report["suggested"]["errors"] == []
    )
    assert (
        report["languagesMissed"] == []
        and report["languagesPresent"]["findings"] == report["all"]["findings"]
    )
    assert report["all"]["findings"] > 0
    assert report["missed"] == []
    assert report["suggested"]["findings"] == report["all"]["findings"]
    assert LOSS_CASE_FINDINGS[name] <= set(report["suggested"]["rulesFired"]), "the loss-case rules fire"
    assert report["all"]["seconds"] > 0 and report["suggested"]["seconds"] > 0


def test_missed_findings_are_listed_one_by_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A framework the code imports but the manifest does not list (a known limit: the
    policy trusts a manifest that lists other packages): the flask rule is dropped, and
    scan-compare names each finding it would have made."""
    write_rules(
        tmp_path / "rules" / "python" / "flask" / "security" / "template-string.yaml",
        {
            "id": "render-template-string",
            "languages": ["python"],
            "message": "template built from a string",
            "pattern": "flask.render_template_string(...)",
            "metadata": {"category": "security", "technology": ["flask"]},
        },
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("click\n")
    code = "import flask\n\n\ndef page(x):\n    return flask.render_template_string(x)\n"
    (project / "app.py").write_text(code)
    report = scan_compare(capsys, project, tmp_path / "rules")
    missed = report["missed"]
    rule = "python.flask.security.render-template-string"
    assert [(m["rule"], m["path"], m["line"]) for m in missed] == [(rule, "app.py", 5)]
    assert missed[0]["message"] == "template built from a string"
    assert report["reasons"][rule].startswith("technology flask not detected")
    assert report["suggested"]["findings"] == report["all"]["findings"] - 1 == 0


def test_shebang_scripts_keep_their_language_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """semgrep runs bash rules on an extension-less script with a shell shebang (`mvnw`, a
    miss of the real-repository bench): the scanner reads shebangs, so the policy keeps
    them; the model text does not change."""
    write_rules(
        tmp_path / "rules" / "bash" / "lang" / "correctness" / "unquoted-expansion.yaml",
        {
            "id": "unquoted-expansion",
            "languages": ["bash"],
            "message": "rm of an unquoted expansion",
            "pattern": "rm -rf $X",
            "metadata": {"category": "correctness"},
        },
    )
    project = copy_project("flask_app", tmp_path)
    (project / "cleanup").write_text("#!/usr/bin/env sh\nrm -rf $1\n")
    (project / "cleanup").chmod(0o755)
    tree = scan(project).tree
    assert tree.scripts == {"cleanup": "bash"}
    assert analyze(tree).script_languages == ("bash",) and "bash" not in analyze(tree).languages
    languages_line = next(line for line in describe(tree).text.splitlines() if line.startswith("# languages"))
    assert "bash" not in languages_line, "shebangs stay out of the model text"
    report = scan_compare(capsys, project, tmp_path / "rules")
    assert report["all"]["findings"] == report["suggested"]["findings"] == 1 and report["missed"] == []


def test_php_templates_keep_php_rules_and_their_words_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """semgrep scans `.phtml` as PHP (its own language table): a rule that fires only in a
    template is kept by the language step and by the words step, which reads the template."""
    write_rules(
        tmp_path / "rules" / "php" / "lang" / "security" / "echoed-request.yaml",
        {
            "id": "echoed-request",
            "languages": ["php"],
            "message": "request data echoed without escaping",
            "pattern": "echo $_GET[...];",
            "metadata": {"category": "security"},
        },
    )
    project = copy_project("flask_app", tmp_path)
    (project / "views").mkdir()
    (project / "views" / "page.phtml").write_text("<p>Hello <?php echo $_GET['name']; ?></p>\n")
    report = scan_compare(capsys, project, tmp_path / "rules")
    assert report["all"]["findings"] == report["suggested"]["findings"] == 1 and report["missed"] == []


def test_rules_naming_no_library_are_not_gated_on_their_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """semgrep-rules' i18next rules are tagged react but match `i18n.t('...')` of any
    library: on a NestJS-style app without React they fire, so they are kept. A react rule
    whose patterns import react stays gated."""
    write_rules(
        tmp_path / "rules" / "typescript" / "react" / "i18n-key.yaml",
        {
            "id": "i18n-key-format",
            "languages": ["typescript", "javascript"],
            "message": "translation key format",
            "patterns": [
                {"pattern": "$I18N.t('$KEY')"},
                {"metavariable-regex": {"metavariable": "$I18N", "regex": "(^i18n|i18next$)"}},
            ],
            "metadata": {"category": "portability", "technology": ["react", "i18next"]},
        },
        {
            "id": "react-import-only",
            "languages": ["typescript"],
            "message": "uses react",
            "patterns": [
                {"pattern-inside": "import $R from 'react'; ..."},
                {"pattern": "$R.createElement(...)"},
            ],
            "metadata": {"category": "correctness", "technology": ["react"]},
        },
    )
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "package.json").write_text('{"dependencies": {"@nestjs/core": "10", "nestjs-i18n": "10"}}')
    (project / "src" / "mail.service.ts").write_text("export const subject = i18n.t('confirm-email');\n")
    report = scan_compare(capsys, project, tmp_path / "rules")
    assert report["missed"] == [] and report["all"]["findings"] == 1
    assert report["suggested"]["rulesFired"] == ["typescript.react.i18n-key-format"]
    assert report["reasons"] == {}
    assert report["suggested"]["rules"] == 1, "the rule that imports react stays gated on react"


def test_rules_that_share_an_id_make_a_config_semgrep_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two rule files of one folder declaring the same id (as semgrep-rules' csharp ssrf
    rules do): the written config keeps semgrep's id for both, semgrep accepts it without a
    config error, and both rules report their finding."""
    for stem, call in (("eval-call", "eval"), ("exec-call", "exec")):
        write_rules(
            tmp_path / "rules" / "python" / "lang" / "security" / f"{stem}.yaml",
            {
                "id": "dangerous-call",
                "languages": ["python"],
                "message": f"{call} of untrusted input",
                "pattern": f"{call}(...)",
                "metadata": {"category": "security"},
            },
        )
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("import sys\neval(sys.argv[1])\nexec(sys.argv[2])\n")
    out = tmp_path / "treelens-semgrep.json"
    code = main(
        [
            "suggest",
            str(project),
            "--engine",
            "semgrep",
            "--catalog",
            str(tmp_path / "rules"),
            "--out",
            str(out),
        ]
    )
    capsys.readouterr()
    assert code == 0
    config = json.loads(out.read_text())
    assert [r["id"] for r in config["rules"]] == ["python.lang.security.dangerous-call"] * 2
    report = scan_compare(capsys, project, tmp_path / "rules")
    assert report["suggested"]["errors"] == [] and report["all"]["errors"] == []
    assert report["suggested"]["findings"] == report["all"]["findings"] == 2
    assert report["missed"] == []


def test_rules_whose_words_no_file_holds_are_left_out_and_miss_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """semgrep runs a taint rule's dataflow on every file of its languages (the costliest
    rules of the real-repository bench: `detect-non-literal-require` on a project with no
    `require`). Its sink names `require`, which no file holds: the rule is left out with the
    word in its reason, and nothing is missed. Once a file holds the word, it stays and fires."""
    rules = tmp_path / "rules"
    write_rules(
        rules / "javascript" / "audit.yaml",
        {
            "id": "non-literal-require",
            "languages": ["javascript"],
            "message": "require of request data",
            "mode": "taint",
            "pattern-sources": [{"pattern": "$REQ.query"}],
            "pattern-sinks": [{"pattern": "require(...)"}],
        },
        {"id": "eval-call", "languages": ["javascript"], "message": "eval", "pattern": "eval($X)"},
    )
    project = tmp_path / "app"
    project.mkdir()
    (project / "server.js").write_text("function handle(req) {\n  return eval(req.query.code);\n}\n")
    assert (
        main(
            ["suggest", str(project), "--engine", "semgrep", "--catalog", str(rules), "--no-model", "--json"]
        )
        == 0
    )
    reason = json.loads(capsys.readouterr().out)["semgrep"]["reasons"]["javascript.non-literal-require"]
    assert reason.startswith("cannot match: no javascript/typescript file holds") and "(require)" in reason
    report = scan_compare(capsys, project, rules)
    assert report["suggested"]["rules"] == 1 and report["missed"] == []
    assert report["suggested"]["findings"] == report["all"]["findings"] == 1
    (project / "loader.js").write_text("function load(req) {\n  return require(req.query.name);\n}\n")
    report = scan_compare(capsys, project, rules)
    assert report["suggested"]["rules"] == 2 and report["missed"] == []
    assert report["suggested"]["findings"] == report["all"]["findings"] == 2


def test_rules_whose_source_and_sink_meet_in_no_one_file_are_left_out_and_miss_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """semgrep follows a taint rule's data within one file: a source in one file and a sink
    in another never make a finding. The rule is left out saying its words are in no one
    file together, and real semgrep finds nothing it would have; once one file holds both,
    the rule stays and fires."""
    rules = tmp_path / "rules"
    write_rules(
        rules / "javascript" / "audit.yaml",
        {
            "id": "query-to-exec",
            "languages": ["javascript"],
            "message": "request data reaches exec",
            "mode": "taint",
            "pattern-sources": [{"pattern": "$REQ.query"}],
            "pattern-sinks": [{"pattern": "exec(...)"}],
        },
    )
    project = tmp_path / "app"
    project.mkdir()
    (project / "handler.js").write_text("function handle(req) {\n  return run(req.query.cmd);\n}\n")
    (project / "shell.js").write_text("function run(cmd) {\n  return exec(cmd);\n}\n")
    command = ["suggest", str(project), "--engine", "semgrep", "--catalog", str(rules), "--no-model"]
    command.append("--json")
    assert main(command) == 0
    reason = json.loads(capsys.readouterr().out)["semgrep"]["reasons"]["javascript.query-to-exec"]
    assert reason == (
        "cannot match: no javascript/typescript file holds the words its patterns need together (exec, query)"
    )
    report = scan_compare(capsys, project, rules)
    assert report["suggested"]["rules"] == 0 and report["all"]["findings"] == 0 and report["missed"] == []
    (project / "inline.js").write_text("function handle(req) {\n  return exec(req.query.cmd);\n}\n")
    report = scan_compare(capsys, project, rules)
    assert report["suggested"]["rules"] == 1 and report["missed"] == []
    assert report["suggested"]["findings"] == report["all"]["findings"] == 1
