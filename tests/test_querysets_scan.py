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
    assert report["all"]["rules"] == 23
    assert 0 < report["suggested"]["rules"] < report["all"]["rules"]
    assert report["all"]["errors"] == [] and report["suggested"]["errors"] == []
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
