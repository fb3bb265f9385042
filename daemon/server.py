"""The Treelens language server: its state and the services behind its requests.

One TreelensServer holds the settings, the model (daemon/model_state.py), the feedback
store and the workspace folders (daemon/folders.py). Handlers (daemon/handlers.py) turn
params into values and call one request service here each: ``classify``,
``classify_tree``, ``tokenize``, ``submit_feedback``, ``suggest_query_set``.

Concurrency: the event loop only coordinates. Scans, tree updates, describing and
classifying run on a small worker pool. One locking rule: whatever reads or changes a
folder's tree or result holds that folder's lock, and each request service takes it
itself (callers never do). Only a changed model text is classified again, and
``treelens/labelsChanged`` goes out only when a folder's labels or probabilities differ
from what was last sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from treelens.daemon.folders import Folders, FolderState
from treelens.daemon.framing import serve
from treelens.daemon.lifecycle import TreelensProtocol
from treelens.daemon.model_state import ModelState
from treelens.daemon.params import Scope
from treelens.daemon.protocol import (
    LABELS_CHANGED,
    SETTINGS_SECTION,
    FeedbackUnavailable,
    InternalError,
    QuerySetsUnavailable,
    json_converter,
)
from treelens.daemon.settings import Settings
from treelens.daemon.watch import RESCAN
from treelens.model.bundle import DEFAULT_BUNDLE_DIR, BundleError
from treelens.model.errors import UsageError
from treelens.model.feedback import Feedback, FeedbackError, FeedbackStore, Prediction
from treelens.model.filters import PathFilter
from treelens.model.input import ModelText, analyze, describe
from treelens.model.tree import ProjectTree

if TYPE_CHECKING:
    from treelens.model.runtime import Classification, Classifier

log = logging.getLogger(__name__)
T = TypeVar("T")

WORKERS = 2
"""Threads for blocking work: a scan and a model run can go side by side; the model's own
parallelism is onnxruntime's intra-op threads (model/runtime.py default_threads)."""
PROGRESS_CREATE_TIMEOUT_S = 5.0
REFRESHED_LOG = "%s: refreshed in %.1f ms: %s"
REFRESHED = re.compile(r"refreshed in (?P<ms>[\d.]+) ms: (?P<outcome>.+)$")
"""The debug line each refresh of a folder logs (its name, the time to describe and
classify, the outcome) and its parser: bench/daemon_freshness.py reads it, so that a
change of one without the other fails tests/test_daemon_log.py, not the bench."""


def package_version() -> str:
    try:
        return importlib.metadata.version("treelens")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class ProgressReport:
    """What slow work tells the client while it runs (nothing when it has no progress UI)."""

    def __init__(self, server: LanguageServer, token: str | None) -> None:
        self._server, self._token = server, token
        self.outcome: str | None = None  # the end message

    def report(self, message: str) -> None:
        if self._token is not None:
            self._server.work_done_progress.report(self._token, types.WorkDoneProgressReport(message=message))


