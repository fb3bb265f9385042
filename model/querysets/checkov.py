"""checkov's catalog (the installed checkov's own checks), its check selection, and a
real checkov run for tests and the bench.

checkov runs thousands of IaC checks across frameworks (terraform, kubernetes,
cloudformation, dockerfile, ...); ``--framework`` and ``--check`` (or the same keys in a
``--config-file``) select them. Its dependency pins (``packaging<24``,
``importlib-metadata<8``) clash with pytest and the training stack, so checkov is an
executable, not an import: ``TREELENS_CHECKOV``, else ``checkov`` on PATH, else the tool
environment ``make setup-dev`` creates (``.venv/checkov``).

The catalog is ``checkov --list``: one row per check and resource type, with the check's
IaC kind. Each query's languages are the frameworks that run it (terraform checks also run
on ``.tf.json`` and plan files, kubernetes checks inside helm charts and kustomizations,
cloudformation checks in serverless files, ARM checks on bicep); its technology tags are
the cloud of its terraform resource types (``aws_s3_bucket``: aws), which the policy reads
against the project's terraform providers.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from treelens.model.errors import TreelensError
from treelens.model.filters import OUTPUT_PREFIX
from treelens.model.guards import InputError, load_json, run_process_group, run_timed
from treelens.model.input import Analysis
from treelens.model.querysets.catalog import Catalog, CatalogError, Query
from treelens.model.querysets.policy import Decider, Policy, Project

CHECKOV_ENV = "TREELENS_CHECKOV"
CONFIG_FILE_NAME = f"{OUTPUT_PREFIX}checkov.yaml"  # left out of the tree (model/filters.py)
DEFAULT_TIMEOUT_S = 900.0
# the IaC column of `checkov --list` -> the frameworks whose runners use those checks
FRAMEWORKS_OF_KIND: dict[str, tuple[str, ...]] = {
    "terraform": ("terraform", "terraform_json", "terraform_plan"),
    "kubernetes": ("kubernetes", "helm", "kustomize"),
    "cloudformation": ("cloudformation", "serverless"),
    "arm": ("arm", "bicep"),
    "argoworkflows": ("argo_workflows",),
    "azurepipelines": ("azure_pipelines",),
}
# terraform resource type prefix -> the technology tag the policy's cloud families list
CLOUD_OF_PROVIDER = {"aws": "aws", "azurerm": "azure", "azuread": "azure", "google": "gcp"}
# resource types of the cloud-native template kinds (CloudFormation, ARM and bicep)
CLOUD_OF_TYPE_PREFIX = {"AWS::": "aws", "Microsoft.": "azure"}
CLOUD_KINDS = frozenset({"terraform", "cloudformation", "serverless", "arm", "bicep"})


class CheckovError(TreelensError):
    """checkov is missing, failed, or timed out; the message says which and what to do."""


def checkov_command(checkov: str | None = None) -> str:
    """The checkov executable: the one given, else $TREELENS_CHECKOV, else PATH, else the
    tool environment beside this Python's (``.venv/checkov/bin/checkov``)."""
    given = checkov or os.environ.get(CHECKOV_ENV)
    if given:
        return given
    found = shutil.which("checkov")
    if found:
        return found
    tool = Path(sys.prefix) / "checkov" / "bin" / "checkov"
    if tool.is_file():
        return str(tool)
    raise CatalogError(
        "checkov not found; install it in its own environment (`make setup-dev` does, or "
        f"`pipx install checkov`) and put it on PATH or in ${CHECKOV_ENV}"
    )


def _environment() -> dict[str, str]:
    """checkov offline (with ``--skip-download``): no policy mapping, no update check."""
    offline = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE", "LOG_LEVEL": "ERROR"}
    return {**os.environ, **offline}


def read_installed(checkov: str | None = None) -> Catalog:
    """Every check the installed checkov lists (read once per executable version)."""
    command = checkov_command(checkov)
    try:
        stamp = Path(shutil.which(command) or command).stat().st_mtime_ns
    except OSError as error:
        raise CatalogError(f"cannot run checkov at {command} ({error}); set ${CHECKOV_ENV}") from error
    return _read_catalog(command, stamp)


@functools.lru_cache(maxsize=4)
def _read_catalog(command: str, _stamp: int) -> Catalog:
    version = _run_text([command, "--version"]).strip()
    table = _run_text([command, "--list", "--skip-download"])
    queries = parse_list(table)
    if not queries:
        raise CatalogError(f"`{command} --list` listed no checks; is it checkov?")
    return Catalog(engine="checkov", source=f"checkov {version}", kind="installed", queries=tuple(queries))


