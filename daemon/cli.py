"""The ``treelens`` command line: parses arguments, calls the library, prints.

Each command scans a folder (daemon/scan.py), a listing or a clone into a tree and walks
the library's pipeline from there (model/pipeline.py), the same way the daemon does.

Every command reports a bad input (missing path, a file instead of a folder, an
unreadable folder, a bad data file) as one line on stderr and exits 1: the expected
failures are TreelensErrors (model/errors.py). Any other exception is a bug and shows its
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from treelens.daemon import clone
from treelens.daemon.scan import ScanResult, scan
from treelens.model.dataset import read_records
from treelens.model.devices import DEFAULT_DEVICE, DEVICES
from treelens.model.errors import TreelensError, UsageError
from treelens.model.filters import NOISE_CATEGORIES, PathFilter
from treelens.model.guards import output_file, read_input
from treelens.model.input import DEFAULT_MAX_TOKENS, Analysis, ModelText, analyze
from treelens.model.labels import LABELS, check_thresholds
from treelens.model.listing import parse_listing
from treelens.model.pipeline import describe_counted, model_labels, suggest_sets, token_counting
from treelens.model.querysets import ENGINES, Catalog, ModelLabels, QuerySet, load_catalog
from treelens.model.querysets.compare import DEFAULT_TIMEOUT_S, compare
from treelens.model.querysets.semgrep import scoped
from treelens.model.tree import ProjectTree

if TYPE_CHECKING:
    from treelens.model.runtime import Classifier

Command = Callable[[argparse.Namespace], int]


def seconds(value: str) -> float:
    """argparse type of a time-out: a finite number of seconds above 0 (``inf``, ``nan``
    and ``1e400`` parse as floats, and a negative or infinite time-out broke the clone)."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0  # refused below, with the same words
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above 0, e.g. 120")
    return number


def _add_tree_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the project folder")
    parser.add_argument(
        "--model",
        type=Path,
        help="model bundle whose tokenizer counts the tokens (default: the shipped one; "
        "without a bundle, token counts are estimates)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        help="token budget of the model text, special tokens included "
        f"(default: the bundle's, else {DEFAULT_MAX_TOKENS})",
    )
    _add_filter_options(parser)


def _add_filter_options(parser: argparse.ArgumentParser) -> None:
    """--ignore, --keep-noise and --no-git: which files of the folder count."""
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


def scan_folder(args: argparse.Namespace) -> ScanResult:
    """Scan the folder named on the command line, warning about folders left out."""
    result = scan(args.path, path_filter=path_filter_from(args), use_git=not args.no_git)
    for folder in result.unreadable:
        print(f"treelens: warning: cannot read folder {folder}; left out", file=sys.stderr)
    return result


def scan_and_describe(args: argparse.Namespace) -> tuple[ScanResult, ModelText]:
    """Scan the folder and render its model text, counted by the bundle's tokenizer so that
    `tree` prints exactly the text the model sees."""
    result = scan_folder(args)
    counting = token_counting(args.model, args.max_tokens)
    if counting.note:
        print(f"treelens: note: {counting.note}", file=sys.stderr)
    return result, describe_counted(result.tree, counting, path_filter_from(args))


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
    _add_filter_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")


def scan_and_suggest(
    args: argparse.Namespace, catalogs: dict[str, Catalog]
) -> tuple[ScanResult, Analysis, dict[str, QuerySet]]:
    """Scan the folder, then the query set of each catalog's engine, gated by the model's
    labels unless --no-model."""
    result = scan(args.path, path_filter=path_filter_from(args), use_git=not args.no_git)
    analysis = analyze(result.tree, path_filter_from(args))
    if args.no_model:
        labels = ModelLabels(None, None, "--no-model: label gates off, decided on languages and technologies")
    else:
        labels = model_labels(result.tree, args.model)
    return result, analysis, suggest_sets(analysis, catalogs, labels, result.root.name, result.root)


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
            raise UsageError(f"--catalog {value}: with several engines, write ENGINE=PATH")
    unknown = set(paths) - set(engines)
    if unknown:
        raise UsageError(f"--catalog given for {', '.join(sorted(unknown))}, which is not among --engine")
    return paths


