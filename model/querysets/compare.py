"""A real scan comparison: semgrep with every rule of a rules folder, then with the
suggested set, on the same project; wall time, rules, findings, and every finding the
suggested set missed.

semgrep runs offline: local configs only, metrics and the version check off. Both runs
report identical check ids: the full run uses ``--config .`` inside the rules folder,
the suggested run a merged rules file whose rule ids are those check ids.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.querysets.catalog import Catalog
from model.querysets.suggest import QuerySet

SEMGREP_ENV = {"SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}
DEFAULT_TIMEOUT_S = 600.0


class SemgrepError(Exception):
    """semgrep is missing, failed, or timed out; the message says which and what to do."""


@dataclass(frozen=True, order=True)
class Finding:
    """One semgrep result, identified by rule and exact location."""

    rule: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    message: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "endLine": self.end_line,
            "endColumn": self.end_column,
            "message": self.message,
        }


@dataclass(frozen=True)
class SemgrepRun:
    """One semgrep run: how many rules, how long, what it found, what went wrong."""

    rules: int
    seconds: float
    findings: tuple[Finding, ...]
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": self.rules,
            "seconds": round(self.seconds, 3),
            "findings": len(self.findings),
            "rulesFired": sorted({f.rule for f in self.findings}),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class Comparison:
    """Every rule vs the suggested set on one project."""

    project: str
    all_rules: SemgrepRun
    suggested: SemgrepRun
    query_set: QuerySet

    @property
    def missed(self) -> list[Finding]:
        """Findings of the full run that the suggested run did not report."""
        return sorted(set(self.all_rules.findings) - set(self.suggested.findings))

    @property
    def time_ratio(self) -> float:
        return self.all_rules.seconds / self.suggested.seconds if self.suggested.seconds else float("inf")

    def summary_lines(self) -> list[str]:
        """Both runs side by side and every missed finding, one per line."""
        a, s = self.all_rules, self.suggested
        lines = [
            f"{self.project}: semgrep, every rule vs the suggested set ({self.query_set.basis})",
            f"  every rule:    {a.rules:5d} rules  {a.seconds:7.2f} s  {len(a.findings):4d} findings",
            f"  suggested set: {s.rules:5d} rules  {s.seconds:7.2f} s  {len(s.findings):4d} findings"
            f"  ({self.time_ratio:.2f}x faster)",
        ]
        for name, run in (("every rule", a), ("suggested set", s)):
            lines += [f"  {name} error: {e}" for e in run.errors]
        missed = self.missed
        lines.append(f"  missed by the suggested set: {len(missed) or 'none'}")
        for f in missed:
            why = self.query_set.reasons.get(f.rule, "")
            lines.append(f"    {f.path}:{f.line}:{f.column} {f.rule}" + (f" (dropped: {why})" if why else ""))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "catalog": self.query_set.catalog.source,
            "basis": self.query_set.basis,
            "note": self.query_set.note,
            "all": self.all_rules.to_json(),
            "suggested": self.suggested.to_json(),
            "timeRatio": round(self.time_ratio, 3),
            "missed": [f.to_json() for f in self.missed],
            "reasons": {f.rule: self.query_set.reasons.get(f.rule, "") for f in self.missed},
        }


def semgrep_command(semgrep: str | None = None) -> str:
    """The semgrep executable: the one given, else the one beside this Python, else PATH."""
    if semgrep:
        return semgrep
    beside = Path(sys.executable).with_name("semgrep")
    if beside.is_file():
        return str(beside)
    found = shutil.which("semgrep")
    if found is None:
        raise SemgrepError(
            "semgrep not found; install it with `pip install semgrep` (or `pip install -e .[scan]`)"
        )
    return found


def run_semgrep(
    config: str,
    cwd: Path,
    target: Path,
    rules: int,
    *,
    semgrep: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> SemgrepRun:
    """Run semgrep offline with a local ``config`` (relative to ``cwd``) on ``target``."""
    command = [
        semgrep_command(semgrep),
        "scan",
        "--config",
        config,
        "--json",
        "--metrics=off",
        "--disable-version-check",
        "--quiet",
        "--timeout=0",  # no per-rule time-outs: a busy machine must not change the findings
        str(target.resolve()),
    ]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **SEMGREP_ENV},
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SemgrepError(
            f"semgrep ran over {timeout:.0f} s on {target}; give a longer --timeout"
        ) from error
    except OSError as error:
        raise SemgrepError(f"cannot run semgrep ({error}); install it with `pip install semgrep`") from error
    seconds = time.perf_counter() - start
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SemgrepError(f"semgrep failed (exit {done.returncode}): {' | '.join(tail)}") from None
    findings = tuple(sorted(_finding(r, target) for r in report.get("results", [])))
    errors = tuple(_error(e) for e in report.get("errors", []))
    if done.returncode not in (0, 1) and not findings:
        raise SemgrepError(
            f"semgrep failed (exit {done.returncode}): {'; '.join(errors) or done.stderr[-500:]}"
        )
    return SemgrepRun(rules=rules, seconds=seconds, findings=findings, errors=errors)


def _finding(result: dict[str, Any], target: Path) -> Finding:
    path = Path(result["path"])
    try:
        shown = path.resolve().relative_to(target.resolve()).as_posix()
    except ValueError:
        shown = path.as_posix()
    start, end = result.get("start", {}), result.get("end", {})
    return Finding(
        rule=result["check_id"],
        path=shown,
        line=start.get("line", 0),
        column=start.get("col", 0),
        end_line=end.get("line", 0),
        end_column=end.get("col", 0),
        message=" ".join(str(result.get("extra", {}).get("message", "")).split())[:200],
    )


def _error(error: dict[str, Any]) -> str:
    where = error.get("path") or ", ".join(
        error.get("rule_id", []) if isinstance(error.get("rule_id"), list) else []
    )
    message = " ".join(str(error.get("message", error.get("type", "error"))).split())
    return f"{error.get('level', 'error')}: {where}: {message[:300]}" if where else message[:300]


def compare(
    project: Path,
    catalog: Catalog,
    query_set: QuerySet,
    *,
    semgrep: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Comparison:
    """Run every rule of the rules-folder ``catalog``, then ``query_set``, on ``project``."""
    if catalog.kind != "rules":
        raise ValueError(
            f"{catalog.source} is a rules index without rule bodies; scan-compare needs a rules folder"
        )
    all_rules = run_semgrep(
        ".", Path(catalog.source), project, len(catalog), semgrep=semgrep, timeout=timeout
    )
    with tempfile.TemporaryDirectory(prefix="treelens-suggested-") as folder:
        config = query_set.config
        (Path(folder) / config["fileName"]).write_text(config["text"], encoding="utf-8")
        if query_set.selected:
            suggested = run_semgrep(
                config["fileName"],
                Path(folder),
                project,
                len(query_set.selected),
                semgrep=semgrep,
                timeout=timeout,
            )
        else:  # nothing to run: semgrep refuses an empty config
            suggested = SemgrepRun(rules=0, seconds=0.0, findings=())
    return Comparison(str(project), all_rules, suggested, query_set)
