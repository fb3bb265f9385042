"""How much semgrep time the suggested query set saves, and what it misses.

On six fixture projects of different kinds (bench/scan_fixtures.py: Flask, Django,
React/TypeScript, Express, Terraform/Kubernetes, Android), semgrep runs with every rule of
one catalog and with the set `treelens suggest` keeps, alternating, several times each in
the same process; the table gives rules kept / total, the median wall time of each run
and their ratio, findings of each, and every finding the suggested set missed.

The catalog is real semgrep rules where this machine has them: njsscan's Node.js rules
and mobsfscan's Android/iOS rules (the `bench` extra installs both), plus rules written
for Treelens covering the semgrep-rules index's languages and technologies
(bench/rules/, tests/fixtures/querysets/rules/); the public semgrep-rules collection
itself cannot be fetched here.

    python bench/scan_savings.py [--reps 3] [--no-model] [--project NAME ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scan_fixtures import PROJECTS, write_project
from daemon.scan import scan
from model.input import analyze
from model.querysets import load_catalog, model_labels, suggest
from model.querysets.compare import Finding, run_semgrep, semgrep_command

ROOT = Path(__file__).resolve().parents[1]
OWN_RULES = {
    "treelens-bench": ROOT / "bench" / "rules",
    "treelens-tests": ROOT / "tests/fixtures/querysets/rules",
}
PACKAGED_RULES = {"njsscan": ("njsscan", "rules/semantic_grep"), "mobsfscan": ("mobsfscan", "rules/semgrep")}


def build_catalog(folder: Path) -> list[str]:
    """Copy every rule source into ``folder`` (one sub-folder each); the sources used."""
    used = []
    for name, source in OWN_RULES.items():
        shutil.copytree(source, folder / name)
        used.append(f"{name} ({source.relative_to(ROOT)})")
    for name, (package, sub) in PACKAGED_RULES.items():
        spec = find_spec(package)
        if spec is None or spec.origin is None:
            print(
                f"note: {package} not installed (pip install -e '.[bench]'); its rules are left out",
                file=sys.stderr,
            )
            continue
        shutil.copytree(Path(spec.origin).parent / sub, folder / name)
        used.append(f"{name} (installed package, {sub})")
    return used


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown CPU",
    )
    version = subprocess.run(
        [semgrep_command(), "--version"], capture_output=True, text=True, check=False
    ).stdout
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}, "
        f"semgrep {version.strip()}, load average at start {load}"
    )


def measure(name: str, root: Path, catalog_dir: Path, reps: int, use_model: bool) -> dict:
    """Both runs ``reps`` times, alternating which goes first; medians and missed findings."""
    project = write_project(name, root)
    catalog = load_catalog("semgrep", catalog_dir)
    tree = scan(project, use_git=False).tree
    labels = model_labels(tree) if use_model else None
    query_set = suggest(
        analyze(tree),
        "semgrep",
        catalog,
        labels.probabilities if labels else None,
        labels.thresholds if labels else None,
        note=labels.note if labels else "",
        name=name,
    )
    merged = root / f"{name}-suggested"
    merged.mkdir()
    (merged / query_set.config["fileName"]).write_text(query_set.config["text"], encoding="utf-8")
    times: dict[str, list[float]] = {"all": [], "suggested": []}
    findings: dict[str, set[Finding]] = {"all": set(), "suggested": set()}
    errors: set[str] = set()
    runs = {
        "all": lambda: run_semgrep(".", catalog_dir, project, len(catalog)),
        "suggested": lambda: run_semgrep(
            query_set.config["fileName"], merged, project, len(query_set.selected)
        ),
    }
    for rep in range(reps):
        for which in ("all", "suggested") if rep % 2 == 0 else ("suggested", "all"):
            run = runs[which]()
            times[which].append(run.seconds)
            findings[which] |= set(run.findings)
            errors |= set(run.errors)
    missed = sorted(findings["all"] - findings["suggested"])
    return {
        "project": name,
        "files": len(tree.files),
        "languages": list(analyze(tree).languages),
        "basis": query_set.basis,
        "note": query_set.note,
        "kept": len(query_set.selected),
        "total": len(catalog),
        "allSeconds": statistics.median(times["all"]),
        "suggestedSeconds": statistics.median(times["suggested"]),
        "times": times,
        "findingsAll": len(findings["all"]),
        "findingsSuggested": len(findings["suggested"]),
        "missed": [f.to_json() | {"reason": query_set.reasons.get(f.rule, "")} for f in missed],
        "errors": sorted(errors),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| project | files | rules kept / total | all rules, median s | suggested, median s | time ratio |"
        " findings all / suggested | missed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['project']} | {r['files']} | {r['kept']} / {r['total']} ({r['kept'] / r['total']:.0%}) |"
            f" {r['allSeconds']:.2f} | {r['suggestedSeconds']:.2f} | "
            f"{r['allSeconds'] / r['suggestedSeconds']:.2f}x |"
            f" {r['findingsAll']} / {r['findingsSuggested']} | {len(r['missed'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reps", type=int, default=3, help="runs of each set per project (median; default 3)"
    )
    parser.add_argument(
        "--project", action="append", choices=sorted(PROJECTS), help="only these (repeatable)"
    )
    parser.add_argument(
        "--no-model", action="store_true", help="suggest from languages and technologies alone"
    )
    parser.add_argument("--json", type=Path, help="also write the full results here")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="treelens-scan-savings-") as tmp:
        root = Path(tmp)
        catalog_dir = root / "catalog"
        sources = build_catalog(catalog_dir)
        print(f"catalog: {len(load_catalog('semgrep', catalog_dir))} rules from {', '.join(sources)}")
        rows = []
        for name in args.project or list(PROJECTS):
            row = measure(name, root, catalog_dir, args.reps, not args.no_model)
            print(
                f"{name}: {row['kept']}/{row['total']} rules, {row['allSeconds']:.2f} s vs "
                f"{row['suggestedSeconds']:.2f} s, {len(row['missed'])} missed",
                file=sys.stderr,
            )
            rows.append(row)
    print(f"basis: {rows[0]['basis']}" + (f" ({rows[0]['note']})" if rows[0]["note"] else ""))
    print(f"{args.reps} runs of each set per project, alternating order; medians\n")
    print(table(rows))
    for row in rows:
        for miss in row["missed"]:
            print(
                f"missed: {row['project']}: {miss['path']}:{miss['line']} {miss['rule']} ({miss['reason']})"
            )
        for error in row["errors"]:
            print(f"semgrep error: {row['project']}: {error}")
    if not any(row["missed"] for row in rows):
        print("\nmissed findings: none")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
