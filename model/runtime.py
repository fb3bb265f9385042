"""The classifier at run time: a verified bundle run with ONNX Runtime (no torch).

A project becomes model text with the bundle's own tokenizer and budget
(``model.input.describe``), the text becomes token ids with [CLS] ... [SEP], the ids
are padded to the smallest length bucket that holds them (Longformer's export is
only trusted at the lengths it was checked at) and run by that bucket's graph;
sigmoid probabilities and per-label thresholds give the labels. Results are cached
by the hash of the model text, so an unchanged project is not run twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from treelens.model.bundle import (
    DEFAULT_BUNDLE_DIR,
    GRAPH_INPUTS,
    GRAPH_OUTPUTS,
    RETRAIN,
    Bundle,
    BundleError,
    load_bundle,
)
from treelens.model.devices import DEFAULT_DEVICE, DEVICES
from treelens.model.errors import UsageError
from treelens.model.filters import DEFAULT_FILTER, PathFilter
from treelens.model.input import ModelText, describe, segments
from treelens.model.labels import check_thresholds, label_state
from treelens.model.lru import LRUCache
from treelens.model.tokenizer import (
    CLS,
    PAD,
    PROBE_LINES,
    SEP,
    TokenizerError,
    cut_segments,
    encode,
    line_counter,
    load_tokenizer,
)
from treelens.model.tree import ProjectTree

log = logging.getLogger(__name__)

CACHE_SIZE = 512
DEFAULT_THREADS = 4
MAX_THREADS = 64
"""More intra-op threads than this buy nothing for one short text, and onnxruntime hangs or
crashes creating a pool of 100,000."""
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"

Progress = Callable[[int], None]
"""Called with the number of texts just finished (for progress bars)."""


@dataclass(frozen=True)
class Classification:
    """The model's answer for one project, plus the deterministic facts beside it."""

    labels: list[str]
    uncertain: list[str]  # between model.labels.UNCERTAIN_RATIO x threshold and the threshold
    probabilities: dict[str, float]  # empty when there was nothing to classify
    thresholds: dict[str, float]
    token_count: int
    truncated: bool
    model_version: str
    languages: list[str]
    technologies: list[str]
    model_text: ModelText = field(repr=False, compare=False)

    @property
    def no_project_files(self) -> bool:
        """Nothing to go on: no file the model can read, so no label and no probability."""
        return self.model_text.empty

    def to_json(self) -> dict[str, Any]:
        """The classify result of DESIGN.md (the daemon adds folder and elapsedMs)."""
        return {
            "labels": list(self.labels),
            "uncertain": list(self.uncertain),
            "noProjectFiles": self.no_project_files,
            "probabilities": dict(self.probabilities),
            "thresholds": dict(self.thresholds),
            "tokenCount": self.token_count,
            "truncated": self.truncated,
            "modelVersion": self.model_version,
            "languages": list(self.languages),
            "technologies": list(self.technologies),
        }


def choose_providers(device: str) -> list[str]:
    """CUDA first when asked for (or auto) and onnxruntime offers it; CPU always last."""
    if device not in DEVICES:
        raise UsageError(f"device must be one of {list(DEVICES)}, got {device!r}")
    available = ort.get_available_providers()
    if device == "cuda" and CUDA_PROVIDER not in available:
        raise UsageError(
            f"device 'cuda' was asked for but onnxruntime offers only {available}; "
            "install the [gpu] extra (onnxruntime-gpu) or use device 'auto' or 'cpu'"
        )
    if device in ("auto", "cuda") and CUDA_PROVIDER in available:
        return [CUDA_PROVIDER, CPU_PROVIDER]
    return [CPU_PROVIDER]


def default_threads() -> int:
    """Intra-op threads: the cores this process may use, at most DEFAULT_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, DEFAULT_THREADS))


def check_threads(threads: int) -> int:
    """``threads`` when it is a thread count onnxruntime can be given; ValueError otherwise.
    Every session is made by a Classifier, so the CLI's --threads and the daemon's default
    both pass here."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"model threads must be a whole number from 1 to {MAX_THREADS}, got {threads!r:.40}")
    return threads


