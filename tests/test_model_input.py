"""The canonical model text (input format 5): golden files, determinism, budget,
manifests first, and the same text for a folder and for the record made from it.

Golden files live in tests/golden/. After an intended change of the format, bump
model.input.INPUT_FORMAT and regenerate them with TREELENS_UPDATE_GOLDEN=1 pytest.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.folders import make_git_repo
from tests.shared_data import labelled_records, record
from treelens.daemon.scan import scan
from treelens.model.dataset import parse_record
from treelens.model.input import INPUT_FORMAT, MIN_MAX_TOKENS, SPECIAL_TOKENS, describe, estimate_tokens
from treelens.model.tree import FileEntry, ProjectTree

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_CASES = [
    # (record id, max tokens): a small web app, an Android app, IaC, and a truncated giant
    ("18F/identity-oidc-sinatra", 4096),
    ("AdamSzL/compose-weather-app", 4096),
    ("DevOps-Boot/fastapi-k8s", 1024),
    ("tidepool-org/data-science-simulator", 512),
]


def golden_name(record_id: str, max_tokens: int) -> str:
    return f"{record_id.replace('/', '__')}.{max_tokens}.txt"


def test_input_format_is_pinned() -> None:
    assert INPUT_FORMAT == 5


@pytest.mark.parametrize(("record_id", "max_tokens"), GOLDEN_CASES)
def test_golden_model_text(record_id: str, max_tokens: int) -> None:
    text = describe(parse_record(record(record_id), record_id).tree, max_tokens=max_tokens).text
    path = GOLDEN / golden_name(record_id, max_tokens)
    if os.environ.get("TREELENS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_text_does_not_depend_on_file_order() -> None:
    data = record("AKJAW/fuller-stack-kotlin-multiplatform")
    tree = ProjectTree.from_record(data)
    shuffled = dict(data, files=random.Random(7).sample(data["files"], len(data["files"])))
    manifests = dict(reversed(list(data["manifests"].items())))
    again = ProjectTree.from_record(dict(shuffled, manifests=manifests))
    assert describe(tree).text == describe(again).text


@pytest.mark.parametrize("max_tokens", [256, 512, 1024, 4096])
def test_every_record_fits_its_budget(max_tokens: int) -> None:
    for data in labelled_records().values():
        result = describe(ProjectTree.from_record(data), max_tokens=max_tokens)
        counted = sum(estimate_tokens(result.text.splitlines(keepends=True)))
        assert result.token_count == counted <= max_tokens - SPECIAL_TOKENS, data["id"]


def letters(number: int) -> str:
    """A file-name part without digits (names with 2+ digits are noise)."""
    out = ""
    while True:
        number, digit = divmod(number, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[digit] + out
        if not number:
            return out


def test_truncation_keeps_manifests_and_shallow_levels_and_summarises() -> None:
    files = [FileEntry(f"assets/img/icon{letters(i)}.txt") for i in range(3000)]
    files += [FileEntry(f"src/deep/er/and/deeper/m{letters(i)}.py") for i in range(500)]
    files += [FileEntry("services/api/nested/package.json"), FileEntry("README")]
    manifests = {"services/api/nested/package.json": '{"dependencies": {"express": "4"}}'}
    result = describe(ProjectTree(files, manifests), max_tokens=400)
    assert result.truncated
    lines = result.text.splitlines()
    assert "      package.json" in lines  # the manifest and its folders, even when deep
    assert "README" in lines  # shallow level first
    assert "    … 2923 more: 2923 .txt" in lines  # what does not fit is summarised
    assert "    er/ … 500 files: 500 .py" in lines  # a folder that does not fit, collapsed
    assert "npm: express" in lines
    assert "# technologies: express" in lines
    assert result.shown_files < result.total_files == 3502


def test_collapsed_folder_summary_format() -> None:
    exts = ["js"] * 30 + ["css"] * 10 + ["map"]
    files = [FileEntry(f"web/static/f{letters(i)}.{ext}") for i, ext in enumerate(exts)]
    files += [FileEntry(f"z{letters(i)}.py") for i in range(200)]
    text = describe(ProjectTree(files), max_tokens=300).text
    assert "web/ … 41 files: 30 .js, 10 .css, 1 .map" in text.splitlines()


def test_noise_is_filtered_but_counted_for_languages() -> None:
    files = [FileEntry(p) for p in ["docs/guide.md", "README.md", "logo.png", "0001_initial.py", "app.py"]]
    result = describe(ProjectTree(files))
    assert result.text.startswith("# tree\napp.py\n# languages: python\n")


def test_vendored_dependencies_are_not_part_of_the_project() -> None:
    """gotty commits its Go dependencies under vendor/ (105 of its 169 files): they are
    installed code, as node_modules is, and said nothing about gotty but "Go library"."""
    text = describe(ProjectTree.from_record(record("yudai/gotty"))).text
    assert "vendor/" not in text
    assert "server/\n  asset.go" in text
    assert "# languages: go typescript " in text


def test_minimum_budget_is_enforced() -> None:
    with pytest.raises(ValueError, match="at least"):
        describe(ProjectTree([FileEntry("a.py")]), max_tokens=MIN_MAX_TOKENS - 1)


path_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_-.", min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)


@settings(max_examples=60, deadline=None)
@given(
    paths=st.lists(st.lists(path_part, min_size=1, max_size=6).map("/".join), min_size=1, max_size=300),
    max_tokens=st.integers(min_value=MIN_MAX_TOKENS, max_value=3000),
)
def test_never_over_budget_for_any_tree(paths: list[str], max_tokens: int) -> None:
    # a path cannot be both a file and a folder
    files = sorted(set(paths))
    folders = {p[:i] for p in files for i in range(len(p)) if p[i] == "/"}
    tree = ProjectTree.from_paths([p for p in files if p not in folders])
    result = describe(tree, max_tokens=max_tokens)
    counted = sum(estimate_tokens(result.text.splitlines(keepends=True)))
    assert counted == result.token_count <= max_tokens - SPECIAL_TOKENS


def materialise(data: dict, root: Path) -> None:
    """Write a record's files to disk: manifests with their text, links as links,
    other files as sparse files of the recorded size."""
    for path, size, kind in data["files"]:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "link":
            target.symlink_to("nowhere")
        elif path in data["manifests"]:
            target.write_text(data["manifests"][path], encoding="utf-8")
        else:
            with open(target, "wb") as handle:
                handle.truncate(size)


EQUALITY_RECORDS = [
    "18F/identity-oidc-sinatra",
    "AKJAW/fuller-stack-kotlin-multiplatform",
    "DevOps-Boot/fastapi-k8s",
    "NikSchaefer/gofiber-boilerplate",
    "AndiHahn/AspNetCore-WebApi-CleanArchitecture",
    "Cap-go/capacitor-updater",
]


@pytest.mark.parametrize("record_id", EQUALITY_RECORDS)
@pytest.mark.parametrize("use_git", [True, False])
def test_folder_and_record_give_the_same_text(record_id: str, use_git: bool, tmp_path: Path) -> None:
    data = record(record_id)
    assert not any(kind == "submodule" for _p, _s, kind in data["files"])
    root = tmp_path / record_id.rsplit("/", 1)[-1]  # a clone's folder: the repository's name
    root.mkdir()
    materialise(data, root)
    if use_git:
        make_git_repo(root)
    scanned = scan(root, use_git=use_git, sizes=True).tree
    from_record = parse_record(data, record_id).tree
    assert describe(scanned).text == describe(from_record).text
    assert scanned.manifests == {p: t for p, t in data["manifests"].items()}
    assert scanned.to_record()["files"] == sorted(
        [p, s, k] for p, s, k in data["files"] if p in {f.path for f in scanned.files}
    )
