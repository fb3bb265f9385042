"""One project's way through the library: tree -> model text -> labels -> query sets.

The ``treelens`` CLI, the daemon and the benches all walk this way; the steps are the
library's (model/input.py describes, model/runtime.py classifies, model/querysets/
decides), and this module joins them so that every caller joins them the same way.
Turning a folder into a tree is the step before (daemon/scan.py, or the daemon's live
tree). The runtime (onnxruntime) is imported only by ``model_labels``: describing and
suggesting without a model do not load it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from treelens.model.bundle import DEFAULT_BUNDLE_DIR, BundleError, load_bundle
from treelens.model.filters import DEFAULT_FILTER, PathFilter
from treelens.model.input import DEFAULT_MAX_TOKENS, Analysis, ModelText, TokenCounter, describe
from treelens.model.querysets import Catalog, ModelLabels, QuerySet, suggest
from treelens.model.tokenizer import line_counter, load_tokenizer
from treelens.model.tree import ProjectTree

if TYPE_CHECKING:
    from treelens.model.runtime import Classification

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenCounting:
    """How model texts are fitted to their budget: by a bundle's tokenizer, or by the
    estimate (``count`` None, and ``note`` says why) when there is no usable bundle."""

    count: TokenCounter | None
    max_tokens: int
    note: str | None = None


def token_counting(bundle: Path | None = None, max_tokens: int | None = None) -> TokenCounting:
    """The bundle's tokenizer and budget (``max_tokens`` overrides it), so that a described
    text is exactly what the model sees; only the tokenizer is loaded, not onnxruntime.

    ``bundle`` None means the shipped one, and the estimate (with the default budget)
    when that is not usable; a ``bundle`` given that is not usable is a BundleError."""
    try:
        loaded = load_bundle(bundle if bundle is not None else DEFAULT_BUNDLE_DIR)
    except BundleError as error:
        if bundle is not None:
            raise
        return TokenCounting(None, max_tokens or DEFAULT_MAX_TOKENS, f"token counts are estimates ({error})")
    counter = line_counter(load_tokenizer(loaded.file(loaded.tokenizer)))
    return TokenCounting(counter, max_tokens or loaded.max_tokens)


def describe_counted(
    tree: ProjectTree, counting: TokenCounting, path_filter: PathFilter = DEFAULT_FILTER
) -> ModelText:
    """The model text of ``tree`` within the budget, counted as ``counting`` says."""
    return describe(
        tree, max_tokens=counting.max_tokens, count_tokens=counting.count, path_filter=path_filter
    )


def labels_of(classification: Classification) -> ModelLabels:
    """What the policy reads of a classification (none for a tree without project files)."""
    if classification.no_project_files:
        return ModelLabels(None, None, "no project files found: decided on languages and technologies alone")
    return ModelLabels(
        classification.probabilities,
        classification.thresholds,
        f"model {classification.model_version}: labels {', '.join(classification.labels) or 'none'}",
        classification.model_version,
    )


def model_labels(tree: ProjectTree, bundle: Path | None = None) -> ModelLabels:
    """The model's labels for a tree, or none and why (no runtime installed, no usable
    bundle): the query sets are then decided on languages and technologies alone."""
    try:
        from treelens.model.runtime import Classifier
    except ModuleNotFoundError as error:
        return ModelLabels(None, None, f"no model runtime ({error}): decided on languages and technologies")
    try:
        classifier = Classifier.load(bundle)
    except BundleError as error:
        log.info("no model: %s", error)
        return ModelLabels(None, None, f"no model ({error}); decided on languages and technologies alone")
    return labels_of(classifier.classify(tree))


def suggest_sets(
    analysis: Analysis,
    catalogs: Mapping[str, Catalog],
    labels: ModelLabels | None,
    name: str,
    root: Path | None = None,
    read_words: bool = True,
) -> dict[str, QuerySet]:
    """The query set of each engine's catalog for the analysed project, gated by the
    model's ``labels`` when there are any (None: languages and technologies alone);
    ``root`` is the project's folder and ``read_words`` its policy step (see ``suggest``)."""
    return {
        engine: suggest(
            analysis,
            engine,
            catalog,
            labels.probabilities if labels else None,
            labels.thresholds if labels else None,
            note=labels.note if labels else "",
            name=name,
            root=root,
            read_words=read_words,
        )
        for engine, catalog in catalogs.items()
    }