def _run_text(command: list[str]) -> str:
    try:
        done = run_process_group(
            command, 300, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment()
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CatalogError(f"cannot run {' '.join(command)} ({error}); set ${CHECKOV_ENV}") from error
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise CatalogError(f"{' '.join(command)} failed (exit {done.returncode}): {tail}")
    return done.stdout


@dataclass
class _Check:
    name: str
    kinds: list[str]
    entities: list[str]


def parse_list(table: str) -> list[Query]:
    """Queries from ``checkov --list``'s table (``| # | Id | Type | Entity | Policy | IaC |...``):
    one row per check and entity, grouped by check id."""
    checks: dict[str, _Check] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or not cells[0].isdigit() or not cells[1]:
            continue  # the header, its rule, or anything that is not a check row
        check = checks.setdefault(cells[1], _Check(cells[4], [], []))
        kind = "_".join(cells[5].lower().split()) or "unknown"  # "Azure Pipelines": azure_pipelines
        if kind not in check.kinds:
            check.kinds.append(kind)
        check.entities.append(cells[3])
    return [_query(check_id, check) for check_id, check in sorted(checks.items())]


def _query(check_id: str, check: _Check) -> Query:
    runners = (f for kind in check.kinds for f in FRAMEWORKS_OF_KIND.get(kind, (kind,)))
    frameworks = tuple(dict.fromkeys(runners))
    return Query(
        id=check_id,
        engine="checkov",
        languages=frameworks,
        technologies=_cloud(check),
        category="security",
        name=check.name,
        extra={"frameworks": list(frameworks), "entities": sorted(set(check.entities))},
    )


def _cloud(check: _Check) -> tuple[str, ...]:
    """The one cloud all of a check's resource types belong to (``aws_s3_bucket`` and
    ``AWS::S3::Bucket``: aws), or none.

    A check of other kinds too (kubernetes, ansible) or across clouds stays neutral. The
    policy reads the tag per framework: terraform checks need the cloud's provider, and a
    check that CloudFormation or ARM runs too is also kept by any file those read.
    """
    if not set(check.kinds) <= CLOUD_KINDS:
        return ()
    clouds = {_cloud_of(entity) for entity in check.entities}
    return (clouds.pop(),) if len(clouds) == 1 and None not in clouds else ()


def _cloud_of(entity: str) -> str | None:
    for prefix, cloud in CLOUD_OF_TYPE_PREFIX.items():
        if entity.startswith(prefix):
            return cloud
    return CLOUD_OF_PROVIDER.get(entity.split("_", 1)[0])


def frameworks_present(catalog: Catalog, analysis: Analysis, policy: Policy) -> list[Query]:
    """Every check one of whose frameworks has a file in the project (the policy's file
    table for checkov: the simplest selection worth comparing against), no gates, no tags."""
    decider = Decider(policy, Project.from_analysis(analysis, policy), "checkov", None)
    return [q for q in catalog.queries if not decider.language_drop(q)]


def frameworks_of(selected: list[Query]) -> list[str]:
    """The frameworks that run the selected checks, in first-seen order."""
    return list(dict.fromkeys(f for q in selected for f in q.extra.get("frameworks", q.languages)))


def config(selected: list[Query]) -> dict[str, Any]:
    """The checkov selection: a ``--config-file`` YAML (framework and check lists) and the
    same as arguments."""
    if not selected:  # no --check would make checkov run every check
        return {
            "format": "checkov-config",
            "fileName": CONFIG_FILE_NAME,
            "text": "# no checkov check applies to this project (no IaC files): do not run checkov\n",
            "args": [],
            "note": "no checkov check applies: do not run checkov",
        }
    frameworks, checks = frameworks_of(selected), [q.id for q in selected]
    text = f"# checkov -d PATH --config-file {CONFIG_FILE_NAME}: the checks Treelens suggests\n"
    text += yaml.safe_dump({"framework": frameworks, "check": checks}, sort_keys=False)
    return {
        "format": "checkov-config",
        "fileName": CONFIG_FILE_NAME,
        "text": text,
        "args": ["--framework", ",".join(frameworks), "--check", ",".join(checks)],
    }


@dataclass(frozen=True, order=True)
class CheckovFinding:
    """One failed check, identified by check, file, resource and lines."""

    check: str
    path: str
    resource: str
    line: int
    end_line: int

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "path": self.path,
            "resource": self.resource,
            "line": self.line,
            "endLine": self.end_line,
        }


@dataclass(frozen=True)
class CheckovRun:
    """One checkov run: how long, what failed, which frameworks reported."""

    seconds: float
    findings: tuple[CheckovFinding, ...]
    frameworks: tuple[str, ...]
    cpu_seconds: float | None = None
    """User + system time of checkov and its workers: on a busy machine it says more about
    the work a selection saves than wall time (None where the platform cannot tell)."""


def run_checkov(
    target: Path,
    config_file: Path | None = None,
    *,
    checkov: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> CheckovRun:
    """Run checkov offline on ``target`` with a ``--config-file`` (none: every check)."""
    command = [checkov_command(checkov), "-d", str(target), "-o", "json", "--skip-download", "--quiet"]
    if config_file is not None:
        command += ["--config-file", str(config_file)]
    try:
        done, seconds, cpu = run_timed(
            command, timeout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment()
        )
    except subprocess.TimeoutExpired as error:
        raise CheckovError(f"checkov ran over {timeout:.0f} s on {target}; give a longer timeout") from error
    except OSError as error:
        raise CheckovError(f"cannot run checkov ({error}); set ${CHECKOV_ENV}") from error
    try:
        report = load_json(done.stdout, "checkov's output")
    except InputError:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise CheckovError(f"checkov failed (exit {done.returncode}): {tail}") from None
    reports = report if isinstance(report, list) else [report]
    findings: list[CheckovFinding] = []
    frameworks = []
    for part in reports:
        if not isinstance(part, dict) or "results" not in part:
            continue  # a summary-only report: nothing was scanned
        frameworks.append(str(part.get("check_type", "")))
        findings.extend(_finding(c) for c in part["results"].get("failed_checks", []))
    return CheckovRun(seconds, tuple(sorted(set(findings))), tuple(frameworks), cpu)


def _finding(check: dict[str, Any]) -> CheckovFinding:
    lines = check.get("file_line_range") or [0, 0]
    return CheckovFinding(
        check=str(check.get("check_id", "")),
        path=str(check.get("file_path", "")).lstrip("/"),
        resource=str(check.get("resource", "")),
        line=int(lines[0]),
        end_line=int(lines[-1]),
    )
