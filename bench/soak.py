"""Soak benchmark: the real daemon under kill -9, a file-event storm and bad frames.

Drives ``python -m treelens.daemon`` over stdio with a small client of its own that writes raw
bytes (so it can send malformed frames) and puts a deadline on every wait (so a dead or
deaf daemon is counted, never waited for). Three parts, the promises of issue 13:

1. kill -9 during feedback: bursts of treelens/submitFeedback, SIGKILL at a random
   moment, restart, N rounds; then every acknowledged row (a request the daemon
   answered) must be in the SQLite file with its own comment: 0 lost.
2. file-event storm: about 1,000 creates, writes, renames and deletes a second for T
   seconds while the daemon watches the folder, with a probe request every half second;
   then the daemon must answer within the bound (0 frozen) and the tree and model text
   it stores with feedback must come to equal a full rescan of the final files.
3. bad frames between good requests: wrong, missing and lower-case Content-Length,
   LF-only headers, bodies that are not JSON or not UTF-8, a huge Content-Length; each
   kind on its own daemon, then all kinds mixed on one: every good request answered.
   A good request sent right after a frame that declares more bytes than it carries is
   part of that frame's body as far as any reader can tell: it is counted as swallowed,
   not as unanswered. Each run ends with two good requests in a row: the last one says
   whether the daemon still answers.

Exits 1 when a promise did not hold. Progress goes to stderr, a summary to stdout,
everything measured to --out (JSON). The defaults take about 2-3 minutes on 2 cores.

    python bench/soak.py [--rounds 20] [--seconds 10] [--rate 1000] [--seed 13]
                         [--model-path DIR] [--answer-timeout 10] [--out FILE] [--keep DIR]
                         [--skip PART ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.classify_latency import machine, percentile
from bench.daemon_freshness import rss_mb
from bench.workspaces import commit_all
from treelens.daemon.folder_tree import FolderTree
from treelens.daemon.protocol import CLASSIFY, SUBMIT_FEEDBACK
from treelens.model.bundle import DEFAULT_BUNDLE_DIR
from treelens.model.feedback import FeedbackStore, StoredFeedback
from treelens.model.filters import PathFilter
from treelens.model.labels import LABELS
from treelens.model.runtime import Classifier
from treelens.model.tree import ProjectTree

REPO = Path(__file__).resolve().parents[1]
WORDS = ["api", "core", "util", "view", "store", "auth", "user", "order", "report", "search"]
EXTENSIONS = [".py", ".ts", ".go", ".kt", ".rs", ".java", ".css", ".yaml"]
DEPENDENCIES = ["react", "express", "vue", "electron", "commander", "react-native", "next", "koa"]
BAD_ID_BASE = 1_000_000
"""Ids of the requests inside bad frames: apart from the good ones, so their answers are
not taken for a good request's."""


# --- a raw LSP client ---------------------------------------------------------------------------


class DaemonGone(Exception):
    """The daemon's stdout closed (it exited or was killed) before the answer came."""


def frame(body: bytes) -> bytes:
    """A well-formed LSP frame around a body."""
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def _fail(future: asyncio.Future[Any]) -> None:
    """Fail an unanswered request with DaemonGone, marked as seen: most are only counted,
    and asyncio would log each unread exception at exit."""
    if not future.done():
        future.set_exception(DaemonGone())
        future.exception()


