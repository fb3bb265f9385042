"""File-system events of a workspace folder, reduced to the paths worth reconciling.

watchdog calls ``dispatch`` on its own thread. Only creations, deletions and moves
(and finished writes of manifests and ignore files) are asked for at all; each event is
then checked against the folder's current Ignores on that same thread, so events under
.git, node_modules, build output, .gitignore'd paths and extraIgnores are dropped before
they reach the server. What passes is handed over with ``deliver`` (the server wraps
it in ``loop.call_soon_threadsafe``): a relative path to reconcile, or RESCAN.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from treelens.daemon.ignores import Ignores
from treelens.model.manifests import is_manifest

log = logging.getLogger(__name__)

RESCAN = ""
"""Delivered instead of a path when the whole folder must be scanned again (an ignore
file changed, or the folder itself was deleted or moved)."""

EVENTS = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileClosedEvent,
]
"""The only events asked of the OS: plain writes and reads of source files never wake us."""


class FolderEvents(FileSystemEventHandler):
    """Turns one folder's watchdog events into paths to reconcile."""

    def __init__(
        self,
        root: Path,
        ignores: Callable[[], Ignores],
        known: Callable[[str], bool],
        deliver: Callable[[str], None],
    ) -> None:
        self._root = str(root)
        self._prefix = self._root.rstrip(os.sep) + os.sep
        self._ignores = ignores  # the folder's current rules (swapped by a rescan)
        self._known = known  # is this path in the tree now (a dirty read is fine)
        self._deliver = deliver

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            if event.event_type == "moved":
                self._path(os.fsdecode(event.src_path), event.is_directory, appeared=False)
                self._path(os.fsdecode(event.dest_path), event.is_directory, appeared=True)
            elif event.event_type in ("created", "deleted"):
                appeared = event.event_type == "created"
                self._path(os.fsdecode(event.src_path), event.is_directory, appeared=appeared)
            elif event.event_type == "closed":
                self._path(os.fsdecode(event.src_path), False, appeared=True, rewritten=True)
        except Exception:  # never let one odd event stop watchdog's thread
            log.exception("%s: cannot handle %s", self._root, event)

    def _path(self, path: str, is_dir: bool, *, appeared: bool, rewritten: bool = False) -> None:
        if path == self._root:
            self._deliver(RESCAN)  # the folder itself was deleted or moved away
            return
        if not path.startswith(self._prefix):
            return
        rel = path[len(self._prefix) :].replace(os.sep, "/")
        ignores = self._ignores()
        if rel == ignores.exclude_file:
            self._deliver(RESCAN)
            return
        if ignores.excluded(rel, is_dir):
            # a file already in the tree (git lists tracked files even when ignored) must go
            if appeared or is_dir or not self._known(rel):
                return
        elif ignores.triggers_rescan(rel):
            self._deliver(RESCAN)
            return
        if rewritten and not is_manifest(rel):
            return  # a source file's content does not change the tree
        self._deliver(rel)


class Watcher:
    """One watchdog observer (one OS watch per folder) shared by all workspace folders."""

    def __init__(self) -> None:
        self._observer: BaseObserver = Observer()
        self._observer.daemon = True
        self._observer.start()

    def watch(self, root: Path, handler: FolderEvents) -> ObservedWatch:
        """Start watching ``root`` recursively (raises OSError when it cannot be watched)."""
        return self._observer.schedule(handler, str(root), recursive=True, event_filter=EVENTS)

    def unwatch(self, watch: ObservedWatch) -> None:
        with contextlib.suppress(KeyError, OSError):  # already gone with its folder
            self._observer.unschedule(watch)

    def stop(self) -> None:
        self._observer.stop()
