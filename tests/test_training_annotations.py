"""The team's annotations: records built from real git clones (`treelens-train data build`),
and ``--train-data``: records that train every fold and never validate or test."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.folders import git, make_git_repo, write_files
from tests.shared_data import labelled_records
from tests.tiny_model import pretrain_cli, tiny_records, write_records
from treelens.model.bundle import load_bundle
from treelens.model.dataset import read_records
from treelens.model.labels import LABELS
from treelens.training.records_from_git import DEFAULT_ANNOTATIONS, read_annotations

CLI = [sys.executable, "-m", "treelens.training.cli"]
PACKAGE_JSON = '{"name": "shop", "dependencies": {"express": "^4.18.0"}}\n'


def labels(*names: str) -> dict[str, int]:
    return {name: int(name in names) for name in LABELS}


def annotation(record_id: str, commit: str, *names: str) -> dict:
    return {
        "id": record_id,
        "commit": commit,
        "labels": labels(*names),
        "confidence": "high",
        "frameworks": ["express"],
        "note": "An Express API.",
    }


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder of clones in two layouts: ``acme+shop/repo`` (bare, as fetched mirrors are)
    and ``acme/tool`` (a work tree); returns it and the commit each annotation names."""
    work = tmp_path / "work"
    write_files(work, {"package.json": PACKAGE_JSON, "src/server.js": "app.listen(3000)\n"})
    make_git_repo(work)
    (work / "link.js").symlink_to("src/server.js")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "link")
    first = git(work, "rev-parse", "HEAD").strip()
    write_files(work, {"later.txt": "added after the annotated commit\n"})
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "later")
    repos = tmp_path / "repos"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repos / "acme+shop" / "repo")], check=True)
    tool = repos / "acme" / "tool"
    write_files(
        tool, {"Cargo.toml": '[package]\nname = "tool"\n\n[[bin]]\nname = "tool"\n', "src/main.rs": ""}
    )
    make_git_repo(tool)
    return repos, {"acme/shop": first, "acme/tool": git(tool, "rev-parse", "HEAD").strip()}


def build(annotations: list[dict], repos: Path, output: Path, *flags: str) -> subprocess.CompletedProcess:
    output.parent.mkdir(parents=True, exist_ok=True)
    source = write_records(output.parent / "annotations.jsonl", annotations)
    command = [
        *CLI,
        "data",
        "build",
        "--annotations",
        str(source),
        "--repos",
        str(repos),
        "--output",
        str(output),
    ]
    return subprocess.run([*command, *flags], capture_output=True, text=True, timeout=120)


def test_build_reads_the_tree_at_the_annotated_commit(clones, tmp_path: Path) -> None:
    """Each record holds the tracked files (size, kind) and manifests at the annotation's
    commit, not the clone's newest, with the annotation's labels and note, as the data set
    holds them; the stages read the file back."""
    repos, commits = clones
    wanted = [annotation("acme/shop", commits["acme/shop"], "backend", "has_api")]
    wanted.append(annotation("acme/tool", commits["acme/tool"], "cli"))
    output = tmp_path / "out" / "records.jsonl.gz"
    done = build(wanted, repos, output)
    assert done.returncode == 0, done.stderr
    assert "2 records from" in done.stderr
    with gzip.open(output, "rt", encoding="utf-8") as handle:
        shop, tool = (json.loads(line) for line in handle)
    assert shop["commit"] == commits["acme/shop"] and shop["labels"] == labels("backend", "has_api")
    assert sorted(shop["files"]) == [
        ["link.js", len("src/server.js"), "link"],
        ["package.json", len(PACKAGE_JSON), "file"],
        ["src/server.js", len("app.listen(3000)\n"), "file"],
    ]  # later.txt came after the annotated commit
    assert shop["manifests"] == {"package.json": PACKAGE_JSON} and shop["note"] == "An Express API."
    assert list(tool["manifests"]) == ["Cargo.toml"] and tool["labels"] == labels("cli")
    assert [r.id for r in read_records(output)] == ["acme/shop", "acme/tool"]


def test_a_missing_clone_is_an_error_that_writes_nothing(clones, tmp_path: Path) -> None:
    """A repository without a clone (or whose clone lacks the commit) stops the build and
    says where it looked; --skip-missing builds the rest and names what it left out."""
    repos, commits = clones
    wanted = [annotation("acme/shop", commits["acme/shop"], "backend")]
    wanted.append(annotation("acme/gone", commits["acme/shop"], "cli"))
    wanted.append(annotation("acme/tool", commits["acme/shop"], "cli"))  # not a commit of acme/tool
    output = tmp_path / "records.jsonl"
    refused = build(wanted, repos, output)
    assert refused.returncode == 1 and not output.exists()
    assert "no clone of acme/gone holding commit" in refused.stderr and "--skip-missing" in refused.stderr
    assert str(repos / "acme" / "gone") in refused.stderr
    done = build(wanted, repos, output, "--skip-missing")
    assert done.returncode == 0, done.stderr
    assert "2 annotations left out, not cloned: acme/gone, acme/tool" in done.stderr
    assert [r.id for r in read_records(output)] == ["acme/shop"]
    again = build(wanted, repos, output, "--skip-missing")
    assert again.returncode == 1 and "exists; pass --overwrite" in again.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": None}, "an annotation needs 'labels'"),
        ({"files": []}, "unknown keys ['files']"),
        ({"labels": {**labels(), "backend": 2}}, "backend"),
        ({"labels": {"backend": 1}}, "missing label(s)"),
        ({"commit": 7}, "a JSON object with 'id', 'commit' and 'labels'"),
        ({"id": "acme/.."}, "is not a GitHub owner/name"),
        ({"id": "../../etc"}, "is not a GitHub owner/name"),
    ],
)
def test_a_bad_annotation_names_its_line(clones, tmp_path: Path, change: dict, message: str) -> None:
    repos, commits = clones
    bad = {**annotation("acme/tool", commits["acme/tool"], "cli"), **change}
    if bad["labels"] is None:
        del bad["labels"]
    done = build([annotation("acme/shop", commits["acme/shop"]), bad], repos, tmp_path / "r.jsonl")
    assert done.returncode == 1 and "annotations.jsonl:2" in done.stderr and message in done.stderr