def cmd_suggest(args: argparse.Namespace) -> int:
    """Print the query set worth running per engine, or write one engine's config."""
    engines = list(dict.fromkeys(args.engine))
    if args.out and len(engines) != 1:
        raise UsageError("--out writes one engine's config: give exactly one --engine")
    catalogs = {e: load_catalog(e, p) for e, p in _catalog_paths(engines, args.catalog).items()}
    result, _analysis, sets = scan_and_suggest(args, catalogs)
    sets = {
        e: scoped(
            qs, result.tree, result.root, components=args.scope_components, skip_vendored=args.skip_vendored
        )
        for e, qs in sets.items()
    }
    if args.out:
        with output_file(args.out, "--out") as partial:
            partial.write_text(sets[engines[0]].config["text"], encoding="utf-8")
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
    result, analysis, sets = scan_and_suggest(args, {"semgrep": catalog})
    comparison = compare(
        result.root, catalog, sets["semgrep"], analysis, semgrep=args.semgrep, timeout=args.timeout
    )
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(comparison.summary_lines()))
    return 0


def _add_classify_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("path", nargs="?", type=Path, help="the project folder")
    source.add_argument(
        "--dataset",
        type=Path,
        metavar="FILE",
        help="a data-set file (.jsonl[.gz]): one result line per record",
    )
    source.add_argument(
        "--tree-file",
        type=Path,
        metavar="FILE",
        help="a client-built tree: `git ls-files` output or a `tree` / `eza -T` drawing ('-' for stdin)",
    )
    source.add_argument("--git", metavar="URL", help="shallow-clone an https or ssh remote and classify it")
    parser.add_argument(
        "--ref", help="with --git: branch, tag or commit (default: the remote's default branch)"
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=clone.DEFAULT_TIMEOUT_S,
        help="with --git: seconds allowed for the clone",
    )
    parser.add_argument("--model", type=Path, help="model bundle folder (default: the shipped one)")
    parser.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE, help="where the model runs")
    parser.add_argument("--threads", type=int, help="CPU threads of the model (default: up to 4)")
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="LABEL=P",
        help="override a label's threshold, e.g. cli=0.4 (repeatable)",
    )
    _add_filter_options(parser)
    parser.add_argument("--json", action="store_true", help="print the classify result as JSON")


def _thresholds(values: list[str]) -> dict[str, float]:
    """--threshold LABEL=P values, checked (label names, ranges) by model.labels. Checked here,
    not by an argparse type: a bad value exits 1 with one line, like every bad value."""
    thresholds = {}
    for value in values:
        name, _sep, number = value.partition("=")
        try:
            thresholds[name] = float(number)
        except ValueError:
            raise UsageError(f"--threshold {value}: write LABEL=P with P a number, e.g. cli=0.4") from None
        if math.isnan(thresholds[name]):
            raise UsageError(f"--threshold {value}: write LABEL=P with P a number, e.g. cli=0.4")
    return check_thresholds(thresholds)


class _Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.done, self.what = total, 0, what
        self.tty = sys.stderr.isatty()
        self._shown = -1

    def __call__(self, finished: int) -> None:
        self.done += finished
        share = self.done / max(self.total, 1)
        if self.tty:
            bar = "#" * int(30 * share)
            end = "\n" if self.done >= self.total else ""
            sys.stderr.write(f"\r{self.what} {self.done}/{self.total} [{bar:<30}] {share:4.0%}{end}")
        elif int(share * 10) > self._shown:
            self._shown = int(share * 10)
            sys.stderr.write(f"{self.what} {self.done}/{self.total} ({share:.0%})\n")
        sys.stderr.flush()


def labels_line(result: dict) -> str:
    """``backend, has_api, library?``: the labels, then the uncertain ones marked with '?'."""
    if result["noProjectFiles"]:
        return "no project files found (an empty folder, or every file ignored or filtered as noise)"
    shown = [*result["labels"], *(f"{name}?" for name in result["uncertain"])]
    return ", ".join(shown) or "no label"


def _print_classification(source: str, result: dict) -> None:
    print(f"{source}: {labels_line(result)}")
    for name in LABELS if result["probabilities"] else ():
        p, t = result["probabilities"][name], result["thresholds"][name]
        mark = "  *" if name in result["labels"] else "  ?" if name in result["uncertain"] else ""
        print(f"  {name:9} {p:6.3f}  (threshold {t:.2f}){mark}")
    tokens = f"{result['tokenCount']} tokens" + (", truncated" if result["truncated"] else "")
    print(f"  model {result['modelVersion']}, {tokens}, {result['elapsedMs']} ms")
    print(f"  languages: {', '.join(result['languages']) or 'none'}")
    print(f"  technologies: {', '.join(result['technologies']) or 'none'}")


