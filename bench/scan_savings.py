"""How much semgrep time the suggested query set saves, like for like, and what it misses.

Eight arms on each project, every one written the same way (one merged JSON rules file,
the fastest form semgrep reads, with semgrep's own check ids), each saving measured on
its own:

- ``all``: every rule of the catalog;
- ``languages``: the languages-present filter (every rule whose language occurs in the
  project: the ten lines a user would write first);
- ``nowords``: the set ``treelens suggest`` keeps without its words step (the policy's
  step 2: rules whose patterns name a word no file holds), to measure that step on its own;
- ``anyfile``: that set with the words step checked over the whole project instead of file
  by file (the rules it drops only because their words are spread over several files put
  back), to measure the one-file check on its own;
- ``suggested``: the set ``treelens suggest`` keeps (selection only);
- ``scoped``: the same set, each rule excluded from the components (top-level and
  manifest folders) that hold no file of its languages (lossless by construction);
- ``skipped``: scoped, plus the opt-in vendored skip (``suggest --skip-vendored``):
  vendored, generated and minified files left out. Findings of the every-rule run in
  those files are reported apart ("in vendored files, opt-in skipped") and never counted
  as misses;
- ``fired``: the ceiling, an oracle no lossless selection can beat: only the rules of the
  catalog that found something in this project's first every-rule run (so ``all`` runs
  first in the first round). Its speed-up over every rule is what any selection could at
  most save without losing a finding. With no rule fired it is an empty rules list, which
  semgrep accepts: its time is then semgrep's start-up alone.

They run interleaved, ``--reps`` times each, in one process; the table gives rules, the
median wall time of each arm, speed-ups against every rule and against the filter,
findings of each, and every finding a selection missed. Any config error semgrep reports
is printed: an invalid config cannot pass unnoticed. ``treelens suggest`` itself (scan,
labels, policy) is timed with and without the words step, which reads the project's files.

Projects: real repositories given as paths (``--repo PATH``, repeatable; fetched outside
this repository) or, without any, the six fixture projects of bench/scan_fixtures.py.
Catalog: a semgrep rules folder (``--catalog``, e.g. a semgrep-rules checkout) or, without
one, the rules shipped here and by njsscan/mobsfscan (the `bench` extra).

    python bench/scan_savings.py [--repo PATH ...] [--catalog RULES_DIR] [--reps 3] [--no-model] [--json FILE]
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
import time
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scan_fixtures import PROJECTS, write_project
from treelens.daemon.scan import scan
from treelens.model.input import Analysis, analyze
from treelens.model.pipeline import model_labels, suggest_sets
from treelens.model.querysets import Catalog, QuerySet, load_catalog
from treelens.model.querysets.compare import (
    DEFAULT_TIMEOUT_S,
    SEMGREP_ENV,
    Finding,
    SemgrepError,
    run_semgrep,
    semgrep_command,
    speedup,
    write_arms,
)
from treelens.model.querysets.policy import WORDS_APART
from treelens.model.querysets.semgrep import merged_rules, path_scope, semgrep_id
from treelens.model.querysets.suggest import default_policy
from treelens.model.tree import ProjectTree

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
        [semgrep_command(), "--version", "--disable-version-check"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **SEMGREP_ENV},  # no version check: there may be no network
        timeout=60,
    ).stdout
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}, "
        f"semgrep {version.strip()}, load average at start {load}"
    )


ARMS = ("all", "languages", "nowords", "anyfile", "suggested", "scoped", "skipped", "fired")
TREELENS_ARMS = ("nowords", "anyfile", "suggested", "scoped", "skipped")
"""The arms of Treelens' selection: a finding they lose is a miss."""
NAMES = {
    "all": "every rule",
    "languages": "languages present",
    "nowords": "Treelens without the words step",
    "anyfile": "Treelens, words in any file",
    "suggested": "Treelens",
    "scoped": "Treelens + scoping",
    "skipped": "+ skip-vendored",
    "fired": "ceiling: only the rules that fired",
}


