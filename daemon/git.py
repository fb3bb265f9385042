"""How Treelens runs git: one environment and one set of config overrides for every call.

git runs on a person's workspace (read-only listings, ignore locations) and on remotes
(``treelens classify --git``). Either way it must not run the repository's hooks, start an
fsmonitor daemon, prompt, page, take optional locks or read the system configuration, and
its output is parsed, so the locale is C. daemon/scan.py and daemon/ignores.py read with
``read_git``; daemon/clone.py adds its network lock-down on top of ``git_command`` and
``git_env``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 30.0
"""A read-only git command that takes longer is given up (the folder is walked instead)."""
GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}
SAFE_CONFIG = ("core.hooksPath=/dev/null", "core.fsmonitor=false")
"""Nothing from the repository runs: no hooks, no fsmonitor daemon."""


def git_command(*args: str, config: Iterable[str] = ()) -> list[str]:
    """``git -c ...`` with SAFE_CONFIG and ``config``, then ``args``."""
    settings = (*SAFE_CONFIG, *config)
    return ["git", *(arg for item in settings for arg in ("-c", item)), *args]


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with GIT_ENV (and ``extra``) on top."""
    return {**os.environ, **GIT_ENV, **(extra or {})}


def read_git(root: Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> bytes | None:
    """Output of a read-only git command run in ``root``; None when it fails (not a work
    tree, git missing, too slow), which callers take as "no git here"."""
    try:
        done = subprocess.run(
            git_command("-C", str(root), *args),
            capture_output=True,
            timeout=timeout,
            env=git_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.info("git %s unavailable for %s (%s)", args[0], root, error)
        return None
    return done.stdout if done.returncode == 0 else None
