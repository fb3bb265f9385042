"""The ``treelens`` command line: parses arguments and calls the library.

Every command reports a bad input (missing path, a file instead of a folder, an
unreadable folder, a bad data file) as one line on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from daemon.scan import ScanError, ScanResult, scan
from model.dataset import DatasetError
from model.filters import NOISE_CATEGORIES, PathFilter
from model.input import DEFAULT_MAX_TOKENS, ModelText, analyze, describe
from model.querysets import (
    ENGINES,
    CatalogError,
    ModelLabels,
    PolicyError,
    load_catalog,
    model_labels,
    suggest,
)
from model.querysets.compare import DEFAULT_TIMEOUT_S, SemgrepError, compare
from model.tree import ProjectTree

Command = Callable[[argparse.Namespace], int]


def _add_tree_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the project folder")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help=f"token budget of the model text, special tokens included (default {DEFAULT_MAX_TOKENS})",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="GLOB",
        help="extra gitignore-style pattern to leave out (repeatable)",
    )
    parser.add_argument(
        "--keep-noise",
        action="append",
        default=[],
        choices=NOISE_CATEGORIES,
        help="show a noise category that is filtered by default (repeatable)",
    )
    parser.add_argument("--no-git", action="store_true", help="walk the folder even inside a git work tree")


def path_filter_from(args: argparse.Namespace) -> PathFilter:
    """The PathFilter the --ignore / --keep-noise options ask for."""
    return PathFilter(
        noise=frozenset(NOISE_CATEGORIES) - set(args.keep_noise),
        extra_ignores=tuple(args.ignore),
    )


def scan_and_describe(args: argparse.Namespace) -> tuple[ScanResult, ModelText]:
    """Scan the folder named on the command line and render its model text."""
    path_filter = path_filter_from(args)
    result = scan(args.path, path_filter=path_filter, use_git=not args.no_git)
    for folder in result.unreadable:
        print(f"treelens: warning: cannot read folder {folder}; left out", file=sys.stderr)
    text = describe(result.tree, max_tokens=args.max_tokens, path_filter=path_filter)
    return result, text


def cmd_tree(args: argparse.Namespace) -> int:
    """Print the model text of a folder."""
    _result, text = scan_and_describe(args)
    sys.stdout.write(text.text)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print tree statistics, languages, technologies and dependencies."""
    result, text = scan_and_describe(args)
    facts = text.analysis
    report = {
        "root": str(result.root),
        "method": result.method,
        "files": len(result.tree.files),
        "projectFiles": text.total_files,
        "shownFiles": text.shown_files,
        "tokenCount": text.token_count,
        "truncated": text.truncated,
        "languages": facts.languages,
        "technologies": facts.technologies,
        "dependencies": facts.dependencies,
        "manifests": facts.manifests,
        "unreadable": result.unreadable,
        "limited": result.limited,
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{report['root']} ({result.method}): {report['files']} files, "
        f"{report['shownFiles']} shown in {report['tokenCount']} tokens"
        f"{' (truncated)' if text.truncated else ''}"
    )
    print("languages:    " + (", ".join(f"{k} {v}" for k, v in facts.languages.items()) or "none"))
    print("technologies: " + (", ".join(facts.technologies) or "none"))
    for ecosystem, names in facts.dependencies.items():
        print(f"{ecosystem + ':':13} {', '.join(names)}")
    return 0


def _add_query_set_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the project folder")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", type=Path, help="model bundle folder (default: the shipped one)")
    model.add_argument(
        "--no-model", action="store_true", help="decide on languages and technologies alone, no labels"
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="GLOB",
        help="extra pattern to leave out (repeatable)",
    )
    parser.add_argument("--no-git", action="store_true", help="walk the folder even inside a git work tree")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _labels_for(args: argparse.Namespace, tree: ProjectTree) -> ModelLabels:
    if args.no_model:
        return ModelLabels(None, None, "--no-model: label gates off, decided on languages and technologies")
    return model_labels(tree, args.model)


def _catalog_paths(engines: list[str], given: list[str]) -> dict[str, Path | None]:
    """--catalog values as ENGINE=PATH, or a bare PATH when one engine is asked for."""
    paths: dict[str, Path | None] = dict.fromkeys(engines)
    for value in given:
        engine, sep, path = value.partition("=")
        if sep and engine in ENGINES:
            paths[engine] = Path(path)
        elif len(engines) == 1:
            paths[engines[0]] = Path(value)
        else:
            raise ValueError(f"--catalog {value}: with several engines, write ENGINE=PATH")
    unknown = set(paths) - set(engines)
    if unknown:
        raise ValueError(f"--catalog given for {', '.join(sorted(unknown))}, which is not among --engine")
    return paths


