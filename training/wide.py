"""The wide path: one logistic regression per label over the BPE token counts of the model
text (TF-IDF weighted, each segment apart: text, project name, facts), beside the
Longformer ("wide and deep").

It reads exactly the token ids the Longformer reads, so it needs nothing at run time but
those ids: the same arithmetic (sublinear counts, idf, L2 norm, one matrix product) runs
inside the exported ONNX graph (``WideHead``). A bag of tokens is what a small data set
teaches quickly; the Longformer adds order and context on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from tokenizers import Tokenizer

from treelens.model.tokenizer import SEP, SPECIAL_TOKENS
from treelens.training.metrics import inner_folds

WIDE_FILE = "wide.npz"
T = TypeVar("T", np.ndarray, torch.Tensor)


SEGMENT_WEIGHTS = (1.0, 0.5, 0.3)
"""Weights of the text, project-name and facts segments' TF-IDF vectors (each L2-normed on
its own). Measured on the 5 cross-validation folds: the name and facts lines as tokens of
the one text vector gain 0.02 macro-F1, as segments of their own 0.05 (README)."""


def split_segments(ids: Sequence[int], sep_id: int, count: int) -> list[list[int]]:
    """Token ids by segment: a segment ends at a [SEP]; ids after the last one counted join it."""
    parts: list[list[int]] = [[] for _ in range(count)]
    segment = 0
    for token in ids:
        parts[segment].append(token)
        if token == sep_id:
            segment = min(segment + 1, count - 1)
    return parts


def segment_ids(input_ids: torch.Tensor, sep_id: int, count: int) -> torch.Tensor:
    """``split_segments`` for a batch of id tensors: each token's segment is the number of
    [SEP] before it (a [SEP] ends its own segment), ids past the last counted one in it."""
    sep = (input_ids == sep_id).long()
    return (torch.cumsum(sep, dim=1) - sep).clamp(max=count - 1)


class WidePath:
    """Per segment TF-IDF over token ids (vocabulary = every id), side by side, then one-vs-rest
    logistic regression."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        c: float = 4.0,
        seed: int = 0,
        segment_weights: Sequence[float] = SEGMENT_WEIGHTS,
    ) -> None:
        self.tokenizer, self.c, self.seed = tokenizer, c, seed
        vocab_size = tokenizer.get_vocab_size()
        self.special = {i for i in map(tokenizer.token_to_id, SPECIAL_TOKENS) if i is not None}
        self.sep_id = tokenizer.token_to_id(SEP)
        self.segment_weights = tuple(segment_weights)
        self.vectorizers = [
            TfidfVectorizer(
                analyzer=self._ids,
                vocabulary=list(range(vocab_size)),
                lowercase=False,
                sublinear_tf=True,
                dtype=np.float32,
            )
            for _ in self.segment_weights
        ]
        self.model = OneVsRestClassifier(
            LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
        )

    def _ids(self, ids: Sequence[int]) -> list[int]:
        return [i for i in ids if i not in self.special]

    def features(self, ids: Sequence[Sequence[int]], fit: bool) -> sp.csr_matrix:
        """The segments' TF-IDF vectors side by side, each L2-normed and weighted; ``fit``
        learns the idf from ``ids`` first."""
        parts = [split_segments(x, self.sep_id, len(self.vectorizers)) for x in ids]
        blocks = []
        for k, (vectorizer, weight) in enumerate(zip(self.vectorizers, self.segment_weights, strict=True)):
            column = [p[k] for p in parts]
            block = vectorizer.fit_transform(column) if fit else vectorizer.transform(column)
            blocks.append(block * weight)
        return sp.hstack(blocks).tocsr()

    def fit(self, ids: Sequence[Sequence[int]], y: np.ndarray) -> WidePath:
        self.model.fit(self.features(ids, fit=True), y)
        return self

    def logits(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        return self.model.decision_function(self.features(ids, fit=False))

    def fit_out_of_fold(self, ids: Sequence[Sequence[int]], y: np.ndarray, folds: int = 5) -> np.ndarray:
        """Logits for every record from a fit that never saw it (``folds`` inner fits), then
        a fit on all of them: the path finetune ships.

        Thresholds tuned on these out-of-fold logits rest on every training record, not on
        the validation share alone (about 80 records, 9 desktop apps): +0.024 macro-F1 for
        the wide path on the 5 cross-validation folds, from -0.001 to +0.061 per fold (README).
        """
        logits = self.out_of_fold_logits(ids, y, folds)
        self.fit(ids, y)
        return logits

    def out_of_fold_logits(self, ids: Sequence[Sequence[int]], y: np.ndarray, folds: int = 5) -> np.ndarray:
        """Logits for every record from one of ``folds`` inner fits that never saw it (this
        path itself stays unfitted)."""
        logits = np.zeros(y.shape, dtype=np.float32)
        for fit_on, score in inner_folds(len(ids), folds, self.seed):
            inner = WidePath(self.tokenizer, self.c, self.seed, self.segment_weights)
            logits[score] = inner.fit([ids[i] for i in fit_on], y[fit_on]).logits([ids[i] for i in score])
        return logits

    def weights(self) -> dict[str, np.ndarray]:
        """idf per segment (special ids zeroed), segment weights, coefficients (labels x
        segments * vocab) and intercepts, for WideHead."""
        idf = np.stack([v.idf_.astype(np.float32) for v in self.vectorizers])
        idf[:, list(self.special)] = 0.0
        coef = np.zeros((len(self.model.estimators_), idf.size), dtype=np.float32)
        intercept = np.zeros(len(self.model.estimators_), dtype=np.float32)
        for row, estimator in enumerate(self.model.estimators_):
            if hasattr(estimator, "coef_"):
                coef[row], intercept[row] = estimator.coef_[0], estimator.intercept_[0]
            else:  # a label with one class in training: scikit-learn answers that class as its score
                intercept[row] = float(np.ravel(estimator.y_)[0])
        return {
            "idf": idf,
            "segment_weights": np.array(self.segment_weights, dtype=np.float32),
            "sep_id": np.int64(self.sep_id),
            "coef": coef,
            "intercept": intercept,
        }


class WideHead(torch.nn.Module):
    """WidePath's logits from (input_ids, attention_mask), in torch (and so in ONNX).

    A token's segment is the number of [SEP] before it, so the ids alone say which
    segment's counts, idf and norm it belongs to.
    """

    def __init__(
        self,
        idf: np.ndarray,
        segment_weights: np.ndarray,
        sep_id: int,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> None:
        super().__init__()
        self.segments, self.vocab_size = idf.shape
        self.sep_id = int(sep_id)
        self.register_buffer("idf", torch.tensor(idf.reshape(-1)))
        self.register_buffer("segment_weights", torch.tensor(segment_weights).view(1, -1, 1))
        self.register_buffer("coef", torch.tensor(coef))
        self.register_buffer("intercept", torch.tensor(intercept))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        index = segment_ids(input_ids, self.sep_id, self.segments) * self.vocab_size + input_ids
        counts = torch.zeros(input_ids.shape[0], self.idf.shape[0], device=input_ids.device)
        counts = counts.scatter_add(1, index, attention_mask.to(counts.dtype))
        tf = torch.where(counts > 0, 1.0 + torch.log(counts.clamp(min=1.0)), torch.zeros_like(counts))
        x = (tf * self.idf).reshape(-1, self.segments, self.vocab_size)
        x = x / x.norm(dim=2, keepdim=True).clamp(min=1e-12) * self.segment_weights
        return x.reshape(-1, self.idf.shape[0]) @ self.coef.T + self.intercept


def out_of_fold_probabilities(
    tokenizer: Tokenizer, ids: Sequence[Sequence[int]], y: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """The wide path's probabilities for each record from a fit that never saw it.

    The teacher of ``--distill-weight``: a fit's own training records get near-certain,
    uninformative scores; k-fold predictions keep the wide path's honest doubts.
    """
    return sigmoid(WidePath(tokenizer, seed=seed).out_of_fold_logits(ids, y, folds))


def mix_logits(deep_logits: T, wide_logits: T, wide_weight: float) -> T:
    """The wide-and-deep logits: the weighted mean of both paths' logits (numpy or torch),
    the one formula finetune, evaluate, the export graph and the benchmarks share."""
    return (1.0 - wide_weight) * deep_logits + wide_weight * wide_logits


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def mix(deep_logits: np.ndarray, wide_logits: np.ndarray, wide_weight: float) -> np.ndarray:
    """Probabilities of the wide-and-deep model."""
    return sigmoid(mix_logits(deep_logits, wide_logits, wide_weight))


def to_logits(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def save(folder: Path, wide: WidePath, wide_weight: float) -> None:
    np.savez(folder / WIDE_FILE, **wide.weights(), wide_weight=np.float32(wide_weight))


def load(folder: Path) -> tuple[WideHead, float] | None:
    """The wide path saved beside a finetuned model and its weight, or None (deep only)."""
    path = folder / WIDE_FILE
    if not path.is_file():
        return None
    saved = np.load(path)
    head = WideHead(
        saved["idf"], saved["segment_weights"], int(saved["sep_id"]), saved["coef"], saved["intercept"]
    )
    return head, float(saved["wide_weight"])


def head_logits(head: WideHead, ids: Sequence[Sequence[int]]) -> np.ndarray:
    """WideHead's logits of unpadded token-id lists, one run each."""
    with torch.no_grad():
        rows = [head(torch.tensor([x]), torch.ones(1, len(x), dtype=torch.long))[0] for x in ids]
    return torch.stack(rows).numpy() if rows else np.zeros((0, head.coef.shape[0]), dtype=np.float32)


class WideAndDeep(torch.nn.Module):
    """Logits of a deep model (``deep(input_ids, attention_mask) -> logits``) mixed with the
    wide path's: ``(1 - w) * deep + w * wide``; the graph the bundle ships."""

    def __init__(self, deep: torch.nn.Module, wide: WideHead, wide_weight: float) -> None:
        super().__init__()
        self.deep, self.wide, self.wide_weight = deep, wide, wide_weight

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        deep = self.deep(input_ids, attention_mask)
        return mix_logits(deep, self.wide(input_ids, attention_mask), self.wide_weight)
