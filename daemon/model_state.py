"""The daemon's model: the classifier the settings ask for, loaded off the event loop.

Every load started gets the next generation number; a load that ends after a newer one
started is dropped, so the settings given last decide. A load that fails for a reason a
person can fix (a BundleError, or a device this machine lacks) leaves that reason, which
requests answer as ModelUnavailable; a load that hits a bug is logged with its traceback
and requests that need the model answer InternalError. Either way the daemon keeps
serving what needs no model (feedback, query sets from languages and technologies).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from treelens.daemon.protocol import ModelUnavailable
from treelens.model.bundle import BundleError, no_model_message
from treelens.model.errors import UsageError

if TYPE_CHECKING:
    from treelens.model.runtime import Classifier

log = logging.getLogger(__name__)

Loader = Callable[[], Awaitable["Classifier"]]


class ModelState:
    """The loaded classifier (or why there is none) and the load in progress."""

    def __init__(self) -> None:
        self.classifier: Classifier | None = None
        self.error: str | None = None  # why there is no model, for a person to fix
        self.bug: Exception | None = None  # the last load hit a bug (logged with its traceback)
        self.task: asyncio.Task[None] | None = None
        self._started = 0  # generation of the newest load started
        self._loaded = 0  # generation self.classifier came from

    def load(self, loader: Loader, on_loaded: Callable[[], None]) -> None:
        """Start a load (replacing any in progress); ``on_loaded`` runs once it succeeds."""
        self._started += 1
        self.task = asyncio.ensure_future(self._load(self._started, loader, on_loaded))

    async def _load(self, generation: int, loader: Loader, on_loaded: Callable[[], None]) -> None:
        classifier, problem, bug = None, None, None
        try:
            classifier = await loader()
        except (BundleError, UsageError) as error:  # the bundle, or a device this machine lacks
            problem = no_model_message(error)
        except Exception as error:  # a bug: caught, or the failed task would fail every request
            log.exception("loading the model failed")
            bug = error
        if generation != self._started:
            return  # the settings changed meanwhile: a newer load decides
        self.classifier, self.error, self.bug = classifier, problem, bug
        if problem:
            log.warning("%s", problem)
        if classifier is not None:
            self._loaded = generation
            on_loaded()

    async def require(self) -> Classifier:
        """The classifier, waiting for a load in progress; ModelUnavailable when there is
        none (a RuntimeError, which requests answer as InternalError, when the load hit a bug)."""
        task = self.task
        while task is not None:
            await asyncio.shield(task)
            if task is self.task:
                break
            task = self.task  # settings changed while loading: wait for the newer load
        if self.classifier is not None:
            return self.classifier
        if self.bug is not None:
            bug = self.bug
            raise RuntimeError(f"loading the model failed ({type(bug).__name__}: {bug})") from bug
        raise ModelUnavailable(self.error or "Treelens has no model loaded")

    async def if_any(self) -> Classifier | None:
        """The classifier once any load in progress has settled, or None whatever kept it
        from loading (feedback and query sets still serve without a model)."""
        try:
            return await self.require()
        except (ModelUnavailable, RuntimeError):
            return None

    def generation_of(self, classifier: Classifier) -> int:
        """The load a result computed with ``classifier`` belongs to; -1 for a classifier a
        newer load has replaced, so that such a result never counts as current."""
        return self._loaded if classifier is self.classifier else -1