class TreelensServer(LanguageServer):
    """The language server: settings, model, feedback store and folders."""

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
        self.folders = Folders(self)
        self.model = ModelState()
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="treelens")
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

    def start(self) -> None:
        """Begin the slow work (model load, first scans) once the client is listening."""
        if self._started:
            return
        self._started = True
        self._load_model()
        self.folders.start()

    def stop(self) -> None:
        self.folders.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def describe_start(self) -> str:
        """What a support question needs: interpreter, folder, model and settings."""
        return (
            f"Treelens daemon {self.version} (Python {sys.version.split()[0]} at {sys.executable}), "
            f"cwd {os.getcwd()}, model {self.settings.model_path or DEFAULT_BUNDLE_DIR}, "
            f"settings {self.settings.to_json()}, folders {self.folders.uris()}"
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
            self._load_model()  # refreshes every folder
        elif new.thresholds != old.thresholds:
            for folder in self.folders:
                self.spawn(self.refresh(folder))
        if new.extra_ignores != old.extra_ignores:
            for folder in self.folders:
                if folder.tree is not None:
                    folder.tree.path_filter = self.path_filter  # the rescan reloads its ignores
                self.folders.note_change(folder, RESCAN, immediately=True)

    # the model ----------------------------------------------------------------------------

    def _load_model(self) -> None:
        settings = self.settings

        async def load() -> Classifier:
            where = str(settings.model_path or DEFAULT_BUNDLE_DIR)
            async with self.progress("Treelens: loading the model", where) as progress:
                try:
                    classifier = await self.run(_load_classifier, settings.model_path, settings.device)
                except (BundleError, UsageError):
                    progress.outcome = "no usable model"
                    raise
                progress.outcome = f"model {classifier.version}"
                return classifier

        def refresh_all() -> None:
            for folder in self.folders:
                if folder.ready.is_set():
                    self.spawn(self.refresh(folder))

        self.model.load(load, refresh_all)

    async def require_model(self) -> Classifier:
        """The classifier, waiting for a load in progress (see ModelState.require)."""
        self.start()
        return await self.model.require()

    # folders and their results ------------------------------------------------------------

    async def workspace_folder(self, uri: str | None) -> FolderState:
        """The folder a request names (None: the first), once scanned and servable."""
        self.start()
        return await self.folders.ready(self.folders.named(uri))

    async def refresh(self, folder: FolderState) -> None:
        """Classify a folder when its result is stale (after loads and settings changes)."""
        async with folder.lock:
            await self.refresh_locked(folder)

    async def refresh_locked(self, folder: FolderState) -> None:
        """``refresh`` for a caller that holds the folder lock (a scan, a batch of changes)."""
        classifier = self.model.classifier
        if classifier is not None and folder.tree is not None and not folder.error:
            await self._describe_and_classify(folder, classifier)

    async def _current(self, folder: FolderState, classifier: Classifier) -> tuple[ModelText, Classification]:
        """Model text and classification of the folder's tree as it is now (lock held)."""
        folder.scanned_tree()
        await self._describe_and_classify(folder, classifier)
        if folder.result is None or folder.text is None or folder.classification is None:
            raise InternalError(f"{folder.uri}: classification left no result")
        return folder.text, folder.classification

    async def _describe_and_classify(self, folder: FolderState, classifier: Classifier) -> None:
        """Describe the tree; classify when the model text changed; announce a change.
        Nothing is done when the result is current: same tree version, same load of the
        model, same thresholds (a classifier a newer load replaced never counts as current)."""
        tree = folder.scanned_tree()
        thresholds = dict(self.settings.thresholds)
        key = (folder.version, self.model.generation_of(classifier), tuple(thresholds.items()))
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
        log.debug(REFRESHED_LOG, folder.name, elapsed_ms, outcome)

    def _announce(self, folder: FolderState, result: dict[str, Any]) -> bool:
        """Send labelsChanged when labels or probabilities differ from the last one sent."""
        current = (result["labels"], result["probabilities"])
        if current == folder.sent or folder.removed:
            return False
        folder.sent = current
        self.protocol.notify(LABELS_CHANGED, dict(result))
        return True

    # request services: each takes the folder lock itself ----------------------------------

    async def classify(self, folder: FolderState) -> dict[str, Any]:
        """treelens/classify: the folder's labels, computed if stale."""
        classifier = await self.require_model()
        async with folder.lock:
            await self._current(folder, classifier)
            return dict(folder.result or {})

    async def classify_tree(self, tree: ProjectTree) -> dict[str, Any]:
        """treelens/classifyTree: the labels of a tree the client built (no folder, no lock)."""
        classifier = await self.require_model()
        thresholds, path_filter = dict(self.settings.thresholds), self.path_filter

        def work() -> tuple[Classification, float]:
            start = time.perf_counter()
            classification = classifier.classify(tree, path_filter=path_filter, thresholds=thresholds)
            return classification, (time.perf_counter() - start) * 1000

        classification, elapsed_ms = await self.run(work)
        return {**classification.to_json(), "elapsedMs": round(elapsed_ms, 1)}

    async def tokenize(self, folder: FolderState) -> dict[str, Any]:
        """treelens/tokenize: the folder's model text and its tokens."""
        classifier = await self.require_model()
        async with folder.lock:
            text = (await self._current(folder, classifier))[0].text
        tokens = await self.run(classifier.tokenize, text)
        return {
            "text": text,
            "tokens": [{"id": token_id, "text": token} for token_id, token in tokens],
            "tokenCount": len(tokens),
        }

    async def submit_feedback(
        self, folder: FolderState, labels: dict[str, int], comment: str
    ) -> dict[str, Any]:
        """treelens/submitFeedback: store the person's labels with the tree, model text and
        prediction (none without a model); answers once the row is committed."""
        classifier = await self.model_if_any()
        async with folder.lock:
            tree = await self.run(folder.scanned_tree().snapshot, sizes=True)  # a data-set record
            if classifier is not None:
                model_text, found = await self._current(folder, classifier)
                prediction = Prediction(list(found.labels), dict(found.probabilities), found.model_version)
            else:
                model_text, prediction = await self.run(describe, tree, path_filter=self.path_filter), None
        entry = Feedback(folder.uri, tree, model_text.text, labels, prediction, comment)
        try:
            row_id = await self.run(self.feedback.submit, entry)
        except FeedbackError as error:
            log.warning("%s", error)
            raise FeedbackUnavailable(str(error)) from None
        log.info("feedback %d stored for %s", row_id, folder.uri)
        return {"id": row_id, "stored": True}

    async def suggest_query_set(
        self, folder: FolderState, engine: str, catalog: Path | None, scope: Scope
    ) -> dict[str, Any]:
        """treelens/suggestQuerySet: the engine's query set for the folder, from the model's
        labels when there is a model, else from languages and technologies alone (the
        result says which); a semgrep config carries the path ``scope`` asked for, as
        ``treelens suggest --scope-components --skip-vendored`` writes it."""
        # the policy and catalog readers (yaml, the engines' formats) load on first use
        from treelens.model.pipeline import suggest_sets
        from treelens.model.querysets import CatalogError, ModelLabels, load_catalog
        from treelens.model.querysets.semgrep import scoped

        classifier = await self.model_if_any()
        labels = None
        async with folder.lock:  # one tree for the labels, the analysis and the path scope
            tree = folder.scanned_tree().snapshot()
            if classifier is not None:
                text, found = await self._current(folder, classifier)
                analysis, labels = text.analysis, ModelLabels(found.probabilities, found.thresholds, "")
            else:
                analysis = await self.run(analyze, tree, self.path_filter)
        try:
            loaded = await self.run(load_catalog, engine, catalog)
        except CatalogError as error:
            raise QuerySetsUnavailable(f"no {engine} catalog: {error}") from None
        sets = await self.run(suggest_sets, analysis, {engine: loaded}, labels, folder.name, folder.root)
        query_set = sets[engine]
        if scope.components or scope.skip_vendored:
            query_set = await self.run(
                scoped,
                query_set,
                tree,
                folder.root,
                components=scope.components,
                skip_vendored=scope.skip_vendored,
            )
        return query_set.to_json()

    async def model_if_any(self) -> Classifier | None:
        """The classifier once any load in progress has settled, or None."""
        self.start()
        return await self.model.if_any()

    # helpers ------------------------------------------------------------------------------

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work on the worker pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: function(*args, **kwargs))

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
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
