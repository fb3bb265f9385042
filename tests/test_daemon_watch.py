"""The watcher on a real folder (real watchdog / inotify): which events reach the daemon."""

from __future__ import annotations

import queue
import shutil
import time
from pathlib import Path

from tests.folders import make_git_repo, write_files
from treelens.daemon.folder_tree import FolderTree
from treelens.daemon.watch import RESCAN, FolderEvents, Watcher
from treelens.model.filters import PathFilter

WAIT_S = 10.0
SETTLE_S = 0.5


def _watching(root: Path, path_filter: PathFilter) -> tuple[Watcher, queue.Queue[str], FolderTree]:
    tree = FolderTree(root, path_filter)
    tree.rescan()
    delivered: queue.Queue[str] = queue.Queue()
    watcher = Watcher()
    handler = FolderEvents(tree.root, lambda: tree.ignores, lambda rel: rel in tree.files, delivered.put)
    watcher.watch(tree.root, handler)
    return watcher, delivered, tree


def _until(delivered: queue.Queue[str], wanted: str) -> list[str]:
    """Everything delivered up to and including ``wanted`` (then a short settle)."""
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while wanted not in seen:
        seen.append(delivered.get(timeout=max(0.01, deadline - time.monotonic())))
    time.sleep(SETTLE_S)
    while not delivered.empty():
        seen.append(delivered.get_nowait())
    return seen


def test_only_paths_that_can_change_the_tree_are_delivered(tmp_path: Path) -> None:
    write_files(tmp_path, {".gitignore": "*.log\ngenerated/\n", "src/app.py": "", "package.json": "{}"})
    make_git_repo(tmp_path)
    watcher, delivered, _tree = _watching(tmp_path, PathFilter(extra_ignores=("*.tmp",)))
    try:
        time.sleep(SETTLE_S)  # let the recursive watch settle
        write_files(
            tmp_path,
            {
                "node_modules/x/index.js": "",
                "dist/bundle.js": "",
                "run.log": "",
                "generated/api.py": "",
                "scratch.tmp": "",
                ".venv/lib/site.py": "",
            },
        )
        (tmp_path / "src" / "app.py").write_text("print('edited')")  # content only: nothing to do
        write_files(tmp_path, {"src/new.py": ""})
        seen = _until(delivered, "src/new.py")
        assert set(seen) == {"src/new.py"}

        (tmp_path / "package.json").write_text('{"dependencies": {"react": "18"}}')  # a manifest's text
        (tmp_path / "src" / "new.py").rename(tmp_path / "src" / "renamed.py")
        seen = _until(delivered, "src/renamed.py")
        assert set(seen) == {"package.json", "src/new.py", "src/renamed.py"}

        (tmp_path / ".gitignore").write_text("*.log\n")
        assert RESCAN in _until(delivered, RESCAN)
    finally:
        watcher.stop()


def test_a_deleted_folder_asks_for_a_rescan(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_files(root, {"main.go": ""})
    watcher, delivered, _tree = _watching(root, PathFilter())
    try:
        time.sleep(SETTLE_S)
        shutil.rmtree(root)
        assert RESCAN in _until(delivered, RESCAN)
    finally:
        watcher.stop()