def suggest_for(
    name: str, project: Path, catalog: Catalog, use_model: bool, read_words: bool = True
) -> tuple[ProjectTree, Analysis, QuerySet]:
    """What the project holds and what Treelens keeps of ``catalog`` for it: the Treelens
    arm (``read_words`` False: without the policy's words step), as the CLI decides it."""
    tree = scan(project).tree
    analysis = analyze(tree)
    labels = model_labels(tree) if use_model else None
    sets = suggest_sets(analysis, {catalog.engine: catalog}, labels, name, project, read_words)
    return tree, analysis, sets[catalog.engine]


def measure(
    name: str,
    project: Path,
    root: Path,
    catalog_dir: Path,
    reps: int,
    use_model: bool,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict:
    """Every arm ``reps`` times, rotating which goes first; medians, findings, misses."""
    catalog = load_catalog("semgrep", catalog_dir)
    suggest_seconds: dict[str, list[float]] = {"nowords": [], "suggested": []}
    sets: dict[str, QuerySet] = {}
    for _ in range(2):  # alternating, the faster of two each: the first call warms the file cache
        for arm, read_words in (("nowords", False), ("suggested", True)):
            start = time.perf_counter()
            tree, analysis, sets[arm] = suggest_for(name, project, catalog, use_model, read_words)
            suggest_seconds[arm].append(time.perf_counter() - start)
    query_set, nowords = sets["suggested"], sets["nowords"]
    folder = root / f"{name}-configs"
    folder.mkdir()
    policy = default_policy()
    skip = path_scope(tree, project, policy, skip_vendored=True)
    scopes = {"scoped": path_scope(tree, project, policy), "skipped": skip}
    configs = write_arms(folder, catalog, query_set, analysis, scopes)
    apart = {q.id for q in catalog.queries if WORDS_APART in query_set.reasons.get(q.id, "")}
    kept = {q.id for q in query_set.selected} | apart
    anyfile = [q for q in catalog.queries if q.id in kept]
    for arm, selected in (("nowords", nowords.selected), ("anyfile", anyfile)):
        configs[arm] = (folder / f"{arm}.json", len(selected))
        configs[arm][0].write_text(merged_rules(catalog, selected), encoding="utf-8")
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    findings: dict[str, set[Finding]] = {arm: set() for arm in ARMS}
    errors: set[str] = set()
    for rep in range(reps):
        for arm in ARMS[rep % len(ARMS) :] + ARMS[: rep % len(ARMS)]:
            config, rules = configs[arm]
            if not rules and arm != "fired":  # the ceiling runs empty: semgrep's start-up
                times[arm].append(0.0)
                cpu[arm].append(0.0)
                continue
            run = run_semgrep(config.name, folder, project, rules, timeout=timeout)
            times[arm].append(run.seconds)
            cpu[arm].append(run.cpu_seconds or 0.0)
            findings[arm] |= set(run.findings)
            errors |= {f"{arm}: {e}" for e in run.errors}
            if arm == "all" and "fired" not in configs:  # the first round starts with "all"
                configs["fired"] = fired_config(folder, catalog, {f.rule for f in run.findings})
    vendored = {f for f in findings["all"] if skip.is_skipped(f.path)}
    expected = {arm: findings["all"] - (vendored if arm == "skipped" else set()) for arm in ARMS}
    return {
        "project": name,
        "path": str(project),
        "files": len(tree.files),
        "languages": list(analysis.languages),
        "basis": query_set.basis,
        "note": query_set.note,
        "suggestSeconds": {arm: min(times) for arm, times in suggest_seconds.items()},
        "rules": {arm: configs[arm][1] for arm in ARMS},
        "seconds": {arm: statistics.median(times[arm]) for arm in ARMS},
        "times": times,
        "cpuSeconds": {arm: statistics.median(cpu[arm]) for arm in ARMS},
        "cpuTimes": cpu,
        "findings": {arm: len(findings[arm]) for arm in ARMS},
        "vendoredFindings": len(vendored),
        "skipped": skip.to_json(query_set.selected),
        "scopedRules": scopes["scoped"].to_json(query_set.selected)["scopedRules"],
        "missedBy": {
            arm: [
                f.to_json() | {"reason": query_set.reasons.get(f.rule, "")}
                for f in sorted(expected[arm] - findings[arm])
            ]
            for arm in ARMS[1:]
        },
        "missed": [
            f.to_json() | {"reason": query_set.reasons.get(f.rule, "")}
            for f in sorted(findings["all"] - findings["suggested"])
        ],
        "languagesMissed": len(findings["all"] - findings["languages"]),
        "errors": sorted(errors),
    }


def fired_config(folder: Path, catalog: Catalog, fired: set[str]) -> tuple[Path, int]:
    """The ceiling arm's config: every catalog rule whose check id found something (rules
    sharing an id all stay, as semgrep cannot tell which fired), as one merged JSON file."""
    queries = [q for q in catalog.queries if semgrep_id(q) in fired]
    config = folder / "fired.json"
    config.write_text(merged_rules(catalog, queries), encoding="utf-8")
    return config, len(queries)


def ratio(row: dict, slow: str, fast: str) -> str:
    """Speed-up of arm ``fast`` over arm ``slow``: wall time, CPU time."""
    sec, cpu = row["seconds"], row["cpuSeconds"]
    return f"{speedup(sec[slow], sec[fast]):.2f}x, {speedup(cpu[slow], cpu[fast]):.2f}x"


def table(rows: list[dict]) -> str:
    """Per project: time of every rule, each arm's speed-up (wall, CPU), findings and misses."""
    lines = [
        "| project | files | rules all / languages / no words / any file / Treelens / fired |"
        " all rules: wall, CPU s | languages present | Treelens without words | words in any file |"
        " Treelens | + scoping | + skip-vendored |"
        " ceiling (rules that fired) | Treelens vs languages | best vs languages |"
        " findings all / languages / no words / any file / Treelens / scoped / skipped / fired"
        " (+ in vendored files) | missed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rules, found, cpu = r["rules"], r["findings"], r["cpuSeconds"]
        missed = sum(len(r["missedBy"][arm]) for arm in TREELENS_ARMS)
        cells = [
            r["project"],
            str(r["files"]),
            " / ".join(str(rules[arm]) for arm in ARMS if arm not in ("scoped", "skipped")),
            f"{r['seconds']['all']:.1f}, {cpu['all']:.1f}",
            *(ratio(r, "all", arm) for arm in ARMS[1:]),
            ratio(r, "languages", "suggested"),
            ratio(r, "languages", "skipped"),
            " / ".join(str(found[arm]) for arm in ARMS) + f" (+{r['vendoredFindings']})",
            str(missed),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_kept(rows: list[dict]) -> tuple[int, int, float]:
    """How many of the every-rule arm's findings Treelens kept, of how many, and the share in %."""
    total = sum(r["findings"]["all"] for r in rows)
    kept = total - sum(len(r["missed"]) for r in rows)
    return kept, total, 100.0 * kept / total if total else 100.0


def summary(rows: list[dict]) -> str:
    """Findings kept and median speed-ups of each arm across the projects."""
    kept, total, share = findings_kept(rows)
    lines = [f"Treelens kept {kept} of {total} all-rules findings ({share:.2f} %)"]
    for arm in ARMS[1:]:
        medians = {
            (slow, clock): statistics.median(speedup(r[clock][slow], r[clock][arm]) for r in rows)
            for slow in ("all", "languages")
            for clock in ("seconds", "cpuSeconds")
        }
        missed = sum(len(r["missedBy"][arm]) for r in rows)
        lines.append(
            f"  {NAMES[arm]}: median over every rule {medians['all', 'seconds']:.2f}x wall, "
            f"{medians['all', 'cpuSeconds']:.2f}x CPU; over the languages-present filter "
            f"{medians['languages', 'seconds']:.2f}x wall, {medians['languages', 'cpuSeconds']:.2f}x CPU; "
            f"{missed} findings missed"
        )
    for slow, step in (("nowords", "the words step"), ("anyfile", "its one-file check")):
        steps = sorted(speedup(r["seconds"][slow], r["seconds"]["suggested"]) for r in rows)
        lines.append(
            f"  {step} on its own ({NAMES[slow]} -> Treelens): median {statistics.median(steps):.2f}x wall "
            f"({steps[0]:.2f}-{steps[-1]:.2f}x)"
        )
    made = {
        arm: statistics.median(r["suggestSeconds"][arm] for r in rows) for arm in ("suggested", "nowords")
    }
    lines.append(
        f"  treelens suggest itself (scan, labels, policy): median {made['suggested']:.2f} s, "
        f"without the words step {made['nowords']:.2f} s"
    )
    vendored = sum(r["vendoredFindings"] for r in rows)
    lines.append(f"  findings in vendored files (opt-in skipped, not misses): {vendored}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reps", type=int, default=3, help="runs of each arm per project (median; default 3)"
    )
    parser.add_argument(
        "--repo", type=Path, action="append", help="a real project folder to scan (repeatable)"
    )
    parser.add_argument("--catalog", type=Path, help="a semgrep rules folder (default: the bundled rules)")
    parser.add_argument(
        "--project", action="append", choices=sorted(PROJECTS), help="only these fixture projects"
    )
    parser.add_argument(
        "--no-model", action="store_true", help="suggest from languages and technologies alone"
    )
    parser.add_argument("--json", type=Path, help="also write the full results here")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds allowed per semgrep run; a project that runs over is left out (default 600)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="treelens-scan-savings-") as tmp:
        root = Path(tmp)
        if args.catalog:
            catalog_dir = args.catalog.resolve()
            sources = [str(catalog_dir)]
        else:
            catalog_dir = root / "catalog"
            sources = build_catalog(catalog_dir)
        print(f"catalog: {len(load_catalog('semgrep', catalog_dir))} rules from {', '.join(sources)}")
        if args.repo:
            projects = {repo.resolve().name: repo.resolve() for repo in args.repo}
        else:
            projects = {name: write_project(name, root) for name in args.project or list(PROJECTS)}
        rows = []
        for name, project in projects.items():
            try:
                row = measure(name, project, root, catalog_dir, args.reps, not args.no_model, args.timeout)
            except SemgrepError as error:  # one project too slow or broken: the others still count
                print(f"{name}: left out of the table: {error}", file=sys.stderr)
                continue
            times = ", ".join(
                f"{arm} {row['seconds'][arm]:.2f} s ({row['cpuSeconds'][arm]:.1f} CPU)" for arm in ARMS
            )
            made = row["suggestSeconds"]
            print(
                f"{name}: {times}, {len(row['missed'])} missed; suggest (scan, labels, policy) "
                f"{made['suggested']:.2f} s, without the words step {made['nowords']:.2f} s",
                file=sys.stderr,
            )
            rows.append(row)
            if args.json:  # after each project: a long run that is stopped keeps what it measured
                args.json.write_text(json.dumps(rows, indent=2))
    if not rows:
        print("no project was measured", file=sys.stderr)
        return 1
    print(f"basis: {rows[0]['basis']}" + (f" ({rows[0]['note']})" if rows[0]["note"] else ""))
    print(f"every arm one merged JSON rules file; {args.reps} runs of each per project, rotating; medians\n")
    print(table(rows))
    print("\n" + summary(rows))
    for row in rows:
        for arm in ARMS[1:]:
            for miss in row["missedBy"][arm]:
                print(
                    f"missed by {NAMES[arm]}: {row['project']}: {miss['path']}:{miss['line']} "
                    f"{miss['rule']} ({miss['reason']})"
                )
        if row["vendoredFindings"]:
            print(
                f"findings in vendored files (opt-in skipped): {row['project']}: "
                f"{row['vendoredFindings']} in "
                + ", ".join(f"{s['pattern']} ({s['files']} files)" for s in row["skipped"]["skipped"])
            )
        if not row["rules"]["fired"]:
            print(f"ceiling: no rule fired on {row['project']}: an empty rules list, semgrep start-up alone")
        for error in row["errors"]:
            print(f"semgrep error: {row['project']}: {error}")
    if not any(row["missedBy"][arm] for row in rows for arm in TREELENS_ARMS):
        print("\nmissed findings (Treelens arms): none")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
