"""`treelens-train data build`: data-set records from annotations and local git clones.

An annotation names a public repository and the commit it was read at, with its labels
(``training/annotations.jsonl``: what the team annotated beyond the shared data set, the
way the data set was annotated). The tree and manifests are not stored with it: they are
facts of the repository, read again here from a clone at that commit (`git ls-tree` gives
the tracked files as ``git ls-files`` would, manifests are chosen and cut as the data set
cuts them). The records go to a file that ``finetune``, ``all`` and ``crossval`` read with
``--train-data``. The output is read back with the data-set reader, so a record the
stages would refuse is caught here.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from treelens.daemon.git import read_git
from treelens.model.dataset import DatasetError, parse_record, refuse_existing_output, write_records_file
from treelens.model.errors import UsageError
from treelens.model.guards import bounded_lines, load_json
from treelens.model.manifests import cut_manifest, select_manifests
from treelens.training.options import add_records_output

log = logging.getLogger(__name__)

ANNOTATION_KEYS = ("id", "commit", "labels", "confidence", "frameworks", "note")
"""What an annotation holds: a data-set record without ``files`` and ``manifests``."""
DEFAULT_ANNOTATIONS = Path(__file__).with_name("annotations.jsonl")
GIT_TIMEOUT_S = 120.0
LINK_MODE = "120000"
GITHUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/(?!\.\.?$)[A-Za-z0-9._-]+$")
"""``owner/name`` as GitHub spells it: the id names the clone's folder, so nothing else passes."""


def clone_candidates(repos: Path, record_id: str) -> list[Path]:
    """Where a clone of ``owner/name`` may sit under ``repos``: ``owner+name/repo`` (a
    fetched mirror), ``owner+name``, ``owner/name`` (bare or with a work tree)."""
    owner, _, name = record_id.partition("/")
    return [repos / f"{owner}+{name}" / "repo", repos / f"{owner}+{name}", repos / owner / name]


def git(clone: Path, *args: str) -> bytes:
    """A read-only git command in ``clone`` through the daemon's git runner (no hooks, no
    prompts, bare or work tree alike); a failure is a DatasetError naming it."""
    out = read_git(clone, *args, timeout=GIT_TIMEOUT_S)
    if out is None:
        raise DatasetError(f"{clone}: git {' '.join(args)} failed (a partial clone missing the object?)")
    return out


def find_clone(repos: Path, record_id: str, commit: str) -> Path | None:
    """The first clone of ``record_id`` under ``repos`` that holds ``commit``."""
    for folder in clone_candidates(repos, record_id):
        if folder.is_dir() and read_git(folder, "cat-file", "-e", f"{commit}^{{commit}}") is not None:
            return folder
    return None


def tracked_files(clone: Path, commit: str) -> list[list[Any]]:
    """``[path, size, kind]`` of every tracked file at ``commit``, as the data set lists them.
    A blob a partial clone lacks has no size to read: it is listed with size 0."""
    files: list[list[Any]] = []
    for line in git(clone, "ls-tree", "-r", "-l", "-z", commit).split(b"\0"):
        if not line:
            continue
        meta, path = line.split(b"\t", 1)
        mode, kind, _sha, size = meta.decode("ascii").split()
        name = path.decode("utf-8", "replace")
        if kind == "commit":
            files.append([name, 0, "submodule"])
        else:
            files.append([name, int(size) if size.isdigit() else 0, "link" if mode == LINK_MODE else "file"])
    return files


def manifests(clone: Path, commit: str, files: list[list[Any]]) -> dict[str, str]:
    """The text of the manifests the data set reads, chosen and cut as it cuts them."""
    paths = [path for path, _size, kind in files if kind == "file"]
    return {path: cut_manifest(git(clone, "show", f"{commit}:{path}")) for path in select_manifests(paths)}


def read_annotations(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, annotation) of every line of ``path``, each checked like a data-set record."""
    with open(path, encoding="utf-8") as handle:
        for number, line in bounded_lines(handle, str(path)):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            annotation = load_json(line, where, DatasetError)
            if not isinstance(annotation, dict) or not isinstance(annotation.get("commit"), str):
                raise DatasetError(
                    f"{where}: an annotation is a JSON object with 'id', 'commit' and 'labels'"
                )
            extra = sorted(set(annotation) - set(ANNOTATION_KEYS))
            if extra:
                raise DatasetError(
                    f"{where}: unknown keys {extra}; an annotation holds {list(ANNOTATION_KEYS)}"
                )
            record = parse_record({**annotation, "files": [], "manifests": {}}, where)
            if not GITHUB_ID.match(record.id):
                raise DatasetError(f"{where}: id {record.id!r} is not a GitHub owner/name")
            if not record.labelled:
                raise DatasetError(f"{where} (id {record.id}): an annotation needs 'labels'")
            yield where, annotation


def build(annotations: Path, repos: Path, skip_missing: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of every annotation whose clone is found; and the ids of those not found.
    Without ``skip_missing`` a missing clone is an error that names where it was looked for."""
    records, missing = [], []
    for where, annotation in read_annotations(annotations):
        record_id, commit = annotation["id"], annotation["commit"]
        clone = find_clone(repos, record_id, commit)
        if clone is None:
            if not skip_missing:
                looked = ", ".join(str(p) for p in clone_candidates(repos, record_id))
                raise DatasetError(
                    f"{where}: no clone of {record_id} holding commit {commit[:12]} (looked in {looked}); "
                    f"clone it (git clone https://github.com/{record_id} {repos / record_id}) "
                    "or pass --skip-missing"
                )
            missing.append(record_id)
            continue
        files = tracked_files(clone, commit)
        record = {
            "id": record_id,
            "commit": commit,
            "files": files,
            "manifests": manifests(clone, commit, files),
        }
        record.update({key: annotation[key] for key in ANNOTATION_KEYS[2:] if key in annotation})
        parse_record(record, where)
        records.append(record)
    return records, missing


def cmd_data_build(args: argparse.Namespace) -> int:
    if not args.annotations.is_file():
        raise UsageError(f"--annotations {args.annotations}: no such file")
    if not args.repos.is_dir():
        raise UsageError(f"--repos {args.repos}: no such folder (it holds the clones, one per annotation)")
    refuse_existing_output(args.output, args.overwrite)  # before reading every clone, not after
    records, missing = build(args.annotations, args.repos, args.skip_missing)
    if not records:
        raise DatasetError(f"{args.annotations}: none of its repositories is cloned under {args.repos}")
    checked = write_records_file(
        args.output, args.overwrite, lambda handle: handle.writelines(json.dumps(r) + "\n" for r in records)
    )
    log.info("data build: %d records from %s -> %s", checked, args.annotations, args.output)
    if missing:
        log.warning("data build: %d annotations left out, not cloned: %s", len(missing), ", ".join(missing))
    return 0


def add_build_command(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "build",
        help="data-set records from annotations and local git clones (for --train-data)",
        description=__doc__,
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        default=DEFAULT_ANNOTATIONS,
        help="annotations file, one JSON object per line (default: %(default)s)",
    )
    parser.add_argument(
        "--repos",
        type=Path,
        required=True,
        help="folder of clones: OWNER+NAME/repo, OWNER+NAME or OWNER/NAME, bare or not",
    )
    add_records_output(parser)
    parser.add_argument(
        "--skip-missing", action="store_true", help="build the cloned ones, naming the others (else an error)"
    )
    parser.set_defaults(run=cmd_data_build)
