"""How much checkov time the suggested check set saves, and what it misses.

Three arms on each project, every one a ``--config-file`` with a framework and a check
list (the same form for all, so the times differ by the selection alone): every check of
the installed checkov, the frameworks-present filter (every check one of whose frameworks
has a file in the project: the simplest selection) and the set `treelens suggest --engine
checkov` keeps. They run interleaved, ``--reps`` times each, offline; the table gives
checks, the median wall time of each arm, the speed-ups, findings of each (failed checks
by check, file, resource and lines) and every finding a selection missed.

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

from bench.scan_savings import ARMS
from daemon.scan import scan
from model.input import analyze
from model.querysets import Catalog, load_catalog, model_labels, suggest
from model.querysets.checkov import CheckovFinding, config, frameworks_present, run_checkov
from model.querysets.compare import speedup
from model.querysets.policy import Policy


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
    tree = scan(project).tree
    analysis = analyze(tree)
    labels = model_labels(tree) if use_model else None
    query_set = suggest(
        analysis,
        "checkov",
        catalog,
        labels.probabilities if labels else None,
        labels.thresholds if labels else None,
        note=labels.note if labels else "",
        name=name,
    )
    folder = root / f"{name}-configs"
    folder.mkdir()
    arms = {
        "all": list(catalog.queries),
        "languages": frameworks_present(catalog, analysis, Policy.load()),
        "suggested": list(query_set.selected),
    }
    configs = write_arms(folder, catalog, arms)
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    findings: dict[str, set[CheckovFinding]] = {arm: set() for arm in ARMS}
    for rep in range(reps):
        for arm in ARMS[rep % 3 :] + ARMS[: rep % 3]:
            path, checks = configs[arm]
            if not checks:
                times[arm].append(0.0)
                continue
            run = run_checkov(project, path)
            times[arm].append(run.seconds)
            findings[arm] |= set(run.findings)
            print(f"  {name} {arm}: {run.seconds:.1f} s, {len(run.findings)} findings", file=sys.stderr)
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
        "findings": {arm: len(findings[arm]) for arm in ARMS},
        "missed": [
            f.to_json() | {"reason": query_set.reasons.get(f.check, "")}
            for f in sorted(findings["all"] - findings["suggested"])
        ],
        "filterMissed": [f.to_json() for f in sorted(findings["all"] - findings["languages"])],
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| project | files | checks all / frameworks / Treelens | all checks, s | frameworks present |"
        " Treelens | Treelens vs frameworks | findings all / frameworks / Treelens | Treelens missed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        sec, checks, found = r["seconds"], r["checks"], r["findings"]
        cells = [
            r["project"],
            str(r["files"]),
            f"{checks['all']} / {checks['languages']} / {checks['suggested']}",
            f"{sec['all']:.1f}",
            f"{speedup(sec['all'], sec['languages']):.2f}x",
            f"{speedup(sec['all'], sec['suggested']):.2f}x",
            f"{speedup(sec['languages'], sec['suggested']):.2f}x",
            f"{found['all']} / {found['languages']} / {found['suggested']}",
            str(len(r["missed"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    total = sum(r["findings"]["all"] for r in rows)
    missed = sum(len(r["missed"]) for r in rows)
    kept = 100.0 * (total - missed) / total if total else 100.0
    treelens = statistics.median(speedup(r["seconds"]["all"], r["seconds"]["suggested"]) for r in rows)
    present = statistics.median(speedup(r["seconds"]["all"], r["seconds"]["languages"]) for r in rows)
    versus = statistics.median(speedup(r["seconds"]["languages"], r["seconds"]["suggested"]) for r in rows)
    return (
        f"Treelens kept {total - missed} of {total} all-checks findings ({kept:.2f} %); median speed-up "
        f"{treelens:.2f}x over every check, {present:.2f}x for the frameworks-present filter, "
        f"Treelens {versus:.2f}x the filter"
    )


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
