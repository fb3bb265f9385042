"""How much checkov time the suggested check set saves, and what it misses.

Three arms on each project, every one a ``--config-file`` with a framework and a check
list (the same form for all, so the times differ by the selection alone): every check of
the installed checkov, the frameworks-present filter (every check one of whose frameworks
has a file in the project: the simplest selection) and the set `treelens suggest --engine
checkov` keeps. They run interleaved, ``--reps`` times each, offline; the table gives
checks, the median wall and CPU time of each arm (CPU: checkov and its workers, user +
system; on a shared, busy machine it tracks the work saved better than wall time), the
speed-ups, findings of each (failed checks by check, file, resource and lines) and every
finding a selection missed.

Projects are real repositories given as paths (``--repo PATH``, repeatable), fetched
outside this repository. checkov: $TREELENS_CHECKOV, PATH, or .venv/checkov.

    python bench/checkov_savings.py --repo PATH [--repo PATH ...] [--reps 1] [--no-model] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scan_savings import findings_kept, suggest_for
from treelens.model.querysets import Catalog, load_catalog
from treelens.model.querysets.checkov import CheckovFinding, config, frameworks_present, run_checkov
from treelens.model.querysets.compare import speedup
from treelens.model.querysets.policy import Policy

ARMS = ("all", "languages", "suggested")
"""Every check, the frameworks-present filter, Treelens (checkov has no rule bodies to
scope or fire-test, so the semgrep bench's other arms do not apply)."""


def write_arms(folder: Path, catalog: Catalog, selected: dict[str, list]) -> dict[str, tuple[Path, int]]:
    """One checkov config file per arm, with its check count."""
    written = {}
    for arm, queries in selected.items():
        path = folder / f"{arm}.yaml"
        path.write_text(config(queries)["text"], encoding="utf-8")
        written[arm] = (path, len(queries))
    return written


def measure(name: str, project: Path, root: Path, catalog: Catalog, reps: int, use_model: bool) -> dict:
    """The three arms ``reps`` times each, rotating which goes first; medians, findings, misses."""
    tree, analysis, query_set = suggest_for(name, project, catalog, use_model)
    folder = root / f"{name}-configs"
    folder.mkdir()
    arms = {
        "all": list(catalog.queries),
        "languages": frameworks_present(catalog, analysis, Policy.load()),
        "suggested": list(query_set.selected),
    }
    configs = write_arms(folder, catalog, arms)
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    findings: dict[str, set[CheckovFinding]] = {arm: set() for arm in ARMS}
    for rep in range(reps):
        for arm in ARMS[rep % 3 :] + ARMS[: rep % 3]:
            path, checks = configs[arm]
            if not checks:
                times[arm].append(0.0)
                cpu[arm].append(0.0)
                continue
            run = run_checkov(project, path)
            times[arm].append(run.seconds)
            cpu[arm].append(run.cpu_seconds or 0.0)
            findings[arm] |= set(run.findings)
            print(
                f"  {name} {arm}: {run.seconds:.1f} s, CPU {run.cpu_seconds or 0:.1f} s, "
                f"{len(run.findings)} findings",
                file=sys.stderr,
            )
    return {
        "project": name,
        "path": str(project),
        "files": len(tree.files),
        "technologies": list(analysis.technologies),
        "basis": query_set.basis,
        "note": query_set.note,
        "checks": {arm: configs[arm][1] for arm in ARMS},
        "frameworks": {arm: config(arms[arm]).get("args", ["", ""])[1:2] for arm in ARMS},
        "seconds": {arm: statistics.median(times[arm]) for arm in ARMS},
        "times": times,
        "cpuSeconds": {arm: statistics.median(cpu[arm]) for arm in ARMS},
        "cpuTimes": cpu,
        "findings": {arm: len(findings[arm]) for arm in ARMS},
        "missed": [
            f.to_json() | {"reason": query_set.reasons.get(f.check, "")}
            for f in sorted(findings["all"] - findings["suggested"])
        ],
        "filterMissed": [f.to_json() for f in sorted(findings["all"] - findings["languages"])],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| project | files | checks all / frameworks / Treelens | all checks: wall, CPU s |"
        " frameworks present: wall, CPU | Treelens: wall, CPU | Treelens vs frameworks: wall, CPU |"
        " findings all / frameworks / Treelens | Treelens missed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sec, cpu, checks, found = r["seconds"], r["cpuSeconds"], r["checks"], r["findings"]

        def ratio(slow: str, fast: str, sec: dict = sec, cpu: dict = cpu) -> str:
            return f"{speedup(sec[slow], sec[fast]):.2f}x, {speedup(cpu[slow], cpu[fast]):.2f}x"

        cells = [
            r["project"],
            str(r["files"]),
            f"{checks['all']} / {checks['languages']} / {checks['suggested']}",
            f"{sec['all']:.1f}, {cpu['all']:.1f}",
            ratio("all", "languages"),
            ratio("all", "suggested"),
            ratio("languages", "suggested"),
            f"{found['all']} / {found['languages']} / {found['suggested']}",
            str(len(r["missed"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    kept, total, share = findings_kept(rows)
    lines = [f"Treelens kept {kept} of {total} all-checks findings ({share:.2f} %)"]
    for key, what in (("seconds", "wall"), ("cpuSeconds", "CPU")):

        def median(slow: str, fast: str, key: str = key) -> float:
            return statistics.median(speedup(r[key][slow], r[key][fast]) for r in rows)

        lines.append(
            f"median {what} speed-up: Treelens {median('all', 'suggested'):.2f}x over every check, "
            f"the frameworks-present filter {median('all', 'languages'):.2f}x, "
            f"Treelens {median('languages', 'suggested'):.2f}x the filter"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, action="append", required=True, help="a project folder")
    parser.add_argument("--reps", type=int, default=1, help="runs of each arm per project (median)")
    parser.add_argument("--no-model", action="store_true", help="suggest from the project's facts alone")
    parser.add_argument("--json", type=Path, help="also write the full results here")
    args = parser.parse_args()
    catalog = load_catalog("checkov")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"catalog: {len(catalog)} checks of {catalog.source}; {os.cpu_count()} cores, load at start {load}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="treelens-checkov-savings-") as tmp:
        for repo in args.repo:
            rows.append(
                measure(repo.resolve().name, repo.resolve(), Path(tmp), catalog, args.reps, not args.no_model)
            )
    print(f"basis: {rows[0]['basis']}" + (f" ({rows[0]['note']})" if rows[0]["note"] else ""))
    print(f"every arm one --config-file; {args.reps} run(s) of each per project, rotating; medians\n")
    print(table(rows))
    print("\n" + summary(rows))
    for row in rows:
        print(f"frameworks: {row['project']}: Treelens {row['frameworks']['suggested']}")
        for miss in row["missed"]:
            print(
                f"missed: {row['project']}: {miss['path']}:{miss['line']} {miss['check']} {miss['resource']}"
                f" ({miss['reason']})"
            )
    if not any(row["missed"] for row in rows):
        print("\nmissed findings: none")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
