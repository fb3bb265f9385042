"""Engine outputs (semgrep config, CodeQL suite, bandit selection) and `treelens suggest`.

The bandit selection is checked by running the real bandit with it; the semgrep merged
config by semgrep itself in tests/test_querysets_scan.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.querysets_fixtures import FIXTURES, RULES, analysis_of, copy_project
from tests.shared_data import DATA_DIR
from treelens.daemon.cli import main
from treelens.model.input import analyze
from treelens.model.labels import LABELS
from treelens.model.querysets import load_catalog, suggest
from treelens.model.tree import ProjectTree

INDEX = DATA_DIR / "semgrep-rules-index.jsonl"


@pytest.fixture
def flask_app(tmp_path: Path) -> Path:
    return copy_project("flask_app", tmp_path)


def test_semgrep_merged_config_holds_the_selected_rules_under_their_check_ids(flask_app: Path) -> None:
    catalog = load_catalog("semgrep", RULES)
    result = suggest(analysis_of(flask_app), "semgrep", catalog)
    config = result.config
    assert config["format"] == "semgrep-rules" and config["args"] == ["--config", "treelens-semgrep.json"]
    rules = json.loads(config["text"])["rules"]
    assert [r["id"] for r in rules] == [q.id for q in result.selected]
    nginx = next(r for r in rules if r["id"] == "generic.nginx.security.insecure-ssl-version")
    assert nginx["paths"] == {"include": ["*.conf", "*.vhost", "sites-available/*", "sites-enabled/*"]}
    assert nginx["pattern-regex"] == catalog.rules[nginx["id"]]["pattern-regex"]


def test_semgrep_index_config_lists_rule_files(flask_app: Path) -> None:
    if not INDEX.is_file():
        pytest.skip(f"shared index not found at {INDEX}")
    result = suggest(analysis_of(flask_app), "semgrep", load_catalog("semgrep", INDEX))
    config = result.config
    files = config["text"].splitlines()
    assert config["format"] == "semgrep-rule-paths"
    assert "generic/nginx/security/alias-path-traversal.yaml" in files
    assert len(files) == len({q.source for q in result.selected})
    assert config["args"][:2] == ["--config", files[0]] and len(config["args"]) == 2 * len(files)


def test_codeql_suite_selects_the_kept_ids_from_their_packs(flask_app: Path) -> None:
    catalog = load_catalog("codeql", FIXTURES / "codeql")
    result = suggest(analysis_of(flask_app), "codeql", catalog, name="flask_app")
    suite = yaml.safe_load(result.config["text"])
    assert suite[0] == {"description": "Treelens: 4 of 5 codeql queries for flask_app"}
    assert suite[1:3] == [
        {"queries": ".", "from": "acme/javascript-queries"},
        {"queries": ".", "from": "acme/python-queries"},
    ], "the java pack holds no kept query"
    assert suite[3] == {"include": {"id": [q.id for q in result.selected]}}
    assert result.config["fileName"].endswith(".qls")


def bandit_findings(target: Path, *args: str) -> set[tuple[str, str, int]]:
    done = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-f", "json", "-r", str(target), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    return {(r["test_id"], Path(r["filename"]).name, r["line_number"]) for r in report["results"]}


def test_bandit_selection_runs_the_same_as_t_list_and_config_file(flask_app: Path, tmp_path: Path) -> None:
    catalog = load_catalog("bandit")
    on_flask = suggest(analysis_of(flask_app), "bandit", catalog)
    assert len(on_flask.selected) == len(catalog), "a Flask app can trigger every bandit test"
    everything = bandit_findings(flask_app)
    assert {"B201", "B602", "B506"} <= {test for test, _, _ in everything}
    assert bandit_findings(flask_app, *on_flask.config["args"]) == everything

    cli_tree = ProjectTree.from_paths(["pyproject.toml", "tool.py"])
    cli_tree.manifests["pyproject.toml"] = '[project]\nname = "tool"\ndependencies = ["click"]\n'
    on_cli = suggest(analyze(cli_tree), "bandit", catalog)
    config = tmp_path / on_cli.config["fileName"]
    config.write_text(on_cli.config["text"])
    with_list = bandit_findings(flask_app, *on_cli.config["args"])
    assert with_list == bandit_findings(flask_app, "-c", str(config)), "-t list and config file agree"
    assert with_list == {f for f in everything if f[0] not in on_cli.reasons}, "only the kept tests ran"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_suggest_json_is_keyed_by_engine(flask_app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "suggest",
        str(flask_app),
        "--engine",
        "semgrep",
        "--engine",
        "bandit",
        "--catalog",
        f"semgrep={RULES}",
        "--no-model",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"semgrep", "bandit"}
    semgrep = data["semgrep"]
    assert semgrep["totalCount"] == 23 and len(semgrep["selected"]) + semgrep["excludedCount"] == 23
    assert "generic.nginx.security.alias-path-traversal" in semgrep["selected"]
    assert semgrep["reasons"]["terraform.azure.security.azure-storage-https-only"] == (
        "language hcl not in the project"
    )
    assert semgrep["basis"] == "languages and technologies" and "--no-model" in semgrep["note"]


def test_suggest_writes_the_config_and_summarises(
    flask_app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "suggested.yml"
    code, out, _ = run_cli(
        capsys,
        "suggest",
        str(flask_app),
        "--engine",
        "semgrep",
        "--catalog",
        str(RULES),
        "--no-model",
        "--out",
        str(out_file),
    )
    assert code == 0
    assert out.startswith("semgrep: 10 of 23 queries kept, 13 dropped")
    assert f"written to {out_file}" in out
    assert len(yaml.safe_load(out_file.read_text())["rules"]) == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "codeql"], "codeql needs a catalog"),
        (["--engine", "bandit", "--catalog", "x"], "installed bandit package"),
        (["--engine", "semgrep", "--engine", "bandit", "--out", "f"], "give exactly one --engine"),
        (["--engine", "semgrep", "--engine", "codeql", "--catalog", "x"], "write ENGINE=PATH"),
        (["--engine", "semgrep", "--catalog", "/no/such/rules"], "not a semgrep rules folder"),
    ],
)
def test_suggest_errors_are_one_line(
    args: list[str], message: str, flask_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "suggest", str(flask_app), "--no-model", *args)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1


def suggest_semgrep_json(capsys: pytest.CaptureFixture[str], app: Path, model: Path) -> dict:
    """`treelens suggest APP --engine semgrep --json` with the test rules and ``model``."""
    flags = ["--engine", "semgrep", "--catalog", str(RULES), "--model", str(model), "--json"]
    code, out, _ = run_cli(capsys, "suggest", str(app), *flags)
    assert code == 0
    return json.loads(out)["semgrep"]


def test_suggest_with_a_broken_model_falls_back_and_says_so(
    flask_app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = suggest_semgrep_json(capsys, flask_app, tmp_path / "none")
    assert result["basis"] == "languages and technologies"
    assert result["note"].startswith("no model (") and str(tmp_path / "none") in result["note"]


def test_suggest_with_a_real_model_uses_its_labels(
    flask_app: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = suggest_semgrep_json(capsys, flask_app, tiny_bundle)
    assert result["basis"] == "model, languages and technologies"
    assert result["note"].startswith("model ")
    assert set(result["labelStates"]) == set(LABELS)
    assert set(result["labelStates"].values()) <= {"present", "uncertain", "absent"}
