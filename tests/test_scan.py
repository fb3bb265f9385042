"""Scanning real folders: git fast path, .gitignore-aware walk, and hostile trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.folders import make_git_repo, write_files
from treelens.daemon.scan import ScanError, scan
from treelens.model.filters import PathFilter
from treelens.model.querysets import bandit, codeql, semgrep

GITIGNORE_TREE = {
    ".gitignore": "*.log\n!keep.log\n/root-only.txt\nbuild-artifacts/\n",
    "app.py": "",
    "keep.log": "",
    "debug.log": "",
    "root-only.txt": "",
    "sub/root-only.txt": "",
    "sub/.gitignore": "secret*\n!secret-but-public.txt\n*.log\n!sub-keep.log\n",
    "sub/secret.txt": "",
    "sub/secret-but-public.txt": "",
    "sub/sub-keep.log": "",
    "sub/deeper/build-artifacts/x.bin": "",
    "sub/deeper/code.py": "",
    "sub/deeper/.gitignore": "!debug2.log\n",
    "sub/deeper/debug2.log": "",
    "build-artifacts/out.o": "",
    "node_modules/left-pad/index.js": "",
    "src/build/gen.py": "",
    "venv-like/pyvenv.cfg": "",
    "venv-like/lib/site.py": "",
}
EXPECTED = {
    ".gitignore",
    "app.py",
    "keep.log",
    "sub/root-only.txt",
    "sub/.gitignore",
    "sub/secret-but-public.txt",
    "sub/sub-keep.log",
    "sub/deeper/code.py",
    "sub/deeper/.gitignore",
    "sub/deeper/debug2.log",
}


def paths_of(root: Path, **kwargs) -> set[str]:
    return {f.path for f in scan(root, **kwargs).tree.files}


def test_walk_honours_nested_gitignore_like_git(tmp_path: Path) -> None:
    write_files(tmp_path, GITIGNORE_TREE)
    walked = paths_of(tmp_path, use_git=False)
    assert walked == EXPECTED
    make_git_repo(tmp_path)
    result = scan(tmp_path)
    assert result.method == "git"
    assert {f.path for f in result.tree.files} == walked


def test_git_lists_untracked_files_and_honours_info_exclude(tmp_path: Path) -> None:
    write_files(tmp_path, {"tracked.py": "", ".gitignore": "*.tmp\n"})
    make_git_repo(tmp_path)
    write_files(tmp_path, {"new.py": "", "scratch.tmp": "", "private.txt": ""})
    (tmp_path / ".git" / "info").mkdir(exist_ok=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("private.txt\n")
    assert paths_of(tmp_path) == {"tracked.py", ".gitignore", "new.py"}


def test_subfolder_of_a_repository_lists_relative_paths(tmp_path: Path) -> None:
    write_files(tmp_path, {"outer.py": "", "pkg/inner.py": "", "pkg/lib/x.py": ""})
    make_git_repo(tmp_path)
    result = scan(tmp_path / "pkg")
    assert result.method == "git"
    assert {f.path for f in result.tree.files} == {"inner.py", "lib/x.py"}


def test_sizes_kinds_and_manifest_text(tmp_path: Path) -> None:
    big = '{"dependencies": {"react": "18"}, "pad": "' + "x" * 40_000 + '"}'
    write_files(tmp_path, {"package.json": big, "src/index.js": "console.log(1)\n"})
    (tmp_path / "link.js").symlink_to("src/index.js")
    tree = scan(tmp_path, use_git=False, sizes=True).tree
    by_path = {f.path: f for f in tree.files}
    assert by_path["src/index.js"].size == 15
    assert by_path["link.js"].kind == "link"
    assert len(tree.manifests["package.json"].encode()) == 32 * 1024  # cut as in the data set


def test_git_kinds_come_from_the_index_and_deleted_files_are_dropped(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.py": "", "gone.py": "", "sub/b.py": "xyz"})
    (tmp_path / "link.py").symlink_to("a.py")
    make_git_repo(tmp_path)
    (tmp_path / "gone.py").unlink()
    (tmp_path / "new-link.py").symlink_to("a.py")
    kinds = {f.path: f.kind for f in scan(tmp_path).tree.files}
    assert kinds == {"a.py": "file", "sub/b.py": "file", "link.py": "link", "new-link.py": "link"}
    sized = {f.path: f.size for f in scan(tmp_path, sizes=True).tree.files}
    assert sized["sub/b.py"] == 3


def test_symlink_loops_and_linked_folders_are_not_followed(tmp_path: Path) -> None:
    write_files(tmp_path, {"a/file.py": ""})
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    (tmp_path / "outside").symlink_to("/usr")
    (tmp_path / "package.json").symlink_to("/etc/hostname")  # a manifest link is not read
    result = scan(tmp_path, use_git=False)
    kinds = {f.path: f.kind for f in result.tree.files}
    assert kinds == {"a/file.py": "file", "a/loop": "link", "outside": "link", "package.json": "link"}
    assert result.tree.manifests == {}


def test_non_utf8_names_survive_and_serialise(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    with open(os.path.join(root, b"caf\xe9.py"), "wb"):
        pass
    os.mkdir(os.path.join(root, b"d\xff"))
    with open(os.path.join(root, b"d\xff", b"x.py"), "wb"):
        pass
    for use_git in (False, True):
        if use_git:
            make_git_repo(tmp_path)
        paths = paths_of(tmp_path, use_git=use_git)
        assert paths == {"caf\ufffd.py", "d\ufffd/x.py"}, use_git
        json.dumps(sorted(paths))


def test_extra_ignores_and_default_skips(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "src/main.go": "",
            "third_party/lib.go": "",
            "vendor/modules.txt": "",
            "vendor/github.com/gin-gonic/gin/gin.go": "",
            "Carthage/Checkouts/Alamofire/Source/Alamofire.swift": "",
            "dist/bundle.js": "",
            ".venv/lib/x.py": "",
            "target/classes/A.class": "",
        },
    )
    assert paths_of(tmp_path, use_git=False) == {"src/main.go", "third_party/lib.go"}
    flt = PathFilter(extra_ignores=("third_party/",))
    assert paths_of(tmp_path, use_git=False, path_filter=flt) == {"src/main.go"}


def test_saved_query_sets_are_not_part_of_the_project(tmp_path: Path) -> None:
    """Saving "Suggest SAST Query Set"'s file at the root must not change the model text."""
    saved = (semgrep.MERGED_FILE_NAME, semgrep.PATHS_FILE_NAME)
    saved += (codeql.SUITE_FILE_NAME, bandit.CONFIG_FILE_NAME)
    write_files(tmp_path, {"app.py": "", "src/treelens-notes.txt": "", **dict.fromkeys(saved, "")})
    expected = {"app.py", "src/treelens-notes.txt"}
    assert paths_of(tmp_path, use_git=False) == expected
    make_git_repo(tmp_path)
    assert paths_of(tmp_path) == expected


