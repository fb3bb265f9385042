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
from model.input import DEFAULT_MAX_TOKENS, ModelText, describe

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
    except (ScanError, DatasetError, ValueError) as error:
        print(f"treelens: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `treelens tree . | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