class Classifier:
    """A loaded bundle: tokenizer, thresholds and one ONNX session per graph (each probed at load)."""

    def __init__(self, bundle: Bundle, providers: list[str], threads: int) -> None:
        self.bundle = bundle
        self.version = bundle.version
        self.labels = bundle.labels
        self.thresholds = dict(bundle.thresholds)
        self.max_tokens = bundle.max_tokens
        self.providers = providers
        self.threads = check_threads(threads)
        try:
            self.tokenizer = load_tokenizer(bundle.file(bundle.tokenizer))
        except TokenizerError as error:
            raise BundleError(f"model bundle {bundle.path}: {bundle.tokenizer}: {error}; {RETRAIN}") from None
        self._counter = line_counter(self.tokenizer)
        self._pad_id = self.tokenizer.token_to_id(PAD)
        self._cls_id = self.tokenizer.token_to_id(CLS)
        self._sep_id = self.tokenizer.token_to_id(SEP)
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()
        self._cache: LRUCache[str, np.ndarray] = LRUCache(CACHE_SIZE)

    @classmethod
    def load(
        cls, path: Path | None = None, device: str = DEFAULT_DEVICE, threads: int | None = None
    ) -> Classifier:
        """Verify, load and probe a bundle (None: the shipped default).

        Raises BundleError for a bundle that cannot serve, UsageError for a bad device or
        thread count."""
        bundle = load_bundle(path if path is not None else DEFAULT_BUNDLE_DIR)
        classifier = cls(bundle, choose_providers(device), default_threads() if threads is None else threads)
        classifier._probe()  # fail now, not on a request
        log.info(
            "model %s %s loaded from %s (%s)",
            bundle.name,
            bundle.version,
            bundle.path,
            classifier.providers[0],
        )
        return classifier

    # sessions -----------------------------------------------------------------------------

    def _session(self, graph: str) -> ort.InferenceSession:
        with self._lock:
            session = self._sessions.get(graph)
            if session is None:
                session = self._sessions[graph] = self._open(graph)
            return session

    def _open(self, graph: str) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        path = self.bundle.file(graph)
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=self.providers)
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleError(
                f"model bundle {self.bundle.path}: {graph}: onnxruntime cannot load it ({error}); {RETRAIN}"
            ) from None
        names = tuple(i.name for i in session.get_inputs())
        if names != GRAPH_INPUTS:
            raise BundleError(
                f"model bundle {self.bundle.path}: {graph}: graph inputs {list(names)}, "
                f"expected {list(GRAPH_INPUTS)}; {RETRAIN}"
            )
        outputs = tuple(o.name for o in session.get_outputs())
        if outputs != GRAPH_OUTPUTS:
            raise BundleError(
                f"model bundle {self.bundle.path}: {graph}: graph outputs {list(outputs)}, "
                f"expected {list(GRAPH_OUTPUTS)}; {RETRAIN}"
            )
        return session

    def _probe(self) -> None:
        """Run every graph once on a full text of the longest bucket it serves.

        What the manifest promises is checked against what the graph does: a graph whose
        position or vocabulary table is shorter than max_tokens or the tokenizer needs, whose
        output is not one logit per label, or that outputs NaN or infinity is refused here,
        as a broken bundle, rather than crashing or answering NaN on a request.
        """
        filler = self.tokenizer.encode("".join(PROBE_LINES), add_special_tokens=False).ids
        tokens = np.array([self.tokenizer.get_vocab_size() - 1, *filler], dtype=np.int64)  # highest id too
        longest = {bucket.graph: bucket.length for bucket in self.bundle.buckets}  # lengths increase
        for graph, length in longest.items():
            ids = [self._cls_id, *np.resize(tokens, length - 2).tolist(), self._sep_id]
            session = self._session(graph)
            try:
                logits = self._logits(session, length, ids)
            except Exception as error:  # onnxruntime's own types, e.g. an index out of a table
                raise BundleError(
                    f"model bundle {self.bundle.path}: {graph}: cannot take {length} tokens although the "
                    f"manifest says it serves them ({error}); {RETRAIN}"
                ) from None
            self._sigmoid(graph, logits)

    # text -> probabilities ------------------------------------------------------------------

    def describe(self, tree: ProjectTree, path_filter: PathFilter = DEFAULT_FILTER) -> ModelText:
        """The model text of a project with this bundle's tokenizer and budget."""
        return describe(tree, max_tokens=self.max_tokens, count_tokens=self._counter, path_filter=path_filter)

    def encode(self, text: str) -> list[int]:
        """The ids of a model text (``model.tokenizer.encode``), cut to max_tokens if a foreign
        text is too long."""
        return encode(self.tokenizer, text, self.max_tokens)

    def probabilities(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Sigmoid probabilities (one row per text, LABELS order); cached by text hash."""
        rows = []
        for text in texts:
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()
            row = self._cached(key)
            if row is None:
                row = self.run_ids(self.encode(text))
                self._remember(key, row)
            rows.append(row)  # kept here: a request may hold more texts than the cache
            if progress:
                progress(1)
        return np.stack(rows) if rows else np.zeros((0, len(self.labels)))

    def run_ids(self, ids: list[int], pad_to: int = 0) -> np.ndarray:
        """Probabilities (LABELS order) of one token-id list, uncached: padded to the smallest
        bucket that holds ``max(len(ids), pad_to)`` tokens and run by that bucket's graph.

        One text per run, never a batch: int8 graphs quantize activations with a scale
        computed over the whole input tensor, so a batch would make a project's
        probabilities depend on the projects run beside it. ``pad_to`` lets the export's
        parity check run a short text at every bucket, as the daemon would pad a longer one.
        """
        bucket = self.bundle.bucket_for(max(len(ids), pad_to))
        logits = self._logits(self._session(bucket.graph), bucket.length, ids)
        return self._sigmoid(bucket.graph, logits)

    def _logits(self, session: ort.InferenceSession, length: int, ids: list[int]) -> np.ndarray:
        """The graph's output for ``ids`` padded to ``length``."""
        input_ids = np.full((1, length), self._pad_id, dtype=np.int64)
        mask = np.zeros((1, length), dtype=np.int64)
        input_ids[0, : len(ids)] = ids
        mask[0, : len(ids)] = 1
        return session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]

    def _sigmoid(self, graph: str, logits: np.ndarray) -> np.ndarray:
        """Probabilities of one run's logits: BundleError unless they are one finite number per
        label. Finite logits give probabilities in [0, 1]; NaN or infinity means a broken model,
        never an answer (json would write it as NaN, which no JSON parser reads)."""
        where = f"model bundle {self.bundle.path}: {graph}"
        if logits.shape != (1, len(self.labels)):
            width = logits.shape[-1] if logits.ndim else 0
            raise BundleError(
                f"{where}: outputs {width} logits of shape {logits.shape}, the manifest names "
                f"{len(self.labels)} labels; {RETRAIN}"
            )
        row = logits[0].astype(np.float64)
        broken = [name for name, value in zip(self.labels, row, strict=True) if not np.isfinite(value)]
        if broken:
            raise BundleError(
                f"{where}: the model output {row[~np.isfinite(row)][0]} (not a finite number) for "
                f"{', '.join(broken)}: the model is broken; {RETRAIN}"
            )
        with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x << 0: probability 0.0
            return 1.0 / (1.0 + np.exp(-row))

    def _cached(self, key: str) -> np.ndarray | None:
        with self._lock:
            return self._cache.get(key)

    def _remember(self, key: str, row: np.ndarray) -> None:
        with self._lock:
            self._cache.put(key, row)

    # results ------------------------------------------------------------------------------

    def effective_thresholds(self, overrides: dict[str, float] | None) -> dict[str, float]:
        """The bundle's thresholds with per-label overrides (checked: known label, 0 < p < 1)."""
        return {**self.thresholds, **check_thresholds(overrides or {})}

    def _result(
        self, text: ModelText, row: np.ndarray | None, thresholds: dict[str, float]
    ) -> Classification:
        """``row`` None: nothing was classified (an empty model text)."""
        probabilities = (
            {}
            if row is None
            else {name: round(float(p), 6) for name, p in zip(self.labels, row, strict=True)}
        )
        states = {name: label_state(p, thresholds[name]) for name, p in probabilities.items()}
        return Classification(
            labels=[name for name, state in states.items() if state == "present"],
            uncertain=[name for name, state in states.items() if state == "uncertain"],
            probabilities=probabilities,
            thresholds=thresholds,
            token_count=text.token_count,
            truncated=text.truncated,
            model_version=self.version,
            languages=list(text.analysis.languages),
            technologies=list(text.analysis.technologies),
            model_text=text,
        )

    def classify_text(
        self, model_text: ModelText, thresholds: dict[str, float] | None = None
    ) -> Classification:
        return self.classify_texts([model_text], thresholds)[0]

    def classify_texts(
        self,
        model_texts: Sequence[ModelText],
        thresholds: dict[str, float] | None = None,
        progress: Progress | None = None,
    ) -> list[Classification]:
        """Many projects (e.g. a data set), one run each; ``progress`` hears of every one."""
        merged = self.effective_thresholds(thresholds)
        readable = [t for t in model_texts if not t.empty]
        rows = iter(self.probabilities([t.text for t in readable], progress))
        if progress and len(readable) < len(model_texts):
            progress(len(model_texts) - len(readable))
        return [self._result(text, None if text.empty else next(rows), merged) for text in model_texts]

    def classify(
        self,
        tree: ProjectTree,
        *,
        path_filter: PathFilter = DEFAULT_FILTER,
        thresholds: dict[str, float] | None = None,
    ) -> Classification:
        return self.classify_text(self.describe(tree, path_filter), thresholds)

    def tokenize(self, text: str) -> list[tuple[int, str]]:
        """(id, text) of every token the model reads, [CLS] and each [SEP] included, for the
        tokenization view: the same ids as ``encode``.

        A character split over several byte-level tokens is shown with the first of them
        (the others show ""), so the token texts put together give the text back.
        """
        pieces = segments(text)
        encodings = self.tokenizer.encode_batch(list(pieces), add_special_tokens=False)
        kept = cut_segments([encoding.ids for encoding in encodings], self.max_tokens)
        tokens = [(self._cls_id, CLS)]
        for piece, encoding, ids in zip(pieces, encodings, kept, strict=True):
            shown = 0
            for token_id, (start, end) in zip(ids, encoding.offsets, strict=False):  # ids: a prefix
                tokens.append((token_id, piece[max(start, shown) : end]))
                shown = max(shown, end)
            tokens.append((self._sep_id, SEP))
        return tokens
