"""The workspace folders the daemon serves: each one's live tree, scan, watch and debounce.

A folder is scanned once when the daemon starts (or when it is added), then kept current
from the watcher's changes: watchdog reports them on its own thread and hands them to the
loop with ``call_soon_threadsafe``; the loop debounces them per folder (``debounceMs``,
but never more than MAX_EXTRA_WAIT_S past the first change) and applies each batch
incrementally (daemon/folder_tree.py). After a change the server describes and classifies
the folder again (daemon/server.py).

Locking: each folder has an asyncio lock, so one operation at a time touches its tree.
Whoever reads or changes a folder's tree or result takes it: the scan and the batches
here, and each request service of the server.

A folder that cannot be read (a ScanError) answers FolderUnavailable; a scan that hits a
bug is logged with its traceback and requests on the folder answer InternalError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.uris import to_fs_path
from watchdog.observers.api import ObservedWatch

from treelens.daemon.folder_tree import FolderTree
from treelens.daemon.protocol import FolderUnavailable, InvalidParams
from treelens.daemon.scan import ScanError, check_folder
from treelens.daemon.watch import RESCAN, FolderEvents, Watcher
from treelens.model.input import ModelText

if TYPE_CHECKING:
    from treelens.daemon.server import TreelensServer
    from treelens.model.runtime import Classification

log = logging.getLogger(__name__)

ResultKey = tuple[int, int, tuple[tuple[str, float], ...]]
"""What a folder's result was computed from: tree version, model generation, thresholds."""
MAX_EXTRA_WAIT_S = 2.0
"""A stream of changes is applied at the latest this long after the debounce would have
fired for its first change, so labels follow a long-running build."""


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

    def check(self) -> None:
        """FolderUnavailable when the folder cannot be served (a RuntimeError, answered as
        InternalError, when its scan hit a bug)."""
        if self.removed:
            raise FolderUnavailable(f"workspace folder {self.uri} was removed from the workspace")
        if self.bug is not None:
            bug = self.bug
            raise RuntimeError(f"scanning {self.uri} failed ({type(bug).__name__}: {bug})") from bug
        if self.error:
            raise FolderUnavailable(self.error)

    def scanned_tree(self) -> FolderTree:
        """The live tree, once the folder is servable and scanned (FolderUnavailable before)."""
        self.check()
        if self.tree is None:
            raise FolderUnavailable(f"workspace folder {self.uri} has not been scanned")
        return self.tree


class Folders:
    """The workspace folders in workspace order, with the watcher they share."""

    def __init__(self, server: TreelensServer) -> None:
        self._server = server
        self._by_uri: dict[str, FolderState] = {}
        self.watcher: Watcher | None = None  # made by start()

    def __iter__(self) -> Iterator[FolderState]:
        return iter(list(self._by_uri.values()))

    def uris(self) -> list[str]:
        return list(self._by_uri)

    # life cycle ---------------------------------------------------------------------------

    def add(self, uri: str, name: str | None = None) -> FolderState:
        folder = self._by_uri.get(uri)
        if folder is None:
            folder = FolderState(uri, name or uri.rstrip("/").rpartition("/")[2] or uri)
            self._by_uri[uri] = folder
            if self.watcher is not None:  # started: scan it now
                self._server.spawn(self._scan(folder))
        return folder

    def remove(self, uri: str) -> None:
        folder = self._by_uri.pop(uri, None)
        if folder is None:
            return
        folder.removed = True
        if folder.timer:
            folder.timer.cancel()
        self._unwatch(folder)

    def start(self) -> None:
        """Start watching and scan every folder."""
        self.watcher = Watcher()
        for folder in self:
            self._server.spawn(self._scan(folder))

    def stop(self) -> None:
        for folder in self:
            if folder.timer:
                folder.timer.cancel()
        if self.watcher:
            self.watcher.stop()

    # finding a folder ---------------------------------------------------------------------

    def named(self, uri: str | None) -> FolderState:
        """The folder a request names (None: the first), or InvalidParams."""
        if not self._by_uri:
            raise InvalidParams("no workspace folder is open; open a folder, or use treelens/classifyTree")
        if uri is None:
            return next(iter(self._by_uri.values()))
        if uri in self._by_uri:
            return self._by_uri[uri]
        wanted = to_fs_path(uri) if uri.startswith("file:") else None
        for folder in self._by_uri.values():
            if wanted and folder.root and os.path.normpath(wanted) == os.path.normpath(folder.root):
                return folder
        raise InvalidParams(f"unknown workspace folder {uri!r:.300}; open folders are {self.uris()}")

    async def ready(self, folder: FolderState) -> FolderState:
        """Wait for the folder's first scan; FolderUnavailable when it cannot be served.
        A folder that was gone and is back is scanned again."""
        if folder.error and folder.ready.is_set() and folder.root and folder.root.is_dir():
            log.info("%s is back; scanning it again", folder.root)
            folder.ready.clear()
            folder.error = folder.bug = None
            self._server.spawn(self._scan(folder))
        await folder.ready.wait()
        if folder.error is None and folder.root is not None:
            try:  # deleted a moment ago: say so now rather than after the debounce
                check_folder(folder.root)
            except ScanError as error:
                self._fail(folder, error)
        folder.check()
        return folder

    # scanning and watching ----------------------------------------------------------------

    async def _scan(self, folder: FolderState) -> None:
        """First scan (with progress), start watching, then classify."""
        server = self._server
        async with folder.lock:
            try:
                if folder.root is None:
                    raise ScanError(f"{folder.uri} is not a folder on this machine's disk (file: URI)")
                root = await server.run(check_folder, folder.root)
                folder.tree = FolderTree(root, server.path_filter)
                self._watch(folder, folder.tree)
                async with server.progress(f"Treelens: scanning {folder.name}", str(root)) as progress:
                    progress.report("listing files")
                    await server.run(folder.tree.rescan)
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
            if folder.error is None:
                await server.refresh_locked(folder)

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
                loop.call_soon_threadsafe(self.note_change, folder, rel)

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

    def note_change(self, folder: FolderState, rel: str, immediately: bool = False) -> None:
        """A change reported by the watcher (on the loop), or RESCAN: debounce, then apply."""
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
        debounce = self._server.settings.debounce_ms / 1000
        deadline = folder.first_pending + debounce + MAX_EXTRA_WAIT_S
        delay = 0.0 if immediately else max(0.0, min(debounce, deadline - now))
        if folder.timer:
            folder.timer.cancel()
        folder.timer = loop.call_later(delay, self._flush, folder)

    def _flush(self, folder: FolderState) -> None:
        folder.timer = None
        self._server.spawn(self._update(folder))

    async def _update(self, folder: FolderState) -> None:
        """Apply the pending changes as one batch; classify when the tree changed."""
        server = self._server
        async with folder.lock:
            touched, rescan = folder.pending, folder.rescan
            folder.pending, folder.rescan, folder.first_pending = set(), False, None
            if folder.tree is None or folder.removed or not (touched or rescan):
                return
            try:
                if rescan:
                    await server.run(folder.tree.rescan)
                    changed = True
                    if folder.error:
                        folder.error = folder.bug = None
                        self._watch(folder, folder.tree)
                else:
                    changed = await server.run(folder.tree.apply, touched)
            except ScanError as error:
                self._fail(folder, error)
                return
            log.debug("%s: %d change(s)%s applied", folder.name, len(touched), " + rescan" if rescan else "")
            if changed:
                folder.version += 1
                await server.refresh_locked(folder)
