"""The Treelens language server's state and the work behind its requests.

One TreelensServer holds the settings, the classifier (loaded off the event loop), the
feedback store and one FolderState per workspace folder. Handlers (daemon/handlers.py)
turn params into values and call the coroutines here.

Concurrency: the event loop only coordinates. Scans, tree updates, describing and
classifying run on a small worker pool; each folder has an asyncio lock, so one
operation at a time touches its tree. watchdog reports changes on its own thread and
hands them to the loop with ``call_soon_threadsafe``; the loop debounces them per folder
(``debounceMs``) and applies each batch incrementally (daemon/folder_tree.py). Only a
changed model text is classified again, and ``treelens/labelsChanged`` goes out only
when a folder's labels or probabilities differ from what was last sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from watchdog.observers.api import ObservedWatch

from treelens.daemon.folder_tree import FolderTree
from treelens.daemon.framing import serve
from treelens.daemon.lifecycle import TreelensProtocol
from treelens.daemon.protocol import (
    LABELS_CHANGED,
    SETTINGS_SECTION,
    FeedbackUnavailable,
    FolderUnavailable,
    InternalError,
    InvalidParams,
    ModelUnavailable,
    QuerySetsUnavailable,
    json_converter,
)
from treelens.daemon.scan import ScanError, check_folder
from treelens.daemon.settings import Settings
from treelens.daemon.watch import RESCAN, FolderEvents, Watcher
from treelens.model.bundle import DEFAULT_BUNDLE_DIR, BundleError, no_model_message
from treelens.model.errors import UsageError
from treelens.model.feedback import Feedback, FeedbackError, FeedbackStore, Prediction
from treelens.model.filters import PathFilter
from treelens.model.input import ModelText, analyze, describe
from treelens.model.tree import ProjectTree

if TYPE_CHECKING:
    from treelens.model.runtime import Classification, Classifier

log = logging.getLogger(__name__)
T = TypeVar("T")
ResultKey = tuple[int, int, tuple[tuple[str, float], ...]]
"""What a folder's result was computed from: tree version, model generation, thresholds."""

WORKERS = 2
"""Threads for scans and inference: the budget machine has 2 cores."""
MAX_EXTRA_WAIT_S = 2.0
"""A stream of changes is applied at the latest this long after the debounce would have
fired for its first change, so labels follow a long-running build."""
PROGRESS_CREATE_TIMEOUT_S = 5.0


def package_version() -> str:
    try:
        return importlib.metadata.version("treelens")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class FolderState:
    """One workspace folder: its live tree, its latest result and its pending changes."""

    def __init__(self, uri: str, name: str) -> None:
        self.uri = uri
        self.name = name
        path = to_fs_path(uri) if uri.startswith("file:") else None
        self.root: Path | None = Path(path) if path else None
        self.tree: FolderTree | None = None
        self.error: str | None = None  # why the folder cannot be served
        self.bug: Exception | None = None  # the scan hit a bug (logged with its traceback)
        self.ready = asyncio.Event()  # the first scan finished (or failed)
        self.lock = asyncio.Lock()  # one operation on the tree at a time
        self.removed = False
        self.watch: ObservedWatch | None = None
        # changes reported by the watcher, not yet applied
        self.pending: set[str] = set()
        self.rescan = False
        self.first_pending: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        # what the model saw and said, valid while result_key is (version, model, thresholds) now
        self.version = 0  # bumped by every change of the tree
        self.text: ModelText | None = None
        self.classification: Classification | None = None
        self.result: dict[str, Any] | None = None
        self.result_key: ResultKey | None = None
        self.sent: tuple[list[str], dict[str, float]] | None = None  # last labelsChanged


class ProgressReport:
    """What slow work tells the client while it runs (nothing when it has no progress UI)."""

    def __init__(self, server: LanguageServer, token: str | None) -> None:
        self._server, self._token = server, token
        self.outcome: str | None = None  # the end message

    def report(self, message: str) -> None:
        if self._token is not None:
            self._server.work_done_progress.report(self._token, types.WorkDoneProgressReport(message=message))


