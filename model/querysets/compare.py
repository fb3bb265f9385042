"""A real scan comparison, like for like: semgrep on the same project with three rule
sets, each written the same way (one merged JSON rules file, the fastest form semgrep
reads), so the times differ by the selection alone:

- every rule of the catalog;
- the languages-present filter: every rule whose language occurs in the project (by file
  extension, or a rule for any language), the ten lines a user would write first;
- the set Treelens suggests.

It reports wall time, rules and findings of each, and every finding of the full run that
a selection missed. semgrep runs offline: local configs only, metrics and the version
check off. Every arm reports semgrep's own check ids (model/querysets/semgrep.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treelens.model.errors import TreelensError, UsageError
from treelens.model.guards import InputError, load_json, run_timed
from treelens.model.input import Analysis
from treelens.model.querysets import semgrep as semgrep_rules
from treelens.model.querysets.catalog import Catalog, Query
from treelens.model.querysets.policy import Policy
from treelens.model.querysets.semgrep import PathScope
from treelens.model.querysets.suggest import QuerySet

SEMGREP_ENV = {"SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0"}
DEFAULT_TIMEOUT_S = 600.0


class SemgrepError(TreelensError):
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
    warnings: int = 0  # semgrep's warn/info notes: unparsable files, unsupported languages
    cpu_seconds: float | None = None
    """CPU time of semgrep and its workers: steadier than wall time on a shared machine."""

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": self.rules,
            "seconds": round(self.seconds, 3),
            "cpuSeconds": None if self.cpu_seconds is None else round(self.cpu_seconds, 3),
            "findings": len(self.findings),
            "rulesFired": sorted({f.rule for f in self.findings}),
            "errors": list(self.errors),
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class Comparison:
    """Every rule, the languages-present filter and the suggested set on one project."""

    project: str
    all_rules: SemgrepRun
    languages: SemgrepRun
    suggested: SemgrepRun
    query_set: QuerySet

    @property
    def missed(self) -> list[Finding]:
        """Findings of the full run that the suggested run did not report."""
        return sorted(set(self.all_rules.findings) - set(self.suggested.findings))

    @property
    def languages_missed(self) -> list[Finding]:
        return sorted(set(self.all_rules.findings) - set(self.languages.findings))

    @property
    def time_ratio(self) -> float:
        return speedup(self.all_rules.seconds, self.suggested.seconds)

    @property
    def languages_ratio(self) -> float:
        return speedup(self.all_rules.seconds, self.languages.seconds)

    def summary_lines(self) -> list[str]:
        """The three runs side by side and every missed finding, one per line."""
        a, lang, s = self.all_rules, self.languages, self.suggested
        lines = [
            f"{self.project}: semgrep, each arm one merged JSON rules file ({self.query_set.basis})",
            f"  every rule:         {a.rules:5d} rules  {a.seconds:7.2f} s  {len(a.findings):4d} findings",
            f"  languages present:  {lang.rules:5d} rules  {lang.seconds:7.2f} s  {len(lang.findings):4d} "
            f"findings  ({self.languages_ratio:.2f}x faster)",
            f"  Treelens:           {s.rules:5d} rules  {s.seconds:7.2f} s  {len(s.findings):4d} findings"
            f"  ({self.time_ratio:.2f}x faster; {speedup(lang.seconds, s.seconds):.2f}x the languages arm)",
        ]
        for name, run in (("every rule", a), ("languages present", lang), ("Treelens", s)):
            lines += [f"  {name} error: {e}" for e in run.errors]
        missed = self.missed
        lines.append(f"  missed by Treelens: {len(missed) or 'none'}")
        for f in missed:
            why = self.query_set.reasons.get(f.rule, "")
            lines.append(f"    {f.path}:{f.line}:{f.column} {f.rule}" + (f" (dropped: {why})" if why else ""))
        lines.append(f"  missed by the languages-present filter: {len(self.languages_missed) or 'none'}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "catalog": self.query_set.catalog.source,
            "basis": self.query_set.basis,
            "note": self.query_set.note,
            "form": "one merged JSON rules file per arm",
            "all": self.all_rules.to_json(),
            "languagesPresent": self.languages.to_json(),
            "suggested": self.suggested.to_json(),
            "timeRatio": round(self.time_ratio, 3),
            "languagesRatio": round(self.languages_ratio, 3),
            "suggestedVsLanguages": round(speedup(self.languages.seconds, self.suggested.seconds), 3),
            "missed": [f.to_json() for f in self.missed],
            "reasons": {f.rule: self.query_set.reasons.get(f.rule, "") for f in self.missed},
            "languagesMissed": [f.to_json() for f in self.languages_missed],
        }


def speedup(slow: float, fast: float) -> float:
    """How many times faster ``fast`` seconds are than ``slow`` (inf for a run that did not run)."""
    return slow / fast if fast else float("inf")


def languages_present(catalog: Catalog, analysis: Analysis, policy: Policy) -> list[Query]:
    """Every rule whose language occurs in the project by file extension (names mapped the
    way the policy maps them: js -> javascript), plus rules for any language (generic,
    regex) and rules naming none. The simplest selection worth comparing against."""
    present = set(analysis.languages)
    kept = []
    for query in catalog.queries:
        languages = {policy.language(lang) for lang in query.languages}
        if not languages or languages & (present | policy.generic_languages):
            kept.append(query)
    return kept


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
    try:
        done, seconds, cpu = run_timed(  # semgrep's workers (semgrep-core) die with it on a time-out
            command,
            timeout,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **SEMGREP_ENV},
        )
    except subprocess.TimeoutExpired as error:
        raise SemgrepError(
            f"semgrep ran over {timeout:.0f} s on {target}; give a longer --timeout"
        ) from error
    except OSError as error:
        raise SemgrepError(f"cannot run semgrep ({error}); install it with `pip install semgrep`") from error
    try:
        report = load_json(done.stdout, "semgrep's output")
    except InputError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SemgrepError(f"semgrep failed (exit {done.returncode}): {' | '.join(tail)}") from None
    if not isinstance(report, dict):
        raise SemgrepError(f"semgrep failed (exit {done.returncode}): its output is not a JSON report")
    findings = tuple(sorted(_finding(r, target) for r in report.get("results", [])))
    # "warn" and "info" entries are files semgrep could not parse (templates read as HTML)
    # or rules for languages it lacks here (Apex): counted apart, so a config error stands out
    problems = report.get("errors", [])
    errors = tuple(_error(e) for e in problems if e.get("level", "error") == "error")
    warnings = len(problems) - len(errors)
    if done.returncode not in (0, 1) and not findings:
        raise SemgrepError(
            f"semgrep failed (exit {done.returncode}): {'; '.join(errors) or done.stderr[-500:]}"
        )
    return SemgrepRun(
        rules=rules, seconds=seconds, findings=findings, errors=errors, warnings=warnings, cpu_seconds=cpu
    )


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
    analysis: Analysis,
    *,
    semgrep: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Comparison:
    """Run every rule of the rules-folder ``catalog``, the languages-present filter and
    ``query_set`` on ``project``, each as one merged JSON rules file."""
    if catalog.kind != "rules":
        raise UsageError(
            f"{catalog.source} is a rules index without rule bodies; scan-compare needs a rules folder"
        )
    runs = {}
    with tempfile.TemporaryDirectory(prefix="treelens-compare-") as folder:
        for name, (config, rules) in write_arms(Path(folder), catalog, query_set, analysis).items():
            runs[name] = (
                run_semgrep(config.name, Path(folder), project, rules, semgrep=semgrep, timeout=timeout)
                if rules
                else SemgrepRun(rules=0, seconds=0.0, findings=())  # semgrep refuses an empty config
            )
    return Comparison(str(project), runs["all"], runs["languages"], runs["suggested"], query_set)


def write_arms(
    folder: Path,
    catalog: Catalog,
    query_set: QuerySet,
    analysis: Analysis,
    scopes: dict[str, PathScope] | None = None,
) -> dict[str, tuple[Path, int]]:
    """The merged JSON config of each arm ("all", "languages", "suggested", then the
    suggested set under each of ``scopes`` by name) in ``folder``, with its rule count."""
    arms: dict[str, tuple[list[Query], PathScope | None]] = {
        "all": (list(catalog.queries), None),
        "languages": (languages_present(catalog, analysis, Policy.load()), None),
        "suggested": (list(query_set.selected), None),
    }
    arms |= {name: (list(query_set.selected), scope) for name, scope in (scopes or {}).items()}
    written = {}
    for name, (queries, scope) in arms.items():
        config = folder / f"{name}.json"
        config.write_text(semgrep_rules.merged_rules(catalog, queries, scope), encoding="utf-8")
        written[name] = (config, len(queries))
    return written
