"""Guards for what comes from outside a Treelens process: files and streams read (with a
size limit), JSON parsed (one error for every way it can be bad), outputs written (only
to regular files, atomically) and child processes run (the whole process group killed on
a time-out).

Each is one function used everywhere the command lines and the data readers touch such
input, so a new reader gets the same limits by calling it instead of ``open``,
``json.loads`` or ``subprocess.run``.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from treelens.model.errors import TreelensError

MiB = 1024 * 1024
MAX_INPUT_BYTES = 64 * MiB
"""The most a listing or one data-set / index line may hold: a 200,000-file tree's
`git ls-files` is about 12 MiB, a data-set record (40 manifests of 32 KiB, the file list)
a few MiB."""


class InputError(TreelensError, ValueError):
    """Outside input that cannot be used; the message names where and what to do."""


class OutputError(TreelensError, ValueError):
    """An output that cannot be written; the message names the path and what to do."""


# --- JSON --------------------------------------------------------------------------------


def load_json(text: str | bytes, where: str, error: type[Exception] = InputError, hint: str = "") -> Any:
    """``json.loads`` whose every failure is ``error`` naming ``where``: invalid JSON, bad
    UTF-8, and nesting deeper than Python's recursion limit (``[`` 100,000 times), which
    json reports as a RecursionError rather than a decode error. ``hint`` says what the
    text should be."""
    suffix = f"; {hint}" if hint else ""
    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to read{suffix}") from None
    except json.JSONDecodeError as problem:
        raise error(f"{where}: not valid JSON ({problem.msg}){suffix}") from None
    except UnicodeDecodeError as problem:
        raise error(f"{where}: not valid JSON ({problem.reason}){suffix}") from None


# --- reading -----------------------------------------------------------------------------


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_input(path: Path | str, what: str, limit: int = MAX_INPUT_BYTES) -> str:
    """The text of a file named on the command line ('-': stdin), at most ``limit`` bytes.

    Regular files, pipes and fifos are read (process substitution, ``<(git ls-files)``,
    names a pipe; like stdin, a fifo waits for its writer). Devices, folders and sockets
    are refused: ``/dev/zero`` or ``/dev/urandom`` never end.
    """
    if str(path) == "-":
        return _read_bounded(sys.stdin.buffer, f"{what} -", limit)
    shown = f"{what} {path}"
    try:
        mode = os.stat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise InputError(f"{shown}: is {_kind(mode)}, not a file; give a file, or '-' for stdin")
        with open(path, "rb") as handle:
            return _read_bounded(handle, shown, limit)
    except OSError as error:
        raise InputError(f"{shown}: cannot read it ({error.strerror or error})") from None


def _read_bounded(handle: IO[bytes], shown: str, limit: int) -> str:
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{shown}: larger than {limit // MiB} MiB; give a smaller file")
    return data.decode("utf-8", errors="replace")


def bounded_lines(handle: IO[str], where: str, limit: int = MAX_INPUT_BYTES) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text file, each line read with a bound: a file of one
    endless line (a sparse or corrupt file) fails at once instead of filling the memory."""
    number = 0
    while line := handle.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise InputError(
                f"{where}:{number}: line longer than {limit // MiB} MiB; is this the right file?"
            )
        yield number, line


# --- writing -----------------------------------------------------------------------------


def _output_target(path: Path, what: str, make_parents: bool) -> Path:
    """The regular file (existing or not) that writing to ``path`` must change: symlinks
    resolved, anything but a regular file refused, the folder there."""
    shown = f"{what} {path}"
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise OutputError(f"{shown}: cannot write it ({error.strerror or error})") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(
            f"{shown}: is {_kind(mode)}, not a regular file; Treelens writes outputs only to "
            "regular files (or through symlinks to them), give a file path"
        )
    if make_parents:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"{shown}: cannot create its folder ({error.strerror or error})") from None
    elif not target.parent.is_dir():
        raise OutputError(f"{shown}: the folder {target.parent} does not exist; create it first")
    return target


def _new_file_mode(target: Path) -> int:
    """The existing file's permissions, else what ``open`` would give (0o666 less umask)."""
    with suppress(FileNotFoundError):
        return stat.S_IMODE(os.stat(target).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def output_file(path: Path, what: str, *, make_parents: bool = False) -> Iterator[Path]:
    """A temporary file, beside the file ``path`` names, to write the output into; when the
    block ends without an error it atomically replaces that file, so a reader sees the
    old or the new output, never half of one.

    A symlink is written through (the file it points to changes, the link stays); a
    folder, device, fifo or socket is refused before anything is written, because the
    rename would replace it (as root, ``--output /dev/null`` replaced the null device
    with a regular file). Errors, a full disk included, are OutputErrors naming ``path``.
    """
    target = _output_target(path, what, make_parents)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=f"-{target.name}")
    except OSError as error:
        raise OutputError(f"{what} {path}: cannot write it ({error.strerror or error})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except OSError as error:
        raise OutputError(f"{what} {path}: cannot write it ({error.strerror or error})") from None
    finally:
        tmp.unlink(missing_ok=True)


# --- child processes ---------------------------------------------------------------------


def read_beneath(root: Path, path: str, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a regular file below ``root``, or None (missing, a
    symlink, below a symlink, not a regular file, unreadable).

    The path is opened one folder at a time from ``root`` with O_NOFOLLOW, so no link
    anywhere on it, and no link swapped in meanwhile, leads the read out of the workspace.
    Opening never blocks on a FIFO.
    """
    *folders, name = path.split("/")
    if any(part in ("", ".", "..") for part in (*folders, name)):
        return None  # a listing never holds these; a path that does could climb out
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        inner = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        os.close(fd)
        fd = inner
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def run_process_group(command: list[str], timeout: float, **options: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(command, timeout=...)`` that, on a time-out (or any interruption),
    kills the child's whole process group, not only the child: git's transports
    (``git remote-https``, ssh) and semgrep's workers would otherwise keep running.
    The child gets its own session, hence its own group. Raises subprocess.TimeoutExpired.
    """
    with subprocess.Popen(command, start_new_session=True, **options) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            _kill_group(process)  # also what the leader left behind when it finished
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def run_timed(
    command: list[str], timeout: float, **options: Any
) -> tuple[subprocess.CompletedProcess, float, float | None]:
    """``run_process_group`` that also measures the run: wall seconds and the CPU seconds of
    the child and everything it waited for (None where the OS cannot say). The benches
    report CPU beside wall time because a shared machine's load moves wall time."""
    start, cpu_start = time.perf_counter(), _children_cpu()
    done = run_process_group(command, timeout, **options)
    seconds = time.perf_counter() - start
    cpu_end = _children_cpu()
    cpu = cpu_end - cpu_start if cpu_end is not None and cpu_start is not None else None
    return done, seconds, cpu


def _children_cpu() -> float | None:
    """CPU seconds of every waited-for child process so far (POSIX only)."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _kill_group(process: subprocess.Popen) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