def cmd_suggest(args: argparse.Namespace) -> int:
    """Print the query set worth running per engine, or write one engine's config."""
    engines = list(dict.fromkeys(args.engine))
    if args.out and len(engines) != 1:
        raise ValueError("--out writes one engine's config: give exactly one --engine")
    catalogs = {e: load_catalog(e, p) for e, p in _catalog_paths(engines, args.catalog).items()}
    result = scan(
        args.path, path_filter=PathFilter(extra_ignores=tuple(args.ignore)), use_git=not args.no_git
    )
    analysis = analyze(result.tree, PathFilter(extra_ignores=tuple(args.ignore)))
    labels = _labels_for(args, result.tree)
    sets = {
        e: suggest(
            analysis, e, c, labels.probabilities, labels.thresholds, note=labels.note, name=result.root.name
        )
        for e, c in catalogs.items()
    }
    if args.out:
        args.out.write_text(sets[engines[0]].config["text"], encoding="utf-8")
    if args.json:
        print(json.dumps({e: qs.to_json() for e, qs in sets.items()}, indent=2, ensure_ascii=False))
        return 0
    for qs in sets.values():
        print("\n".join(qs.summary_lines()))
        target = f"written to {args.out}" if args.out else f"use --out FILE to write {qs.config['fileName']}"
        print(f"  config ({qs.config['format']}): {target}")
    return 0


def cmd_scan_compare(args: argparse.Namespace) -> int:
    """Run semgrep with every rule, then with the suggested set, and list what was missed."""
    catalog = load_catalog("semgrep", args.catalog)
    result = scan(
        args.path, path_filter=PathFilter(extra_ignores=tuple(args.ignore)), use_git=not args.no_git
    )
    analysis = analyze(result.tree, PathFilter(extra_ignores=tuple(args.ignore)))
    labels = _labels_for(args, result.tree)
    query_set = suggest(
        analysis,
        "semgrep",
        catalog,
        labels.probabilities,
        labels.thresholds,
        note=labels.note,
        name=result.root.name,
    )
    comparison = compare(result.root, catalog, query_set, semgrep=args.semgrep, timeout=args.timeout)
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(comparison.summary_lines()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treelens",
        description="Classify a project from its file tree and suggest the SAST queries worth running.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tree = commands.add_parser("tree", help="print the model text of a folder")
    _add_tree_options(tree)
    tree.set_defaults(run=cmd_tree)

    inspect = commands.add_parser(
        "inspect", help="tree stats, languages, technologies and dependencies of a folder"
    )
    _add_tree_options(inspect)
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(run=cmd_inspect)

    suggest_cmd = commands.add_parser(
        "suggest", help="the SAST queries worth running on a folder, per engine"
    )
    _add_query_set_options(suggest_cmd)
    suggest_cmd.add_argument(
        "--engine",
        action="append",
        required=True,
        choices=ENGINES,
        help="semgrep, codeql or bandit (repeatable)",
    )
    suggest_cmd.add_argument(
        "--catalog",
        action="append",
        default=[],
        metavar="[ENGINE=]PATH",
        help="semgrep: rules folder or index .jsonl (default: ../shared/data/semgrep-rules-index.jsonl); "
        "codeql: query pack folder (required); bandit: none, the installed package",
    )
    suggest_cmd.add_argument("--out", type=Path, metavar="FILE", help="write the engine's config to FILE")
    suggest_cmd.set_defaults(run=cmd_suggest)

    compare_cmd = commands.add_parser(
        "scan-compare", help="run semgrep with every rule, then the suggested set; list missed findings"
    )
    _add_query_set_options(compare_cmd)
    compare_cmd.add_argument(
        "--catalog", type=Path, required=True, metavar="RULES_DIR", help="semgrep rules folder"
    )
    compare_cmd.add_argument(
        "--semgrep", metavar="EXE", help="semgrep executable (default: beside Python, or PATH)"
    )
    compare_cmd.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds allowed per semgrep run (default 600)",
    )
    compare_cmd.set_defaults(run=cmd_scan_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="treelens: %(message)s",
        stream=sys.stderr,
    )
    run: Command = args.run
    try:
        return run(args)
    except (ScanError, DatasetError, CatalogError, PolicyError, SemgrepError, ValueError) as error:
        print(f"treelens: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `treelens tree . | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
