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
import shutil
from pathlib import Path

import pytest

from daemon.cli import main
from tests.querysets_fixtures import PROJECTS, RULES, copy_project

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
    """A rule tagged with a framework the project lacks, matching plain code: dropped, and
    scan-compare names each finding it would have made."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    mistagged = rules / "python" / "aws-lambda" / "security" / "shell-output.yaml"
    mistagged.parent.mkdir(parents=True)
    mistagged.write_text(
        "rules:\n"
        "  - id: shell-output\n"
        "    languages: [python]\n"
        "    severity: WARNING\n"
        "    message: check_output with shell=True\n"
        "    pattern: subprocess.check_output(..., shell=True)\n"
        "    metadata:\n"
        "      category: security\n"
        "      technology: [aws-lambda]\n"
    )
    report = scan_compare(capsys, copy_project("flask_app", tmp_path), rules)
    missed = report["missed"]
    assert [(m["rule"], m["path"], m["line"]) for m in missed] == [
        ("python.aws-lambda.security.shell-output", "app.py", 17)
    ]
    assert missed[0]["message"] == "check_output with shell=True"
    assert report["reasons"]["python.aws-lambda.security.shell-output"].startswith(
        "technology aws-lambda not detected"
    )
    assert report["suggested"]["findings"] == report["all"]["findings"] - 1


def test_rules_that_share_an_id_make_a_config_semgrep_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two rule files of one folder declaring the same id (as semgrep-rules' csharp ssrf
    rules do): the written config keeps semgrep's id for both, semgrep accepts it without a
    config error, and both rules report their finding."""
    rules = tmp_path / "rules" / "python" / "lang" / "security"
    rules.mkdir(parents=True)
    for stem, call in (("eval-call", "eval"), ("exec-call", "exec")):
        (rules / f"{stem}.yaml").write_text(
            "rules:\n"
            "  - id: dangerous-call\n"
            "    languages: [python]\n"
            "    severity: WARNING\n"
            f"    message: {call} of untrusted input\n"
            f"    pattern: {call}(...)\n"
            "    metadata: {category: security}\n"
        )
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("import sys\neval(sys.argv[1])\nexec(sys.argv[2])\n")
    out = tmp_path / "treelens-semgrep.json"
    code = main(["suggest", str(project), "--engine", "semgrep", "--catalog", str(tmp_path / "rules")])
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
