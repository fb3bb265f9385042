"""The daemon's incremental tree: after any change, applying just the touched paths must
give exactly the tree a full scan gives (git work tree and plain folder alike)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from tests.folders import make_git_repo, write_files
from treelens.daemon.folder_tree import FolderTree
from treelens.daemon.scan import scan
from treelens.model.filters import PathFilter

PROJECT = {
    ".gitignore": "*.log\n!keep.log\ngenerated/\n",
    "package.json": '{"dependencies": {"express": "^4"}}',
    "src/app.js": "",
    "src/routes/users.js": "",
    "keep.log": "",
    "sub/.gitignore": "secret*\n",
    "sub/code.py": "",
    "docs/readme.md": "",
}

NAMES = [
    "src/a.js",
    "src/routes/b.ts",
    "src/deep/er/c.go",
    "sub/secret.txt",
    "sub/ok.txt",
    "debug.log",
    "keep.log",
    "generated/out.js",
    "node_modules/left-pad/index.js",
    "build/x.o",
    "venvish/pyvenv.cfg",
    "venvish/lib/site.py",
    "requirements.txt",
    "android/app/AndroidManifest.xml",
    "android/app/src/Main.kt",
    "ignored-by-setting/x.py",
]
DIRS = ["src/deep", "src/routes", "android", "sub", "generated", "new-folder"]


def _record(tree: FolderTree) -> dict:
    return _shape(tree.snapshot().to_record())


def _scanned(root: Path, path_filter: PathFilter) -> dict:
    return _shape(scan(root, path_filter=path_filter).tree.to_record())


def _shape(record: dict) -> dict:
    """Paths, kinds and manifest texts: what the model text is made of (the scanner reads
    sizes only on request, so they may differ)."""
    return {
        "files": [(path, kind) for path, _size, kind in record["files"]],
        "manifests": record["manifests"],
    }


def _random_change(rng: random.Random, root: Path) -> set[str]:
    """One file-system change; returns the paths a watcher would report."""
    choice = rng.random()
    if choice < 0.45:
        rel = rng.choice(NAMES)
        path = root / rel
        if path.is_dir():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x" * rng.randint(0, 50))
        return {rel}
    if choice < 0.65:
        rel = rng.choice(NAMES + DIRS)
        path = root / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        return {rel}
    if choice < 0.8:
        source, target = rng.choice(DIRS), rng.choice([*DIRS, "moved/here"])
        if not (root / source).is_dir() or target.startswith(source) or (root / target).exists():
            return set()
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        os.rename(root / source, root / target)
        return {source, target}
    if choice < 0.9:
        rel = rng.choice(DIRS)
        (root / rel / "nested" / "more").mkdir(parents=True, exist_ok=True)
        (root / rel / "nested" / "more" / "file.rs").write_text("")
        (root / rel / "nested" / "Cargo.toml").write_text('[dependencies]\nserde = "1"\n')
        return {rel + "/nested"}
    # rewrite a manifest in place (a watcher reports the finished write)
    manifest = root / "package.json"
    package = rng.choice(["react", "vue", "express"])
    manifest.write_text(json.dumps({"dependencies": {package: "1"}}))
    return {"package.json"}


@pytest.mark.parametrize("use_git", [True, False], ids=["git", "walk"])
@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_updates_match_a_full_scan(tmp_path: Path, use_git: bool, seed: int) -> None:
    write_files(tmp_path, PROJECT)
    if use_git:
        make_git_repo(tmp_path)
    path_filter = PathFilter(extra_ignores=("ignored-by-setting/",))
    tree = FolderTree(tmp_path, path_filter)
    tree.rescan()
    assert tree.info.method == ("git" if use_git else "walk")
    rng = random.Random(seed)
    for step in range(30):
        touched = _random_change(rng, tmp_path)
        tree.apply(touched)
        assert _record(tree) == _scanned(tmp_path, path_filter), f"step {step}: {sorted(touched)}"


def test_apply_reports_whether_the_tree_changed(tmp_path: Path) -> None:
    write_files(tmp_path, PROJECT)
    make_git_repo(tmp_path)
    tree = FolderTree(tmp_path, PathFilter())
    tree.rescan()
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "index.js").write_text("")
    (tmp_path / "debug.log").write_text("")
    assert not tree.apply({"node_modules/x/index.js", "debug.log", "gone-already.txt"})
    (tmp_path / "src" / "new.js").write_text("")
    assert tree.apply({"src/new.js"})
    assert "src/new.js" in tree.files


def test_manifest_text_follows_rewrites(tmp_path: Path) -> None:
    write_files(tmp_path, PROJECT)
    tree = FolderTree(tmp_path, PathFilter())
    tree.rescan()
    (tmp_path / "package.json").write_text('{"dependencies": {"react": "18"}}')
    assert tree.apply({"package.json"})
    assert "react" in tree.manifests["package.json"]
    (tmp_path / "package.json").unlink()
    assert tree.apply({"package.json"})
    assert "package.json" not in tree.manifests


def test_script_languages_follow_changes(tmp_path: Path) -> None:
    """A shebang is read when a file comes or is rewritten, as a full scan reads it, and
    a snapshot hands the same scripts the scanner would."""
    write_files(tmp_path, {**PROJECT, "mvnw": "#!/bin/sh\nexec java\n"})
    tree = FolderTree(tmp_path, PathFilter())
    tree.rescan()
    assert tree.snapshot().scripts == {"mvnw": "bash"}
    write_files(tmp_path, {"bin/tool": "#!/usr/bin/env python3\n", "mvnw": "echo no shebang\n"})
    tree.apply({"bin/tool", "mvnw"})
    assert tree.snapshot().scripts == {"bin/tool": "python"} == scan(tmp_path).tree.scripts
    (tmp_path / "bin" / "tool").unlink()
    tree.apply({"bin/tool"})
    assert tree.snapshot().scripts == {} == scan(tmp_path).tree.scripts


def test_a_new_gitignore_in_a_new_folder_rescans(tmp_path: Path) -> None:
    write_files(tmp_path, PROJECT)
    tree = FolderTree(tmp_path, PathFilter())
    tree.rescan()
    write_files(tmp_path, {"lib/.gitignore": "*.tmp\n", "lib/a.tmp": "", "lib/b.py": ""})
    assert tree.apply({"lib"})
    assert "lib/b.py" in tree.files and "lib/a.tmp" not in tree.files
    assert tree.ignores.excluded("lib/c.tmp")


def test_nested_repository_is_one_entry_in_a_git_work_tree(tmp_path: Path) -> None:
    write_files(tmp_path, PROJECT)
    make_git_repo(tmp_path)
    tree = FolderTree(tmp_path, PathFilter())
    tree.rescan()
    write_files(tmp_path, {"libs/lib/a.py": "", "libs/lib/b.py": ""})
    make_git_repo(tmp_path / "libs" / "lib")
    tree.apply({"libs"})
    assert _record(tree) == _scanned(tmp_path, PathFilter())
    assert tree.files["libs/lib"].kind == "submodule"
    (tmp_path / "libs" / "lib" / "c.py").write_text("")
    assert not tree.apply({"libs/lib/c.py"})


def test_deleted_root_is_a_scan_error(tmp_path: Path) -> None:
    from treelens.daemon.scan import ScanError

    root = tmp_path / "project"
    write_files(root, PROJECT)
    tree = FolderTree(root, PathFilter())
    tree.rescan()
    shutil.rmtree(root)
    with pytest.raises(ScanError):
        tree.apply({"src/app.js"})
    with pytest.raises(ScanError):
        tree.rescan()


def test_snapshot_with_sizes_reads_every_size(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.py": "12345", "b/c.js": "12"})
    make_git_repo(tmp_path)
    tree = FolderTree(tmp_path, PathFilter())
    tree.rescan()
    sizes = {entry.path: entry.size for entry in tree.snapshot(sizes=True).files}
    assert sizes == {"a.py": 5, "b/c.js": 2}