class TreelensServer(LanguageServer):
    """The language server: settings, classifier, feedback store and folders."""

    def __init__(self) -> None:
        super().__init__(
            "treelens",
            package_version(),
            text_document_sync_kind=types.TextDocumentSyncKind.None_,
            protocol_cls=TreelensProtocol,
            converter_factory=json_converter,
        )
        self.settings = Settings()
        self.path_filter = PathFilter()
        self.feedback = FeedbackStore(self.settings.feedback_database)
        self.folders: dict[str, FolderState] = {}  # URI -> state, in workspace order
        self.classifier: Classifier | None = None
        self.model_error: str | None = None  # why there is no model (a person can fix it)
        self.model_bug: Exception | None = None  # the last load hit a bug (logged with its traceback)
        self.model_task: asyncio.Task[None] | None = None
        self._model_generation = 0  # bumped by every load started
        self._loaded_generation = 0  # the load self.classifier came from
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="treelens")
        self.watcher: Watcher | None = None
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # life cycle ---------------------------------------------------------------------------

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """pygls' stdio server with daemon/framing.py's reader (pygls' own goes deaf or dies
        on one bad frame). ``exit`` raises SystemExit with its code (0 after shutdown, else 1)."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(serve(stdin or sys.stdin.buffer, self.protocol, self._stop_event))
        except BrokenPipeError:
            log.error("the client closed the connection; stopping")
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log what failed outside a request (a notification handler, a bad message) with
        its traceback; requests already answer their own errors."""
        if source is FeatureRequestError:
            return
        data = getattr(error, "data", None)  # pygls carries a handler's traceback as text
        trace = "".join(data["traceback"]) if isinstance(data, dict) and "traceback" in data else ""
        log.error("%s: %s\n%s", source.__name__, error, trace, exc_info=error if not trace else None)

    def configure(self, raw: Any) -> list[str]:
        """Adopt settings from JSON; returns the problems found (already logged).

        A change that does not carry Treelens' section (another extension's settings, or
        nothing) leaves the settings as they are."""
        if not Settings.carried(raw):
            if raw is None or isinstance(raw, dict):
                log.info("a settings change without the %r section: the settings are kept", SETTINGS_SECTION)
                return []
            problem = f"settings must be a JSON object, got {type(raw).__name__}; the settings are kept"
            log.warning("%s", problem)
            return [problem]
        settings, problems = Settings.parse(raw)
        for problem in problems:
            log.warning("%s", problem)
        self._adopt(settings)
        log.info("settings now %s", settings.to_json())
        return problems

    def add_folder(self, uri: str, name: str | None = None) -> FolderState:
        folder = self.folders.get(uri)
        if folder is None:
            folder = FolderState(uri, name or uri.rstrip("/").rpartition("/")[2] or uri)
            self.folders[uri] = folder
            if self._started:
                self._spawn(self._start_folder(folder))
        return folder

    def remove_folder(self, uri: str) -> None:
        folder = self.folders.pop(uri, None)
        if folder is None:
            return
        folder.removed = True
        if folder.timer:
            folder.timer.cancel()
        self._unwatch(folder)

    def start(self) -> None:
        """Begin the slow work (model load, first scans) once the client is listening."""
        if self._started:
            return
        self._started = True
        self.watcher = Watcher()
        self.model_task = asyncio.ensure_future(self._load_model())
        for folder in list(self.folders.values()):
            self._spawn(self._start_folder(folder))

    def stop(self) -> None:
        for folder in self.folders.values():
            if folder.timer:
                folder.timer.cancel()
        if self.watcher:
            self.watcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def describe_start(self) -> str:
        """What a support question needs: interpreter, folder, model and settings."""
        return (
            f"Treelens daemon {self.version} (Python {sys.version.split()[0]} at {sys.executable}), "
            f"cwd {os.getcwd()}, model {self.settings.model_path or DEFAULT_BUNDLE_DIR}, "
            f"settings {self.settings.to_json()}, folders {list(self.folders)}"
        )

    # settings -----------------------------------------------------------------------------

    def _adopt(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        self.feedback = FeedbackStore(new.feedback_database)
        if new.extra_ignores != old.extra_ignores:
            self.path_filter = PathFilter(extra_ignores=new.extra_ignores)
        if not self._started:
            return
        if (new.model_path, new.device) != (old.model_path, old.device):
            log.info("model settings changed: loading %s on %s", new.model_path or "default", new.device)
            self.model_task = asyncio.ensure_future(self._load_model())  # refreshes every folder
        elif new.thresholds != old.thresholds:
            for folder in self.folders.values():
                self._spawn(self._refresh(folder))
        if new.extra_ignores != old.extra_ignores:
            for folder in self.folders.values():
                if folder.tree is not None:
                    folder.tree.path_filter = self.path_filter  # the rescan reloads its ignores
                self._note_change(folder, RESCAN, immediately=True)

    # the model ----------------------------------------------------------------------------

    async def _load_model(self) -> None:
        self._model_generation += 1
        generation, settings = self._model_generation, self.settings
        classifier, problem, bug = None, "", None
        where = str(settings.model_path or DEFAULT_BUNDLE_DIR)
        try:
            async with self.progress("Treelens: loading the model", where) as progress:
                try:
                    classifier = await self.run(_load_classifier, settings.model_path, settings.device)
                    progress.outcome = f"model {classifier.version}"
                except (BundleError, UsageError) as error:  # the bundle, or a device this machine lacks
                    problem = no_model_message(error)
                    progress.outcome = "no usable model"
        except Exception as error:  # a bug: caught, or the failed task would fail every request
            log.exception("loading the model failed")
            bug = error
        if generation != self._model_generation:
            return  # the settings changed meanwhile: a newer load decides
        self.model_bug = bug
        if classifier is None:
            self.classifier, self.model_error = None, problem
            if problem:
                log.warning("%s", problem)
            return
        self.classifier, self.model_error, self._loaded_generation = classifier, None, generation
        for folder in list(self.folders.values()):
            if folder.ready.is_set():
                self._spawn(self._refresh(folder))

    async def require_model(self) -> Classifier:
        """The classifier, waiting for a load in progress; ModelUnavailable when none (a
        RuntimeError, answered as InternalError, when the load hit a bug)."""
        self.start()
        task = self.model_task
        while task is not None:
            await asyncio.shield(task)
            if task is self.model_task:
                break
            task = self.model_task  # settings changed while loading: wait for the newer load
        if self.classifier is None and self.model_bug is not None:
            bug = self.model_bug
            raise RuntimeError(f"loading the model failed ({type(bug).__name__}: {bug})") from bug
        if self.classifier is None:
            raise ModelUnavailable(self.model_error or "Treelens has no model loaded")
        return self.classifier

    async def model_if_any(self) -> Classifier | None:
        """The classifier once any load in progress has settled, or None (feedback and
        query sets still serve without a model, whatever kept it from loading)."""
        try:
            return await self.require_model()
        except (ModelUnavailable, RuntimeError):
            return None

    # folders ------------------------------------------------------------------------------

    def folder(self, uri: str | None) -> FolderState:
        """The folder a request names (None: the first), or InvalidParams."""
        if not self.folders:
            raise InvalidParams("no workspace folder is open; open a folder, or use treelens/classifyTree")
        if uri is None:
            return next(iter(self.folders.values()))
        if uri in self.folders:
            return self.folders[uri]
        wanted = to_fs_path(uri) if uri.startswith("file:") else None
        for folder in self.folders.values():
            if wanted and folder.root and os.path.normpath(wanted) == os.path.normpath(folder.root):
                return folder
        raise InvalidParams(f"unknown workspace folder {uri!r:.300}; open folders are {list(self.folders)}")

    async def ready(self, folder: FolderState) -> FolderState:
        """Wait for the folder's first scan; FolderUnavailable when it cannot be served.
        A folder that was gone and is back is scanned again."""
        self.start()
        if folder.error and folder.ready.is_set() and folder.root and folder.root.is_dir():
            log.info("%s is back; scanning it again", folder.root)
            folder.ready.clear()
            folder.error = folder.bug = None
            self._spawn(self._start_folder(folder))
        await folder.ready.wait()
        if folder.error is None and folder.root is not None:
            try:  # deleted a moment ago: say so now rather than after the debounce
                check_folder(folder.root)
            except ScanError as error:
                self._fail(folder, error)
        self.check(folder)
        return folder

    def check(self, folder: FolderState) -> None:
        if folder.removed:
            raise FolderUnavailable(f"workspace folder {folder.uri} was removed from the workspace")
        if folder.bug is not None:
            bug = folder.bug
            raise RuntimeError(f"scanning {folder.uri} failed ({type(bug).__name__}: {bug})") from bug
        if folder.error:
            raise FolderUnavailable(folder.error)

    async def _start_folder(self, folder: FolderState) -> None:
        """First scan (with progress), start watching, then classify."""
        async with folder.lock:
            try:
                if folder.root is None:
                    raise ScanError(f"{folder.uri} is not a folder on this machine's disk (file: URI)")
                root = await self.run(check_folder, folder.root)
                folder.tree = FolderTree(root, self.path_filter)
                self._watch(folder, folder.tree)
                async with self.progress(f"Treelens: scanning {folder.name}", str(root)) as progress:
                    progress.report("listing files")
                    await self.run(folder.tree.rescan)
                    progress.outcome = f"{len(folder.tree.files)} files"
                folder.version += 1
                info = folder.tree.info
                log.info("%s: %d files (%s)", root, len(folder.tree.files), info.method)
                for unreadable in info.unreadable:
                    log.warning("%s: cannot read folder %s; left out", root, unreadable)
            except ScanError as error:  # no tree is served
                self._fail(folder, error)
            except Exception as error:  # a bug: requests on the folder answer InternalError
                log.exception("scanning %s failed", folder.uri)
                self._fail(folder, error)
            finally:
                folder.ready.set()
        if folder.error is None and self.classifier is not None:
            await self._refresh(folder)

    def _fail(self, folder: FolderState, error: Exception) -> None:
        """The folder cannot be served: ``error`` is a ScanError (FolderUnavailable), or a bug
        (already logged with its traceback; requests answer InternalError)."""
        folder.bug = None if isinstance(error, ScanError) else error
        folder.error = f"workspace folder {folder.uri} cannot be read: {error}"
        if folder.bug is None:
            log.warning("%s", folder.error)
        self._unwatch(folder)

    def _watch(self, folder: FolderState, tree: FolderTree) -> None:
        if self.watcher is None:
            return
        loop = asyncio.get_running_loop()

        def deliver(rel: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
                loop.call_soon_threadsafe(self._note_change, folder, rel)

        handler = FolderEvents(tree.root, lambda: tree.ignores, lambda rel: rel in tree.files, deliver)
        try:
            folder.watch = self.watcher.watch(tree.root, handler)
        except (OSError, RecursionError) as error:  # watchdog walks folders recursively
            log.warning(
                "cannot watch %s (%s): labels will not follow file changes; on Linux raise "
                "fs.inotify.max_user_watches",
                tree.root,
                error,
            )

    def _unwatch(self, folder: FolderState) -> None:
        if folder.watch is not None and self.watcher is not None:
            self.watcher.unwatch(folder.watch)
        folder.watch = None

    # changes ------------------------------------------------------------------------------

    def _note_change(self, folder: FolderState, rel: str, immediately: bool = False) -> None:
        """A change reported by the watcher (on the loop): debounce, then apply."""
        if folder.removed:
            return
        if rel == RESCAN:
            folder.rescan = True
        else:
            folder.pending.add(rel)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if folder.first_pending is None:
            folder.first_pending = now
        debounce = self.settings.debounce_ms / 1000
        deadline = folder.first_pending + debounce + MAX_EXTRA_WAIT_S
        delay = 0.0 if immediately else max(0.0, min(debounce, deadline - now))
        if folder.timer:
            folder.timer.cancel()
        folder.timer = loop.call_later(delay, self._flush, folder)

    def _flush(self, folder: FolderState) -> None:
        folder.timer = None
        self._spawn(self._update(folder))

    async def _update(self, folder: FolderState) -> None:
        """Apply the pending changes as one batch; classify when the tree changed."""
        async with folder.lock:
            touched, rescan = folder.pending, folder.rescan
            folder.pending, folder.rescan, folder.first_pending = set(), False, None
            if folder.tree is None or folder.removed or not (touched or rescan):
                return
            try:
                if rescan:
                    await self.run(folder.tree.rescan)
                    changed = True
                    if folder.error:
                        folder.error = folder.bug = None
                        self._watch(folder, folder.tree)
                else:
                    changed = await self.run(folder.tree.apply, touched)
            except ScanError as error:
                self._fail(folder, error)
                return
            log.debug("%s: %d change(s)%s applied", folder.name, len(touched), " + rescan" if rescan else "")
            if changed:
                folder.version += 1
                if self.classifier is not None:
                    await self._refresh_locked(folder, self.classifier, folder.tree)

    # results ------------------------------------------------------------------------------

    async def _refresh(self, folder: FolderState) -> None:
        """Classify a folder when its result is stale (used after loads and settings changes)."""
        async with folder.lock:
            if self.classifier is not None and folder.tree is not None and not folder.error:
                await self._refresh_locked(folder, self.classifier, folder.tree)

    async def current_result(self, folder: FolderState, classifier: Classifier) -> dict[str, Any]:
        """The folder's classify result, computed if stale (folder lock held by the caller)."""
        result, _text, _classification = await self._current(folder, classifier)
        return dict(result)

    async def _current(
        self, folder: FolderState, classifier: Classifier
    ) -> tuple[dict[str, Any], ModelText, Classification]:
        """Result, model text and classification of the folder's tree as it is now."""
        self.check(folder)
        tree = folder.tree
        if tree is None:
            raise FolderUnavailable(f"workspace folder {folder.uri} has not been scanned")
        await self._refresh_locked(folder, classifier, tree)
        if folder.result is None or folder.text is None or folder.classification is None:
            raise InternalError(f"{folder.uri}: classification left no result")
        return folder.result, folder.text, folder.classification

    async def _refresh_locked(self, folder: FolderState, classifier: Classifier, tree: FolderTree) -> None:
        """Describe the tree; classify when the model text changed; announce a change."""
        thresholds = dict(self.settings.thresholds)
        generation = self._loaded_generation if classifier is self.classifier else -1
        key = (folder.version, generation, tuple(thresholds.items()))
        if folder.result is not None and folder.result_key == key:
            return
        path_filter = self.path_filter
        same_model = folder.result_key is not None and folder.result_key[1:] == key[1:]
        previous = folder.text if same_model and folder.classification is not None else None

        def work() -> tuple[ModelText, Classification | None, float]:
            start = time.perf_counter()
            text = classifier.describe(tree.snapshot(), path_filter)
            if previous is not None and text.text == previous.text:
                return text, None, (time.perf_counter() - start) * 1000  # the answer cannot change
            classification = classifier.classify_text(text, thresholds)
            return text, classification, (time.perf_counter() - start) * 1000

        text, classification, elapsed_ms = await self.run(work)
        folder.text = text
        outcome = "same model text"
        if classification is not None:
            folder.classification = classification
            result = {**classification.to_json(), "folder": folder.uri, "elapsedMs": round(elapsed_ms, 1)}
            folder.result = result
            outcome = (
                "labelsChanged sent" if self._announce(folder, result) else "same labels and probabilities"
            )
        folder.result_key = key
        log.debug("%s: refreshed in %.1f ms: %s", folder.name, elapsed_ms, outcome)

    def _announce(self, folder: FolderState, result: dict[str, Any]) -> bool:
        """Send labelsChanged when labels or probabilities differ from the last one sent."""
        current = (result["labels"], result["probabilities"])
        if current == folder.sent or folder.removed:
            return False
        folder.sent = current
        self.protocol.notify(LABELS_CHANGED, dict(result))
        return True

    async def classify_tree(self, tree: ProjectTree) -> dict[str, Any]:
        classifier = await self.require_model()
        thresholds, path_filter = dict(self.settings.thresholds), self.path_filter

        def work() -> tuple[Classification, float]:
            start = time.perf_counter()
            classification = classifier.classify(tree, path_filter=path_filter, thresholds=thresholds)
            return classification, (time.perf_counter() - start) * 1000

        classification, elapsed_ms = await self.run(work)
        return {**classification.to_json(), "elapsedMs": round(elapsed_ms, 1)}

    async def tokenize(self, folder: FolderState) -> dict[str, Any]:
        classifier = await self.require_model()
        async with folder.lock:
            text = (await self._current(folder, classifier))[1].text
        tokens = await self.run(classifier.tokenize, text)
        return {
            "text": text,
            "tokens": [{"id": token_id, "text": token} for token_id, token in tokens],
            "tokenCount": len(tokens),
        }

    async def submit_feedback(
        self, folder: FolderState, labels: dict[str, int], comment: str
    ) -> dict[str, Any]:
        """Store the person's labels with the tree, model text and prediction; answers after commit."""
        classifier = await self.model_if_any()
        async with folder.lock:
            self.check(folder)
            prediction = None
            if classifier is not None:
                _result, model_text, found = await self._current(folder, classifier)
                text = model_text.text
                prediction = Prediction(list(found.labels), dict(found.probabilities), found.model_version)
            if folder.tree is None:
                raise FolderUnavailable(f"workspace folder {folder.uri} has not been scanned")
            tree = await self.run(folder.tree.snapshot, sizes=True)  # a data-set record
            if classifier is None:
                text = (await self.run(describe, tree, path_filter=self.path_filter)).text
        entry = Feedback(folder.uri, tree, text, labels, prediction, comment)
        try:
            row_id = await self.run(self.feedback.submit, entry)
        except FeedbackError as error:
            log.warning("%s", error)
            raise FeedbackUnavailable(str(error)) from None
        log.info("feedback %d stored for %s", row_id, folder.uri)
        return {"id": row_id, "stored": True}

    async def suggest_query_set(
        self, folder: FolderState, engine: str, catalog: Path | None
    ) -> dict[str, Any]:
        """The engine's query set for the folder: the model's probabilities when there is a
        model, else languages and technologies alone (the result says which)."""
        from treelens.model.querysets import CatalogError, load_catalog, suggest

        classifier = await self.model_if_any()
        probabilities = thresholds = None
        async with folder.lock:
            self.check(folder)
            if classifier is not None:
                _result, text, found = await self._current(folder, classifier)
                analysis, probabilities, thresholds = text.analysis, found.probabilities, found.thresholds
            elif folder.tree is not None:
                analysis = await self.run(analyze, folder.tree.snapshot(), self.path_filter)
            else:
                raise FolderUnavailable(f"workspace folder {folder.uri} has not been scanned")
        try:
            loaded = await self.run(load_catalog, engine, catalog)
        except CatalogError as error:
            raise QuerySetsUnavailable(f"no {engine} catalog: {error}") from None
        query_set = await self.run(
            suggest, analysis, engine, loaded, probabilities, thresholds, name=folder.name
        )
        return query_set.to_json()

    # helpers ------------------------------------------------------------------------------

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work on the worker pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: function(*args, **kwargs))

    def _spawn(self, coroutine: Any) -> None:
        """Start a background task, keep it alive, and log what it raises."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    @contextlib.asynccontextmanager
    async def progress(self, title: str, message: str | None = None) -> AsyncIterator[ProgressReport]:
        """``$/progress`` begin / report / end around slow work, when the client supports it."""
        token = await self._progress_token()
        report = ProgressReport(self, token)
        if token is not None:
            begin = types.WorkDoneProgressBegin(title=title, message=message, cancellable=False)
            self.work_done_progress.begin(token, begin)
        try:
            yield report
        finally:
            if token is not None:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=report.outcome))
                self.work_done_progress.tokens.pop(token, None)  # pygls keeps every token otherwise

    async def _progress_token(self) -> str | None:
        capabilities = getattr(self.protocol, "client_capabilities", None)  # None before initialize
        if not (capabilities and capabilities.window and capabilities.window.work_done_progress):
            return None
        token = f"treelens-{uuid.uuid4()}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), PROGRESS_CREATE_TIMEOUT_S)
        except Exception as error:  # a client that refuses or ignores the request
            log.debug("no progress token from the client: %s", error)
            return None
        return token


def _load_classifier(model_path: Path | None, device: str) -> Classifier:
    """Import the runtime (onnxruntime) and load a bundle; runs on a worker thread."""
    from treelens.model.runtime import Classifier

    return Classifier.load(model_path, device=device)