def test_bad_roots_raise_scan_error(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="no such folder"):
        scan(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ScanError, match="is a file"):
        scan(tmp_path / "file.txt")


def test_hundred_thousand_files(tmp_path: Path) -> None:
    for d in range(100):
        folder = tmp_path / f"pkg{d}"
        folder.mkdir()
        for f in range(1000):
            (folder / f"m{f}.py").touch()
    result = scan(tmp_path, use_git=False)
    assert len(result.tree.files) == 100_000
    assert not result.limited
    limited = scan(tmp_path, use_git=False, max_files=5_000)
    assert limited.limited and len(limited.tree.files) == 5_000


def run_unprivileged(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run Python code without the power to ignore permission bits.

    Root reads anything, so as root the code runs in a user namespace as an unmapped
    owner with no capabilities (util-linux unshare); otherwise it runs as is.
    """
    prefix: list[str] = []
    if os.geteuid() == 0:
        probe = subprocess.run(
            ["unshare", "--user", "--map-user=65534", "true"], capture_output=True, check=False
        )
        if probe.returncode != 0:
            pytest.skip(f"running as root and user namespaces are unavailable: {probe.stderr.decode()}")
        prefix = ["unshare", "--user", "--map-user=65534", "--map-group=65534"]
    return subprocess.run(
        [*prefix, sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        check=False,
    )


@pytest.fixture
def open_tmp() -> Path:
    """A temporary folder an unprivileged user can enter (pytest's tmp_path is private)."""
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        root.chmod(0o755)
        yield root
        for path in root.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)


def test_permission_denied_folder_is_reported_and_skipped(open_tmp: Path) -> None:
    write_files(open_tmp, {"ok/a.py": "", "locked/secret.py": ""})
    for path in open_tmp.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (open_tmp / "locked").chmod(0)
    code = (
        "from pathlib import Path; from daemon.scan import scan; import json;"
        "r = scan(Path('.'), use_git=False);"
        "print(json.dumps([sorted(f.path for f in r.tree.files), r.unreadable]))"
    )
    done = run_unprivileged(code, open_tmp)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["ok/a.py"], ["locked"]]
    assert "cannot list" in done.stderr


def test_unreadable_root_is_a_clear_cli_error(open_tmp: Path) -> None:
    (open_tmp / "locked").mkdir()
    (open_tmp / "locked").chmod(0)
    done = run_unprivileged(
        "import sys; from daemon.cli import main; sys.exit(main(['tree', 'locked']))", open_tmp
    )
    assert done.returncode == 1
    assert "permission denied" in done.stderr