def cmd_classify(args: argparse.Namespace) -> int:
    """Labels of a folder, a client-built tree, a git remote, or every record of a data file."""
    from treelens.model.runtime import Classifier  # onnxruntime loads only for this command

    if args.ref and not args.git:
        raise UsageError("--ref goes with --git")
    thresholds = _thresholds(args.threshold)
    path_filter = path_filter_from(args)
    classifier = Classifier.load(args.model, device=args.device, threads=args.threads)
    if args.dataset:
        return _classify_dataset(classifier, args, thresholds, path_filter)
    if args.tree_file:
        text = read_input(args.tree_file, "--tree-file")
        source, tree = str(args.tree_file), ProjectTree.from_paths(parse_listing(text))
    elif args.git:
        with clone.shallow_clone(args.git, args.ref, args.timeout) as work:
            source, tree = args.git, scan(work, path_filter=path_filter, use_git=True).tree
    else:
        scanned = scan_folder(args)
        source, tree = str(scanned.root), scanned.tree
    started = time.perf_counter()
    result = classifier.classify(tree, path_filter=path_filter, thresholds=thresholds).to_json()
    result["elapsedMs"] = round((time.perf_counter() - started) * 1000, 1)
    if args.json:
        print(json.dumps({"source": source, **result}, indent=2, ensure_ascii=False))
    else:
        _print_classification(source, result)
    return 0


def _classify_dataset(
    classifier: Classifier, args: argparse.Namespace, thresholds: dict[str, float], path_filter: PathFilter
) -> int:
    """One line per record: JSON {"id", "labels", "probabilities"} (--json) or "id: labels"."""
    records = list(read_records(args.dataset))
    progress = _Progress(len(records), "classify")
    chunk = 32  # lines are printed (and flushed) per chunk; the model runs one text at a time anyway
    for start in range(0, len(records), chunk):
        part = records[start : start + chunk]
        texts = [classifier.describe(r.tree, path_filter) for r in part]
        for record, result in zip(
            part, classifier.classify_texts(texts, thresholds, progress=progress), strict=True
        ):
            if args.json:
                line = {"id": record.id, "labels": result.labels, "probabilities": result.probabilities}
                print(json.dumps(line, ensure_ascii=False))
            else:
                print(f"{record.id}: {', '.join(result.labels) or 'no label'}")
        sys.stdout.flush()
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
        help="semgrep, codeql, bandit or checkov (repeatable)",
    )
    suggest_cmd.add_argument(
        "--catalog",
        action="append",
        default=[],
        metavar="[ENGINE=]PATH",
        help="semgrep: rules folder or index .jsonl (default: ../shared/data/semgrep-rules-index.jsonl); "
        "codeql: query pack folder (required); bandit, checkov: none, the installed tool",
    )
    suggest_cmd.add_argument("--out", type=Path, metavar="FILE", help="write the engine's config to FILE")
    suggest_cmd.add_argument(
        "--skip-vendored",
        action="store_true",
        help="semgrep: leave vendored, generated and minified files out (policy.yaml `vendored`, "
        ".gitattributes linguist-vendored/-generated); the JSON config names each pattern",
    )
    suggest_cmd.add_argument(
        "--scope-components",
        action="store_true",
        help="semgrep rules folder: exclude each rule from the components holding none of its languages",
    )
    suggest_cmd.set_defaults(run=cmd_suggest)

    compare_cmd = commands.add_parser(
        "scan-compare",
        help="semgrep with every rule, the languages-present filter and the suggested set, each one merged "
        "JSON rules file; times, findings, every missed finding",
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
        type=seconds,
        default=DEFAULT_TIMEOUT_S,
        help="seconds allowed per semgrep run (default 600)",
    )
    compare_cmd.set_defaults(run=cmd_scan_compare)

    classify = commands.add_parser(
        "classify", help="labels of a folder, a tree listing, a git remote, or every record of a data file"
    )
    _add_classify_options(classify)
    classify.set_defaults(run=cmd_classify)
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
    except TreelensError as error:
        print(f"treelens: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `treelens tree . | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
