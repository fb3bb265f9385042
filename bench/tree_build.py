"""Benchmark: building the project tree of large workspaces.

Generates 20,000- and 100,000-file workspaces (a git work tree and a plain folder of
each) and times, in the same run:

- `git ls-files -co --exclude-standard -z` alone: the floor for the git path;
- Treelens' scan via git (ls-files + lstat + filters + manifests);
- Treelens' scan by walking (os.scandir + nested .gitignore with pathspec);
- a naive os.walk + one pathspec matcher over every path (the obvious baseline);
- the model text of the scanned tree (describe), for scale.

Prints the median and min of several runs and ratios against the floor.
Target (DESIGN.md): the 100,000-file scan via git within 1 s.

    python bench/tree_build.py [--sizes 20000 100000] [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pathspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workspaces import commit_all
from treelens.daemon.scan import scan
from treelens.model.input import describe

EXTENSIONS = [".py", ".ts", ".tsx", ".json", ".css", ".md", ".go", ".yaml", ".png", ".log"]


def generate(root: Path, files: int) -> None:
    """A workspace with `files` project files in packages/pkgN/moduleM/srcK/ folders
    with .gitignore files, plus ignored build output, a node_modules folder and ignored
    *.log files on top (about a third more files that every scanner must skip)."""
    root.mkdir(parents=True)
    (root / ".gitignore").write_text("*.log\nnode_modules/\n/generated/\n")
    (root / "package.json").write_text('{"dependencies": {"react": "18", "express": "4"}}')
    per_folder = 25
    made = 0  # project files, i.e. files a scan must list
    folder_index = 0
    while made < files:
        package, rest = divmod(folder_index, 40)
        module, src = divmod(rest, 8)
        folder = root / "packages" / f"pkg{package}" / f"module{module}" / f"src{src}"
        if folder_index % 10 == 3:
            folder = root / "node_modules" / f"dep{folder_index}"
        elif folder_index % 10 == 7:
            folder = root / "generated" / f"out{folder_index}"
        folder.mkdir(parents=True, exist_ok=True)
        listed = folder_index % 10 not in (3, 7)
        count = min(per_folder, files - made) if listed else per_folder
        if src == 0 and listed:
            (folder / ".gitignore").write_text("*.tmp\n!keep.tmp\n")
            count -= 1
            made += 1
        for i in range(count):
            name = f"file_{chr(97 + i % 26)}{i // 26}{EXTENSIONS[i % len(EXTENSIONS)]}"
            (folder / name).touch()
            made += listed and not name.endswith(".log")
        folder_index += 1


def naive_walk(root: Path) -> list[str]:
    """os.walk everything and match every path against all .gitignore lines at once."""
    lines: list[str] = []
    paths: list[str] = []
    for folder, _dirs, names in os.walk(root):
        rel = os.path.relpath(folder, root)
        for name in names:
            path = name if rel == "." else f"{rel}/{name}"
            paths.append(path)
            if name == ".gitignore":
                prefix = "" if rel == "." else rel + "/"
                lines += [prefix + line for line in (Path(folder) / name).read_text().splitlines() if line]
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return [p for p in paths if not spec.match_file(p) and not p.startswith(".git/")]


def git_ls_files(root: Path) -> list[bytes]:
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout
    return out.split(b"\0")


def measure(run: Callable[[], object], runs: int, warmup: bool = True) -> tuple[float, float]:
    """(median, min) wall seconds over `runs` runs after one warm-up."""
    if warmup:
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def bench_size(base: Path, files: int, runs: int) -> list[tuple[str, float, float, int]]:
    plain = base / f"plain-{files}"
    repo = base / f"git-{files}"
    print(f"generating {files:,} files twice ...", file=sys.stderr)
    generate(plain, files)
    shutil.copytree(plain, repo, symlinks=True)
    commit_all(repo)

    rows = []
    cases: list[tuple[str, Callable[[], object], Callable[[], int]]] = [
        ("git ls-files alone (floor)", lambda: git_ls_files(repo), lambda: len(git_ls_files(repo)) - 1),
        ("treelens scan via git", lambda: scan(repo), lambda: len(scan(repo).tree.files)),
        (
            "treelens scan by walking",
            lambda: scan(plain, use_git=False),
            lambda: len(scan(plain, use_git=False).tree.files),
        ),
        ("naive os.walk + pathspec", lambda: naive_walk(plain), lambda: len(naive_walk(plain))),
    ]
    for name, run, count in cases:
        slow = name.startswith("naive") and files > 50_000  # about a minute a run: once
        median, fastest = measure(run, 1 if slow else runs, warmup=not slow)
        rows.append((name, median, fastest, count()))
    tree = scan(repo).tree
    median, fastest = measure(lambda: describe(tree), runs)
    rows.append(("model text of the git scan (describe)", median, fastest, len(tree.files)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[20_000, 100_000], help="workspace sizes in files"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case (after one warm-up)")
    parser.add_argument(
        "--keep", type=Path, help="generate workspaces here and keep them (default: a temp dir)"
    )
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="treelens-bench-"))
    try:
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.runs} runs per case")
        for size in args.sizes:
            rows = bench_size(base, size, args.runs)
            floor = rows[0][1]
            print(f"\n{size:,}-file workspace")
            print(f"{'case':40} {'median s':>10} {'min s':>8} {'x floor':>8} {'files':>8}")
            for name, median, fastest, count in rows:
                print(f"{name:40} {median:10.3f} {fastest:8.3f} {median / floor:8.2f} {count:8,}")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
