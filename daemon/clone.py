"""A shallow, locked-down ``git clone`` of a remote repository into a temporary folder.

For ``treelens classify --git URL``: only https and ssh remotes are allowed (no local
paths, file://, plain http or transport helpers such as ``ext::``), nothing from the
repository or the user's git templates runs (no hooks), git never prompts for
credentials (it fails instead), LFS files are not downloaded, the clone has a time
limit (on time-out git dies with its whole process group: transports such as
``git remote-https`` and ssh included), and the folder is removed afterwards whatever
happens.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from treelens.daemon.git import git_command, git_env
from treelens.model.errors import TreelensError
from treelens.model.guards import run_process_group

DEFAULT_TIMEOUT_S = 120.0
ALLOWED_SCHEMES = ("https", "ssh")
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!/)[^\s]+$")
"""ssh in scp syntax: git@github.com:owner/name.git"""
COMMIT = re.compile(r"^[0-9a-fA-F]{7,40}$")

CLONE_ENV = {  # on top of daemon/git.py's GIT_ENV (no terminal prompt, no system config)
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GCM_INTERACTIVE": "never",  # Git Credential Manager
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",  # no ssh password or passphrase prompt
    "GIT_LFS_SKIP_SMUDGE": "1",
}
CLONE_CONFIG = (  # on top of daemon/git.py's SAFE_CONFIG (no hooks)
    "credential.helper=",
    "core.askPass=",
    "submodule.recurse=false",
)


class CloneError(TreelensError):
    """The repository cannot be cloned; the message says why."""


def scheme_of(url: str) -> str:
    """'https', 'ssh', ... of a remote; raise CloneError for anything else than the allowed."""
    if url.startswith("-") or "::" in url or any(c.isspace() or ord(c) < 32 for c in url):
        raise CloneError(f"{url!r:.200} is not a repository URL")
    if SCP_LIKE.match(url):
        return "ssh"
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if match is None:
        return "local path"
    return match.group(1).lower()


def check_url(url: str, allowed: tuple[str, ...] = ALLOWED_SCHEMES) -> None:
    scheme = scheme_of(url)
    if scheme not in allowed:
        raise CloneError(
            f"{url!r:.200}: {scheme} remotes are not allowed; give an https:// or ssh:// URL "
            "(or git@host:owner/name)"
        )


_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def folder_name(url: str) -> str:
    """The folder ``git clone`` would make for ``url`` (``https://host/org/my-cli.git``:
    my-cli), or "repo" when the URL does not end in a plain name. The model reads the
    project's folder name, so a clone is classified under its own name."""
    name = re.split(r"[/:]", url.rstrip("/"))[-1].removesuffix(".git")
    return name if _FOLDER_NAME.match(name) else "repo"


def _git(args: list[str], cwd: Path, deadline: float, allowed: tuple[str, ...]) -> None:
    # GIT_ALLOW_PROTOCOL also binds submodules and redirects: nothing but the allowed schemes
    env = git_env({**CLONE_ENV, "GIT_ALLOW_PROTOCOL": ":".join(allowed)})
    command = git_command(*args, config=CLONE_CONFIG)
    try:
        done = run_process_group(
            command,
            deadline,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CloneError(
            f"git {args[0]} took longer than {deadline:.0f} s; try again or raise --timeout"
        ) from None
    except FileNotFoundError:
        raise CloneError("git is not installed (or not on PATH); install git to use --git") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        found = [line for line in lines if line.startswith(("fatal:", "error:", "ssh:"))] or lines[-1:]
        raise CloneError(f"git {args[0]} failed: {'; '.join(found) or 'no message'}")


def _remove(folder: Path) -> None:
    """rmtree that also removes read-only files (git's pack files are read-only)."""

    def make_writable(function, path, _error) -> None:
        os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
        function(path)

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=make_writable)
    else:
        shutil.rmtree(folder, onerror=make_writable)


@contextmanager
def shallow_clone(
    url: str,
    ref: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    allowed: tuple[str, ...] = ALLOWED_SCHEMES,
) -> Iterator[Path]:
    """Yield the work tree of a depth-1 clone of ``url`` at ``ref`` (branch, tag or commit;
    default: the remote's default branch); the folder is deleted on exit."""
    check_url(url, allowed)
    if not (math.isfinite(timeout) and timeout > 0):
        raise CloneError(f"time-out {timeout!r}: give a number of seconds above 0")
    if ref is not None and (not ref or ref.startswith("-") or any(c.isspace() for c in ref)):
        raise CloneError(f"--ref {ref!r:.100} is not a branch, tag or commit")
    parent = Path(tempfile.mkdtemp(prefix="treelens-clone-"))
    work = parent / folder_name(url)
    try:
        if ref is not None and COMMIT.match(ref):
            work.mkdir()
            _git(["init", "--quiet", "--template=", str(work)], parent, timeout, allowed)
            _git(["fetch", "--quiet", "--depth", "1", "--no-tags", "--", url, ref], work, timeout, allowed)
            _git(["checkout", "--quiet", "--detach", "FETCH_HEAD"], work, timeout, allowed)
        else:
            branch = ["--branch", ref] if ref else []
            _git(
                [
                    "clone",
                    "--quiet",
                    "--depth",
                    "1",
                    "--single-branch",
                    "--no-tags",
                    "--template=",
                    *branch,
                    "--",
                    url,
                    str(work),
                ],
                parent,
                timeout,
                allowed,
            )
        yield work
    finally:
        _remove(parent)
