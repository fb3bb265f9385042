"""checkov as a query-set engine, with the real checkov: its own check list is the catalog,
the suggested config runs as it is written, and it keeps every finding of a full run.

checkov takes seconds to start, so one module fixture lists the checks once and runs
checkov twice on a small IaC project (a Terraform S3 bucket open to the world, a Dockerfile
on ``latest`` without a user, a privileged Kubernetes pod): every check, then the
suggested config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.daemon_client import start_daemon, uri
from tests.folders import write_files
from tests.querysets_fixtures import analysis_of
from treelens.daemon.protocol import SUGGEST_QUERY_SET
from treelens.model.input import Analysis
from treelens.model.querysets import Catalog, CatalogError, QuerySet, load_catalog, suggest
from treelens.model.querysets.checkov import CheckovRun, frameworks_present, parse_list, run_checkov
from treelens.model.querysets.policy import Policy

IAC = {
    "infra/versions.tf": (
        'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n'
    ),
    "infra/main.tf": (
        'provider "aws" {\n  region = "eu-west-1"\n}\n\n'
        'resource "aws_s3_bucket" "data" {\n  bucket = "treelens-data"\n  acl    = "public-read"\n}\n'
    ),
    "Dockerfile": "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl\nCOPY . /app\n",
    "deploy/app.yaml": (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n"
        "    - name: app\n      image: nginx:latest\n      securityContext:\n        privileged: true\n"
    ),
    "README.md": "# infra\n",
}
LIST = """\
| | Id | Type | Entity | Policy | IaC | Resource Link |
|-|----|------|--------|--------|-----|---------------|
| 0 | CKV_AWS_20 | resource | aws_s3_bucket | S3 Bucket has an ACL defined | Terraform | https://x |
| 1 | CKV_AWS_20 | resource | AWS::S3::Bucket | S3 Bucket has an ACL defined | Cloudformation | https://x |
| 2 | CKV_AZURE_1 | resource | azurerm_linux_virtual_machine | Azure VM uses SSH keys | Terraform | x |
| 3 | CKV2_X_1 | resource | aws_instance | a check across two clouds | Terraform | https://x |
| 4 | CKV2_X_1 | resource | google_compute_instance | a check across two clouds | Terraform | https://x |
| 5 | CKV_AZUREPIPELINES_1 | jobs | jobs | Container job uses a digest | Azure Pipelines | https://x |
| 6 | CKV_K8S_16 | resource | Pod | Container is not privileged | Kubernetes | https://x |
"""


@dataclass(frozen=True)
class Runs:
    project: Path
    analysis: Analysis
    catalog: Catalog
    query_set: QuerySet
    config: Path
    full: CheckovRun
    suggested: CheckovRun


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("checkov")
    project = root / "iac"
    write_files(project, IAC)
    analysis = analysis_of(project)
    catalog = load_catalog("checkov")
    query_set = suggest(analysis, "checkov", catalog)
    config = root / query_set.config["fileName"]
    config.write_text(query_set.config["text"], encoding="utf-8")
    return Runs(
        project, analysis, catalog, query_set, config, run_checkov(project), run_checkov(project, config)
    )


def test_the_catalog_is_the_installed_checkovs_checks(runs: Runs) -> None:
    catalog = runs.catalog
    assert catalog.engine == "checkov" and catalog.source.startswith("checkov ")
    by_id = {q.id: q for q in catalog.queries}
    assert len(by_id) > 1000, "checkov lists thousands of checks"
    assert {"terraform", "cloudformation"} <= set(by_id["CKV_AWS_20"].languages)
    assert set(by_id["CKV_K8S_16"].languages) >= {"kubernetes", "helm", "kustomize"}
    assert by_id["CKV_DOCKER_2"].languages == ("dockerfile",)


def test_the_suggested_config_runs_and_keeps_every_finding(runs: Runs) -> None:
    full, suggested = runs.full, runs.suggested
    checks = {f.check for f in full.findings}
    assert {"CKV_AWS_20", "CKV_K8S_16"} <= checks, "the known-bad bucket and pod"
    assert any(check.startswith("CKV_DOCKER_") for check in checks)
    assert set(full.findings) <= set(suggested.findings), sorted(set(full.findings) - set(suggested.findings))
    assert {"terraform", "dockerfile", "kubernetes"} <= set(suggested.frameworks), "checkov read the config"
    written = yaml.safe_load(runs.config.read_text(encoding="utf-8"))
    assert set(suggested.frameworks) <= set(written["framework"])
    assert len(written["check"]) == len(runs.query_set.selected) < len(runs.catalog)


def test_what_cannot_fire_is_dropped_with_a_reason(runs: Runs) -> None:
    result = runs.query_set.to_json()
    assert set(result) >= {"engine", "selected", "excludedCount", "totalCount", "reasons", "config"}
    assert result["excludedCount"] == len(result["reasons"]) == result["totalCount"] - len(result["selected"])
    reasons = result["reasons"]
    assert "technology azure not detected" in reasons["CKV_AZURE_1"], "only the aws provider is declared"
    assert "technology gcp not detected" in reasons["CKV_GCP_1"]
    assert reasons["CKV_GHA_1"] == "language github_actions not in the project"
    selected = set(result["selected"])
    assert {"CKV_AWS_20", "CKV_K8S_16", "CKV_DOCKER_2"} <= selected
    assert result["config"]["args"][:2] == [
        "--framework",
        ",".join(yaml.safe_load(runs.config.read_text())["framework"]),
    ]


@pytest.mark.parametrize("iac", [0.99, 0.01])
def test_the_models_labels_neither_readmit_nor_drop_checks(runs: Runs, iac: float) -> None:
    """A model that says "IaC" does not bring back the checks of a cloud the project does not
    use, and one that says "no IaC" drops nothing: checkov tells templates apart by content."""
    query_set = suggest(runs.analysis, "checkov", runs.catalog, {"iac": iac}, {"iac": 0.5})
    assert {q.id for q in query_set.selected} == {q.id for q in runs.query_set.selected}
    assert "technology gcp not detected" in query_set.reasons["CKV_GCP_1"]
    assert query_set.basis == "languages and technologies" and "gate no checkov query" in query_set.note


def test_the_frameworks_present_filter_keeps_the_cloud_checks_treelens_drops(runs: Runs) -> None:
    present = {q.id for q in frameworks_present(runs.catalog, runs.analysis, Policy.load())}
    selected = {q.id for q in runs.query_set.selected}
    assert selected <= present
    assert "CKV_AZURE_1" in present and "CKV_GHA_1" not in present


def test_an_undeclared_provider_keeps_the_cloud_checks(tmp_path: Path, runs: Runs) -> None:
    """terraform infers a provider from its resources: without any provider declared the
    cloud of a resource cannot be ruled out."""
    write_files(tmp_path, {"main.tf": 'resource "azurerm_resource_group" "rg" {\n  name = "rg"\n}\n'})
    query_set = suggest(analysis_of(tmp_path), "checkov", runs.catalog)
    kept = {q.id for q in query_set.selected}
    assert {"CKV_AZURE_1", "CKV_AWS_20"} <= kept
    assert "frameworks unknown" in query_set.conservative["CKV_AZURE_1"]


def test_the_checkov_bench_runs_its_three_arms(runs: Runs, tmp_path: Path) -> None:
    """bench/checkov_savings.py end to end on the small project: every arm runs checkov and
    Treelens misses nothing (it broke once when the semgrep bench it borrows from grew arms)."""
    from bench.checkov_savings import ARMS, measure

    row = measure("iac", runs.project, tmp_path, runs.catalog, reps=1, use_model=False)
    assert set(row["checks"]) == set(ARMS) == {"all", "languages", "suggested"}
    assert row["findings"]["all"] > 0 and row["findings"]["suggested"] == row["findings"]["all"]
    assert row["missed"] == []


def test_the_list_table_becomes_queries_by_check_id() -> None:
    queries = {q.id: q for q in parse_list(LIST)}
    assert list(queries) == sorted(queries) and len(queries) == 5
    aws = queries["CKV_AWS_20"]
    assert aws.languages[:3] == ("terraform", "terraform_json", "terraform_plan")
    assert "cloudformation" in aws.languages and aws.technologies == ("aws",), "terraform and CloudFormation"
    assert queries["CKV_AZURE_1"].technologies == ("azure",)
    assert queries["CKV2_X_1"].technologies == (), "a check across two clouds is neutral"
    assert queries["CKV_AZUREPIPELINES_1"].languages == ("azure_pipelines",)
    assert queries["CKV_K8S_16"].extra["entities"] == ["Pod"]


@pytest.mark.parametrize(
    ("executable", "message"),
    [("/nonexistent/checkov", "cannot run checkov"), ("/bin/true", "listed no checks; is it checkov?")],
)
def test_a_missing_or_wrong_checkov_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, executable: str, message: str
) -> None:
    monkeypatch.setenv("TREELENS_CHECKOV", executable)
    with pytest.raises(CatalogError, match=message) as error:
        load_catalog("checkov")
    assert "\n" not in str(error.value)


def test_checkov_takes_no_catalog_path(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="give no catalog path"):
        load_catalog("checkov", tmp_path)


@pytest.mark.asyncio
async def test_the_daemon_suggests_checkov_checks(runs: Runs, tiny_bundle: Path, tmp_path: Path) -> None:
    daemon = await start_daemon([runs.project], {"modelPath": str(tiny_bundle)})
    try:
        result = await daemon.call(SUGGEST_QUERY_SET, {"folder": uri(runs.project), "engine": "checkov"})
    finally:
        await daemon.close()
    assert result["engine"] == "checkov" and result["totalCount"] == len(runs.catalog)
    assert {"CKV_AWS_20", "CKV_K8S_16", "CKV_DOCKER_2"} <= set(result["selected"])
    assert result["config"]["format"] == "checkov-config"
    assert "technology gcp not detected" in result["reasons"]["CKV_GCP_1"], "the model re-admits nothing"