class RawDaemon:
    """One ``python -m treelens.daemon`` process and a minimal client on its pipes.

    Not pygls' client: that one cannot write broken frames, and its futures wait forever
    on a daemon that stopped reading. Answers are matched to requests by id; the
    daemon's log goes to a file (a pipe nobody reads would block it).
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.strays: list[dict[str, Any]] = []  # answers to no request of ours (bad frames, id null)
        self.next_id = 1
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "daemon",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=REPO,
                env=env,
            )
        self._reader = asyncio.create_task(self._read())

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def _read(self) -> None:
        """Resolve each answer's future; fail the rest with DaemonGone at end of stream."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        try:
            while True:
                headers = await stdout.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self._handle(json.loads(await stdout.readexactly(length)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for future in self.answers.values():
                _fail(future)

    def _handle(self, message: dict[str, Any]) -> None:
        if "method" in message:
            if "id" in message:  # a request of the daemon's (none expected): answer it, never block it
                self.write(encode({"jsonrpc": "2.0", "id": message["id"], "result": None}))
            return  # notifications (labelsChanged, log messages) are not counted here
        future = self.answers.get(message.get("id"))  # type: ignore[arg-type]
        if future is None:
            self.strays.append(message)
        elif not future.done():
            future.set_result(message)

    def write(self, data: bytes) -> bool:
        """Queue bytes on the daemon's stdin; False when the pipe is already closed."""
        if not self.alive or self.process is None or self.process.stdin is None:
            return False
        try:
            self.process.stdin.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def request(self, method: str, params: Any = None, raw: Callable[[bytes], bytes] = frame) -> int:
        """Send a request (framed by ``raw``); its answer arrives in ``self.answers[id]``."""
        request_id = self.next_id
        self.next_id += 1
        self.answers[request_id] = asyncio.get_running_loop().create_future()
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        if not self.write(raw(encode(message))):
            _fail(self.answers[request_id])
        return request_id

    def notify(self, method: str, params: Any = None) -> None:
        self.write(frame(encode({"jsonrpc": "2.0", "method": method, "params": params})))

    async def answer(self, request_id: int, timeout: float) -> dict[str, Any]:
        """The answer message (result or error); TimeoutError or DaemonGone otherwise."""
        return await asyncio.wait_for(asyncio.shield(self.answers[request_id]), timeout)

    async def call(self, method: str, params: Any, timeout: float) -> dict[str, Any]:
        return await self.answer(self.request(method, params), timeout)

    async def open(self, workspace: Path, options: dict[str, Any], timeout: float) -> None:
        """initialize + initialized for one workspace folder, settings in initializationOptions."""
        init = {
            "processId": os.getpid(),
            "rootUri": None,
            "capabilities": {},
            "workspaceFolders": [{"uri": workspace.as_uri(), "name": workspace.name}],
            "initializationOptions": {"treelens": options},
        }
        answer = await self.call("initialize", init, timeout)
        if "error" in answer:
            raise RuntimeError(f"initialize answered an error: {answer['error']}")
        self.notify("initialized", {})

    async def state(self) -> str:
        """'dead (exit N)' once stdout has closed, else 'alive'."""
        if self._reader is None or not self._reader.done() or self.process is None:
            return "alive"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 10)
        return f"dead (exit {self.process.returncode})"

    async def kill(self) -> None:
        """kill -9, then read what the daemon wrote before it died (those answers count)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()
        if self._reader is not None:  # stdout ends with the process (children do not inherit it)
            await asyncio.wait_for(self._reader, 10)

    async def close(self, timeout: float) -> None:
        """shutdown + exit when the daemon still answers; kill -9 otherwise."""
        if self.alive:
            with contextlib.suppress(TimeoutError, DaemonGone):
                await self.call("shutdown", None, timeout)
                self.notify("exit")
                await asyncio.wait_for(self.process.wait(), timeout)  # type: ignore[union-attr]
        await self.kill()


# --- shared set-up ------------------------------------------------------------------------------


@dataclass
class Context:
    """What every part needs: where to work, which model, how long to wait, the dice."""

    root: Path
    model: Path
    timeout: float
    seed: int

    def dice(self, purpose: str) -> random.Random:
        """A random source of its own for each purpose, so that one part's draws (some
        depend on timing) never shift another's."""
        return random.Random(f"{self.seed}:{purpose}")

    def daemon(self, name: str) -> RawDaemon:
        """A daemon (not started yet) that logs to logs/<name>.log (kept with --keep)."""
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        return RawDaemon(log)

    def options(self, database: str) -> dict[str, Any]:
        return {"modelPath": str(self.model), "feedbackDatabase": str(self.root / database)}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def small_project(root: Path) -> Path:
    """A few files of a Python web service, committed to git."""
    files = {
        "app/main.py": "",
        "app/routes.py": "",
        "app/models.py": "",
        "tests/test_routes.py": "",
        "requirements.txt": "flask\nsqlalchemy\n",
        "Dockerfile": "FROM python:3.11\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    commit_all(root)
    return root


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def latency(seconds: list[float]) -> dict[str, float] | None:
    """Median, p90 and max of some durations, in ms (None when there are none)."""
    if not seconds:
        return None
    return {
        f"{name}_ms": ms(percentile(seconds, share))
        for name, share in (("median", 0.5), ("p90", 0.9), ("max", 1))
    }


# --- 1. kill -9 during feedback ---------------------------------------------------------------


@dataclass
class FeedbackSent:
    comment: str
    request_id: int


@dataclass
class Round:
    """One round's submissions; frozen: nothing answered within the bound; died: the
    daemon exited before the kill."""

    sent: list[FeedbackSent]
    frozen: bool = False
    died: bool = False


async def feedback_burst(
    daemon: RawDaemon, ctx: Context, round_no: int, window: int, kill_delay: float, dice: random.Random
) -> Round:
    """Keep ``window`` submissions (random labels) in flight; kill -9 ``kill_delay``
    seconds after the first answer, so the kills land between, inside and just after commits."""
    outcome = Round([])
    loop = asyncio.get_running_loop()
    kill_at: float | None = None
    in_flight: set[asyncio.Future[dict[str, Any]]] = set()
    while kill_at is None or loop.time() < kill_at:
        while len(in_flight) < window:
            labels = {name: dice.randint(0, 1) for name in LABELS}
            comment = f"soak round {round_no} request {len(outcome.sent)}"
            request_id = daemon.request(SUBMIT_FEEDBACK, {"labels": labels, "comment": comment})
            outcome.sent.append(FeedbackSent(comment, request_id))
            in_flight.add(daemon.answers[request_id])
        wait = ctx.timeout if kill_at is None else max(0.0, kill_at - loop.time())
        done, in_flight = await asyncio.wait(in_flight, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        if not done and kill_at is None:
            outcome.frozen = True  # nothing answered within the bound
            break
        if any(isinstance(f.exception(), DaemonGone) for f in done):
            break
        if kill_at is None:
            kill_at = loop.time() + kill_delay
    outcome.died = await daemon.state() != "alive"
    await daemon.kill()
    return outcome


def acknowledged(daemon: RawDaemon, sent: Iterable[FeedbackSent]) -> dict[str, int]:
    """comment -> row id of every submission the daemon answered ``stored: true``."""
    acks = {}
    for s in sent:
        future = daemon.answers[s.request_id]
        if future.done() and future.exception() is None:
            result = future.result().get("result")
            if isinstance(result, dict) and result.get("stored") is True:
                acks[s.comment] = result["id"]
    return acks


def stored_rows(database: Path) -> tuple[dict[str, int], str]:
    """comment -> id of every row, read with plain sqlite3 (not our store), and quick_check."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = dict(connection.execute("SELECT comment, id FROM feedback").fetchall())
        check = connection.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        connection.close()
    return rows, check


def error_answers(daemon: RawDaemon, sent: Iterable[FeedbackSent]) -> list[str]:
    """One line for each submission the daemon answered with an error."""
    futures = [daemon.answers[s.request_id] for s in sent]
    answers = [f.result() for f in futures if f.done() and f.exception() is None]
    return [stray_summary(a) for a in answers if "error" in a]


async def kill_during_feedback(ctx: Context, rounds: int, window: int = 4) -> dict[str, Any]:
    workspace = small_project(ctx.root / "feedback-project")
    database = ctx.root / "feedback.sqlite3"
    acks: dict[str, int] = {}
    tally: Counter[str] = Counter()
    errors: list[str] = []
    starts: list[float] = []
    delays, labels = ctx.dice("kill delays"), ctx.dice("labels")
    for round_no in range(rounds):
        daemon = ctx.daemon(f"feedback-{round_no}")
        start = time.perf_counter()
        await daemon.start()
        try:
            await daemon.open(workspace, ctx.options(database.name), ctx.timeout)
        except (TimeoutError, DaemonGone, RuntimeError) as error:
            progress(f"  round {round_no}: no initialize answer ({type(error).__name__}); {daemon.log_path}")
            tally["frozen"] += 1
            await daemon.kill()
            continue
        starts.append(time.perf_counter() - start)
        outcome = await feedback_burst(daemon, ctx, round_no, window, delays.uniform(0.0, 1.0), labels)
        answered = acknowledged(daemon, outcome.sent)
        acks |= answered
        tally.update(
            sent=len(outcome.sent),
            kills=not outcome.died,
            frozen=outcome.frozen,
            died=outcome.died,
        )
        errors += error_answers(daemon, outcome.sent)
        progress(
            f"  round {round_no + 1}/{rounds}: {len(answered)} of {len(outcome.sent)} acknowledged; kill -9"
        )
    rows, check = stored_rows(database)
    lost = sorted(c for c, row_id in acks.items() if rows.get(c) != row_id)
    return {
        "rounds": rounds,
        "kills": tally["kills"],
        "requests_sent": tally["sent"],
        "acknowledged": len(acks),
        "rows_in_database": len(rows),
        "stored_but_unacknowledged": len(set(rows) - set(acks)),
        "lost_acknowledged_rows": len(lost),
        "lost_examples": lost[:5],
        "error_answers": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "frozen_daemons": tally["frozen"],
        "died_on_their_own": tally["died"],
        "quick_check": check,
        "start_to_initialize_answered": latency(starts),
    }


# --- 2. file-event storm ---------------------------------------------------------------------


def storm_project(root: Path, files: int = 300) -> Path:
    """``files`` source files under src/<word>/<word>/, two manifests and a .gitignore for
    node_modules/ and *.log (the storm writes there too), committed to git."""
    for i in range(files):
        path = root / "src" / WORDS[i % len(WORDS)] / WORDS[i // len(WORDS) % len(WORDS)]
        path.mkdir(parents=True, exist_ok=True)
        (path / f"file_{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{EXTENSIONS[i % len(EXTENSIONS)]}").touch()
    (root / ".gitignore").write_text("node_modules/\n*.log\n")
    (root / "package.json").write_text('{"dependencies": {"react": "18"}}')
    (root / "requirements.txt").write_text("flask\n")
    commit_all(root)
    return root


class Storm:
    """File-system operations at a steady rate on a worker thread: creates, manifest
    rewrites, renames and deletes of project files, plus ignored files (node_modules,
    *.log) that the daemon must drop. Each operation is at least one inotify event."""

    def __init__(self, root: Path, dice: random.Random) -> None:
        self.root = root
        self.rng = dice
        self.live = [p.relative_to(root).as_posix() for p in (root / "src").rglob("*") if p.is_file()]
        self.done: Counter[str] = Counter()
        self.serial = 0

    def run(self, seconds: float, rate: float, stop: threading.Event) -> float:
        """Operations until ``seconds`` pass (catching up when behind); the rate achieved."""
        start = time.perf_counter()
        count = 0
        while (elapsed := time.perf_counter() - start) < seconds and not stop.is_set():
            for _ in range(int(elapsed * rate) - count):
                self.step()
                count += 1
            time.sleep(0.005)
        return count / (time.perf_counter() - start)

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.35 or len(self.live) < 50:
            self.create()
        elif roll < 0.55:
            self.rewrite_manifest()
        elif roll < 0.65:
            self.rename()
        elif roll < 0.9:
            self.delete()
        else:
            self.ignored()

    def _name(self) -> str:
        self.serial += 1
        word = self.rng.choice(WORDS)
        folder = f"src/{word}/{self.rng.choice(WORDS)}" + (
            f"/new{self.serial % 7}" if self.serial % 3 else ""
        )
        return f"{folder}/{word}{self.serial}{self.rng.choice(EXTENSIONS)}"

    def create(self) -> None:
        rel = self._name()
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.root / rel).write_text("x")
        self.live.append(rel)
        self.done["create"] += 1

    def _take(self) -> str:
        index = self.rng.randrange(len(self.live))
        self.live[index], self.live[-1] = self.live[-1], self.live[index]
        return self.live.pop()

    def delete(self) -> None:
        (self.root / self._take()).unlink()
        self.done["delete"] += 1

    def rename(self) -> None:
        old, new = self._take(), self._name()
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        (self.root / old).rename(self.root / new)
        self.live.append(new)
        self.done["rename"] += 1

    def rewrite_manifest(self) -> None:
        deps = self.rng.sample(DEPENDENCIES, self.rng.randint(0, 3))
        if self.rng.random() < 0.5:
            (self.root / "package.json").write_text(json.dumps({"dependencies": dict.fromkeys(deps, "1")}))
        else:
            (self.root / "requirements.txt").write_text("".join(f"{d}\n" for d in deps))
        self.done["manifest write"] += 1

    def ignored(self) -> None:
        target = self.root / ("node_modules" if self.serial % 2 else "logs") / f"x{self.serial % 40}.log"
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            target.unlink()
        else:
            target.write_text("x")
        self.serial += 1
        self.done["ignored create/delete"] += 1


async def probe(daemon: RawDaemon, timeout: float, stop: asyncio.Event) -> tuple[list[float], int]:
    """A classify every half second while ``stop`` is unset: latencies (s) and unanswered."""
    latencies, unanswered = [], 0
    while not stop.is_set():
        start = time.perf_counter()
        try:
            await daemon.call(CLASSIFY, {}, timeout)
            latencies.append(time.perf_counter() - start)
        except (TimeoutError, DaemonGone):
            unanswered += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    return latencies, unanswered


def difference(stored: StoredFeedback, expected: ProjectTree, expected_text: str) -> dict[str, int]:
    """How a feedback row differs from a full scan of the folder (all zero: the same).
    The model text is what the labels come from: the same text, the same labels."""
    have, want = {f.path for f in stored.tree.files}, {f.path for f in expected.files}
    manifests = stored.tree.manifests
    stale = sum(manifests.get(p) != t for p, t in expected.manifests.items())
    return {
        "missing_files": len(want - have),
        "extra_files": len(have - want),
        "stale_manifests": stale + len(set(manifests) - set(expected.manifests)),
        "model_text_differs": int(stored.model_text != expected_text),
    }


async def converge(daemon: RawDaemon, ctx: Context, database: Path, settle: float) -> dict[str, Any]:
    """Submit feedback until the tree and model text stored with it equal those of a full
    rescan of the folder (the files no longer change), or ``settle`` seconds pass."""
    tree = FolderTree(ctx.root / "storm-project", PathFilter())
    tree.rescan()
    expected = tree.snapshot()
    expected_text = Classifier.load(ctx.model, device="cpu", threads=1).describe(expected).text
    start = time.perf_counter()
    found: dict[str, int] = {}
    while time.perf_counter() - start < settle:
        labels = dict.fromkeys(LABELS, 0)
        answer = await daemon.call(SUBMIT_FEEDBACK, {"labels": labels, "comment": "storm check"}, ctx.timeout)
        if "error" in answer:
            return {"converged": False, "feedback_error": answer["error"]}
        row_id = answer["result"]["id"]
        stored = next(e for e in FeedbackStore(database).entries() if e.id == row_id)
        found = difference(stored, expected, expected_text)
        if not any(found.values()):
            return {
                "converged": True,
                "converged_after_ms": ms(time.perf_counter() - start),
                "files_after": len(expected.files),
            }
        await asyncio.sleep(0.5)
    return {"converged": False, "difference": found, "files_after": len(expected.files)}


async def file_event_storm(ctx: Context, seconds: float, rate: float) -> dict[str, Any]:
    workspace = storm_project(ctx.root / "storm-project")
    database = ctx.root / "storm.sqlite3"
    daemon = ctx.daemon("storm")
    await daemon.start()
    result: dict[str, Any] = {"seconds": seconds, "rate_asked": rate}
    try:
        await daemon.open(workspace, ctx.options(database.name), ctx.timeout)
        first = await daemon.call(CLASSIFY, {}, ctx.timeout * 3)  # first scan + model load
        assert daemon.process is not None
        result["rss_mb_before"] = round(rss_mb(daemon.process.pid)[0])
        result["tokens_before"] = first.get("result", {}).get("tokenCount")
        storm = Storm(workspace, ctx.dice("storm"))
        stop_thread, stop_probe = threading.Event(), asyncio.Event()
        prober = asyncio.create_task(probe(daemon, ctx.timeout, stop_probe))
        try:
            achieved = await asyncio.to_thread(storm.run, seconds, rate, stop_thread)
        finally:
            stop_thread.set()
            stop_probe.set()
        during, unanswered = await prober
        result |= {"rate_achieved": round(achieved), "operations": dict(storm.done)}
        result["probe_during_storm"] = {"answered": len(during), "unanswered": unanswered}
        result["probe_latency_during_storm"] = latency(during)
        start = time.perf_counter()
        after = await daemon.call(CLASSIFY, {}, ctx.timeout)
        result["answer_after_storm_ms"] = ms(time.perf_counter() - start)
        result["answer_after_storm"] = "error" if "error" in after else "result"
        result |= await converge(daemon, ctx, database, settle=3 * ctx.timeout)
        result["rss_mb_after"] = round(rss_mb(daemon.process.pid)[0])
        result["frozen_daemons"] = int(unanswered > 0)
    except (TimeoutError, DaemonGone) as error:
        progress(f"  storm: the daemon stopped answering ({type(error).__name__}); {daemon.log_path}")
        alive = await daemon.state() == "alive"
        result |= {"frozen_daemons": int(alive), "alive": alive}  # dead is counted as died
    finally:
        await daemon.close(ctx.timeout)
    return result


# --- 3. bad frames between good requests --------------------------------------------------------


@dataclass(frozen=True)
class BadFrame:
    """A malformed frame around a request body; ``swallows_next``: it declares more
    bytes than it carries, so the start of the next frame becomes its body."""

    build: Callable[[bytes], bytes]
    swallows_next: bool = False


HEADER_END = b"\r\n\r\n"
BAD_FRAMES: dict[str, BadFrame] = {
    "content-length too small": BadFrame(lambda b: b"Content-Length: %d%s%s" % (len(b) // 2, HEADER_END, b)),
    "content-length too large": BadFrame(
        lambda b: b"Content-Length: %d%s%s" % (len(b) + 24, HEADER_END, b), swallows_next=True
    ),
    "content-length not a number": BadFrame(lambda b: b"Content-Length: twelve%s%s" % (HEADER_END, b)),
    "negative content-length": BadFrame(lambda b: b"Content-Length: -5%s%s" % (HEADER_END, b)),
    "no content-length": BadFrame(
        lambda b: b"Content-Type: application/vscode-jsonrpc; charset=utf-8%s%s" % (HEADER_END, b)
    ),
    "lower-case content-length": BadFrame(lambda b: b"content-length: %d%s%s" % (len(b), HEADER_END, b)),
    "LF-only headers": BadFrame(lambda b: b"Content-Length: %d\n\n%s" % (len(b), b)),
    "body not JSON": BadFrame(lambda b: frame(b"this is not JSON {" + b)),
    "body not UTF-8": BadFrame(lambda b: frame(b"\xc3\x28" + b)),  # \xff\xfe would read as UTF-16
    "JSON that is not a message": BadFrame(lambda b: frame(b"[1, 2, 3]")),
    "huge content-length": BadFrame(lambda b: b"Content-Length: 99999999999999%s%s" % (HEADER_END, b)),
}


@dataclass
class FrameTally:
    good_sent: int = 0
    answered: int = 0
    unanswered: int = 0
    swallowed: int = 0
    state: str = ""
    bad_frame_answers: list[str] = field(default_factory=list)  # how the daemon answered bad frames


async def frames_run(ctx: Context, name: str, sequence: list[str | None], workspace: Path) -> FrameTally:
    """One daemon: initialize, then ``sequence`` (None: a good classify; a name: that bad
    frame), all written at once; then wait (bounded) for every good answer."""
    slug = f"frames-{name.replace(' ', '-')}"
    daemon = ctx.daemon(slug)
    await daemon.start()
    tally = FrameTally()
    good: list[tuple[int, bool]] = []  # request id, swallowed
    try:
        await daemon.open(workspace, ctx.options(f"{slug}.sqlite3"), ctx.timeout)
        await daemon.call(CLASSIFY, {}, ctx.timeout * 3)  # ready: scanned and model loaded
        swallow = False
        for item in sequence:
            if item is None:
                good.append((daemon.request(CLASSIFY, {}), swallow))
                swallow = False
            else:
                body = encode({"jsonrpc": "2.0", "id": BAD_ID_BASE + daemon.next_id, "method": CLASSIFY})
                daemon.write(BAD_FRAMES[item].build(body))
                swallow = BAD_FRAMES[item].swallows_next
        await asyncio.wait([daemon.answers[i] for i, _ in good], timeout=ctx.timeout)
    except (TimeoutError, DaemonGone, RuntimeError) as error:
        progress(f"  {name}: the daemon did not start ({type(error).__name__}); {daemon.log_path}")
    tally.good_sent = len(good) or sequence.count(None)
    for request_id, swallowed in good:
        future = daemon.answers[request_id]
        if future.done() and future.exception() is None:
            tally.answered += 1
        elif swallowed:
            tally.swallowed += 1
        else:
            tally.unanswered += 1
    tally.unanswered += tally.good_sent - len(good)
    last = daemon.answers[good[-1][0]] if good else None
    answering = last is not None and last.done() and last.exception() is None
    tally.state = "answering" if answering else await daemon.state()
    tally.state = "deaf" if tally.state == "alive" else tally.state
    tally.bad_frame_answers = [stray_summary(message) for message in daemon.strays]
    await daemon.close(ctx.timeout)
    return tally


def stray_summary(message: dict[str, Any]) -> str:
    """One line for an answer: the error code and message, or 'a result'."""
    error = message.get("error")
    if not isinstance(error, dict):
        return "a result"
    return f"error {error.get('code')}: {str(error.get('message'))[:120]}"


def mixed_sequence(rng: random.Random, good: int) -> list[str | None]:
    """``good`` good requests with a random bad frame (or none) between each two."""
    sequence: list[str | None] = []
    for _ in range(good):
        sequence.append(None)
        if rng.random() < 0.7:
            sequence.append(rng.choice(list(BAD_FRAMES)))
    return sequence


async def bad_frames(ctx: Context, parallel: int = 3) -> dict[str, Any]:
    workspace = small_project(ctx.root / "frames-project")
    # a last good request after a good one: whether the daemon still answers at the end,
    # even when the one before it was swallowed
    runs = {name: [None, name, None, name, None, None] for name in BAD_FRAMES}
    runs["all kinds mixed"] = [*mixed_sequence(ctx.dice("frames"), 20), None]
    gate = asyncio.Semaphore(parallel)  # a deaf daemon costs one timeout: wait for several at once

    async def one(name: str, sequence: list[str | None]) -> FrameTally:
        async with gate:
            tally = await frames_run(ctx, name, sequence, workspace)
            progress(f"  {name}: {tally.answered} of {tally.good_sent} good requests answered, {tally.state}")
            return tally

    tallies = await asyncio.gather(*(one(name, sequence) for name, sequence in runs.items()))
    kinds = {name: vars(tally) for name, tally in zip(runs, tallies, strict=True)}
    return {
        "kinds": kinds,
        "good_sent": sum(t.good_sent for t in tallies),
        "good_answered": sum(t.answered for t in tallies),
        "unanswered_good_requests": sum(t.unanswered for t in tallies),
        "swallowed_by_a_longer_frame": sum(t.swallowed for t in tallies),
        "daemons_deaf_at_the_end": sum(t.state == "deaf" for t in tallies),
        "daemons_dead_at_the_end": sum(t.state.startswith("dead") for t in tallies),
    }


# --- the run ------------------------------------------------------------------------------------


def verdict(results: dict[str, Any]) -> dict[str, int]:
    """The three promises' counts; each must be 0."""
    feedback, storm, frames = (
        results.get(part, {}) for part in ("kill_during_feedback", "file_event_storm", "bad_frames")
    )
    return {
        "lost_acknowledged_rows": feedback.get("lost_acknowledged_rows", 0),
        "frozen_daemons": feedback.get("frozen_daemons", 0) + storm.get("frozen_daemons", 0),
        "daemons_died": feedback.get("died_on_their_own", 0) + int(storm.get("alive") is False),
        "storm_tree_not_converged": int(bool(storm) and not storm.get("converged", False)),
        "unanswered_good_requests": frames.get("unanswered_good_requests", 0),
    }


def print_summary(results: dict[str, Any]) -> None:
    feedback, storm, frames = (
        results.get(part) for part in ("kill_during_feedback", "file_event_storm", "bad_frames")
    )
    print(f"soak run {results['date']} on {results['machine']['cores_available']} cores, {results['model']}")
    if feedback:
        print(
            f"kill -9 during feedback: {feedback['kills']} kills, {feedback['acknowledged']} acknowledged "
            f"of {feedback['requests_sent']} sent, {feedback['lost_acknowledged_rows']} lost, "
            f"{feedback['frozen_daemons']} frozen; quick_check {feedback['quick_check']}"
        )
    if storm:
        after = storm.get("answer_after_storm_ms", "-")
        print(
            f"file-event storm: {storm.get('rate_achieved', '-')} operations/s for {storm['seconds']} s; "
            f"answer after it {after} ms; tree converged: {storm.get('converged', False)} "
            f"({storm.get('converged_after_ms', '-')} ms); {storm['frozen_daemons']} frozen"
        )
    if frames:
        print(
            f"bad frames: {frames['good_answered']} of {frames['good_sent']} good requests answered, "
            f"{frames['unanswered_good_requests']} unanswered, {frames['swallowed_by_a_longer_frame']} "
            f"swallowed by a longer frame; daemons at the end: {frames['daemons_deaf_at_the_end']} deaf, "
            f"{frames['daemons_dead_at_the_end']} dead"
        )
        for name, tally in frames["kinds"].items():
            print(f"  {name:30} {tally['answered']}/{tally['good_sent']} answered, {tally['state']}")
    held = not any(results["promises"].values())
    print(f"promises: {results['promises']} -> {'held' if held else 'NOT HELD'}")


async def soak(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    ctx = Context(root, args.model_path, args.answer_timeout, args.seed)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {k: v for k, v in machine().items() if k != "threads_used"},
        "model": str(args.model_path),
        "seed": args.seed,
    }
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("kill_during_feedback", lambda: kill_during_feedback(ctx, args.rounds)),
        ("file_event_storm", lambda: file_event_storm(ctx, args.seconds, args.rate)),
        ("bad_frames", lambda: bad_frames(ctx)),
    ]
    for name, part in parts:
        if name in args.skip:
            continue
        progress(f"{name.replace('_', ' ')} ...")
        start = time.perf_counter()
        results[name] = await part()
        results[name]["wall_s"] = round(time.perf_counter() - start, 1)
    results["promises"] = verdict(results)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="kill -9 rounds during feedback (default 20)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of the file-event storm (default 10)"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="file operations a second (default 1000)")
    parser.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    parser.add_argument("--model-path", type=Path, default=DEFAULT_BUNDLE_DIR, help="model bundle folder")
    parser.add_argument(
        "--answer-timeout",
        type=float,
        default=10.0,
        help="seconds an answer may take before it counts as missing",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--keep", type=Path, help="work (and keep workspaces, databases, daemon logs) here")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["kill_during_feedback", "file_event_storm", "bad_frames"],
        help="parts to leave out",
    )
    args = parser.parse_args()
    for name in ("rounds", "seconds", "rate", "answer_timeout"):
        if not 0 < getattr(args, name) < math.inf:
            parser.error(f"--{name.replace('_', '-')} must be a finite number above 0 (or --skip the part)")
    if not (args.model_path / "manifest.json").is_file():
        parser.error(f"no model bundle at {args.model_path}; pass --model-path DIR (a bundle folder)")
    args.model_path = args.model_path.resolve()
    if args.keep:
        root = args.keep.resolve() / datetime.now(UTC).strftime("soak-%Y%m%dT%H%M%S")
        root.mkdir(parents=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="treelens-soak-"))
    try:
        results = asyncio.run(soak(args, root))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print_summary(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any(results["promises"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