def test_the_shipped_annotations_are_well_formed() -> None:
    """training/annotations.jsonl and annotations-2.jsonl to annotations-5.jsonl (the later
    batches): every line an annotation with all 8 labels, a full commit hash and a note; no
    repository twice, in one file or across them, and none the shared data set holds."""
    later = (DEFAULT_ANNOTATIONS.with_name(f"annotations-{n}.jsonl") for n in (2, 3, 4, 5))
    files = [DEFAULT_ANNOTATIONS, *later]
    batches = [[row for _, row in read_annotations(path)] for path in files]
    assert [len(batch) for batch in batches] == [329, 311, 360, 446, 434]  # shipped: the first four
    rows = [row for batch in batches for row in batch]
    ids = [row["id"].lower() for row in rows]
    assert len(set(ids)) == len(ids)
    assert all(set(row["labels"]) == set(LABELS) and len(row["commit"]) == 40 and row["note"] for row in rows)
    assert not {record_id.lower() for record_id in labelled_records()} & set(ids)


def renamed(records: list[dict], prefix: str) -> list[dict]:
    return [{**r, "id": f"{prefix}/{r['id'].replace('/', '-')}"} for r in records if "labels" in r]


def test_crossval_train_data_trains_every_fold_and_tests_none(tiny_run, tiny_data, tmp_path: Path) -> None:
    """--train-data: its records join every fold's training records (one the data set holds
    already is left out), the test folds and every score stay on --data's records."""
    extra = renamed(tiny_records(), "extra")[:4]
    already = next(r for r in tiny_records() if "labels" in r)  # the data set's own record
    train_data = write_records(tmp_path / "train-only.jsonl", [*extra, already])
    command = [*CLI, "crossval", "--skip-model", "--folds", "2", "--data", str(tiny_data)]
    command += ["--pretrained", str(tiny_run / "pretrain"), "--train-data", str(train_data)]
    out = tmp_path / "cv"
    done = subprocess.run([*command, "--output-dir", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 records the data set holds already are left out" in done.stderr
    assert "4 labelled records that only train" in done.stderr
    assert "8 train, 1 validation, 5 test" in done.stderr  # 4 of the data set's own + 4
    result = json.loads((out / "crossval.json").read_text())
    assert result["samples"] == 10 and result["train_only"] == 4
    folds = json.loads((out / "folds.json").read_text())
    assert sorted(i for fold in folds for i in fold) == sorted(
        r.id for r in read_records(tiny_data) if r.labelled
    )
    assert "joined by 4 that only train (--train-data)" in (out / "crossval.md").read_text()
    unlabelled = write_records(
        tmp_path / "unlabelled.jsonl", [{k: v for k, v in extra[0].items() if k != "labels"}]
    )
    command[command.index(str(train_data))] = str(unlabelled)
    refused = subprocess.run(
        [*command, "--output-dir", str(tmp_path / "cv2")], capture_output=True, text=True
    )
    assert refused.returncode == 1 and "training-only records must be labelled" in refused.stderr


def test_pretrain_train_data_adds_training_trees(tiny_run, tiny_data, tmp_path: Path) -> None:
    """`pretrain --train-data`: the records' trees join the training texts; the MLM
    validation texts stay the data set's own."""
    extra = write_records(tmp_path / "train-only.jsonl", renamed(tiny_records(), "extra")[:3])
    plain = pretrain_cli(tiny_run, tiny_data, tmp_path / "plain")
    joined = pretrain_cli(tiny_run, tiny_data, tmp_path / "joined", "--train-data", str(extra))
    assert plain.returncode == 0 and joined.returncode == 0, joined.stderr[-3000:]
    assert "3 labelled records that only train" in joined.stderr
    pattern = r"train samples (\d+), eval samples (\d+)"
    counts = [re.search(pattern, done.stderr).groups() for done in (plain, joined)]
    (train, evaluated), (train_joined, evaluated_joined) = counts
    assert int(train_joined) == int(train) + 3 and evaluated_joined == evaluated


def test_all_train_data_trains_the_bundle_and_its_baselines(tiny_data, tmp_path: Path) -> None:
    """`all --train-data`: the records' trees join the pretraining, the records join
    finetune's training split, and the bundle's manifest counts them; the evaluate stage fits
    its baselines on them too; the held-out test records are the data set's alone."""
    extra = write_records(tmp_path / "train-only.jsonl", renamed(tiny_records(), "extra")[:3])
    command = [*CLI, "all", "--preset", "tiny", "--data", str(tiny_data), "--train-data", str(extra)]
    done = subprocess.run([*command, "--output-dir", str(tmp_path / "run")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    data = load_bundle(tmp_path / "run" / "export" / "bundle").manifest["training"]["data"]
    assert data["train_only"] == 3 and data["records"]["train"] == 4 + 3 and data["records"]["test"] == 3
    assert done.stderr.count("3 labelled records that only train") == 3  # pretrain, finetune, baselines
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert metrics["samples"] == 3 and "tf-idf baseline" in metrics["systems"]
