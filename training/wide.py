"""The wide path: one logistic regression per label over the BPE token counts of the model
text (TF-IDF weighted), beside the Longformer ("wide and deep").

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
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier
from tokenizers import Tokenizer

from treelens.model.tokenizer import SPECIAL_TOKENS

WIDE_FILE = "wide.npz"
T = TypeVar("T", np.ndarray, torch.Tensor)


class WidePath:
    """TF-IDF over token ids (vocabulary = every id) + one-vs-rest logistic regression."""

    def __init__(self, tokenizer: Tokenizer, c: float = 4.0, seed: int = 0) -> None:
        vocab_size = tokenizer.get_vocab_size()
        self.special = {i for i in map(tokenizer.token_to_id, SPECIAL_TOKENS) if i is not None}
        self.vectorizer = TfidfVectorizer(
            analyzer=self._ids,
            vocabulary=list(range(vocab_size)),
            lowercase=False,
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.model = OneVsRestClassifier(
            LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
        )

    def _ids(self, ids: Sequence[int]) -> list[int]:
        return [i for i in ids if i not in self.special]

    def fit(self, ids: Sequence[Sequence[int]], y: np.ndarray) -> WidePath:
        self.model.fit(self.vectorizer.fit_transform(ids), y)
        return self

    def logits(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        return self.model.decision_function(self.vectorizer.transform(ids))

    def weights(self) -> dict[str, np.ndarray]:
        """idf (special ids zeroed), coefficients (labels x vocab) and intercepts, for WideHead."""
        idf = self.vectorizer.idf_.astype(np.float32).copy()
        idf[list(self.special)] = 0.0
        coef = np.zeros((len(self.model.estimators_), len(idf)), dtype=np.float32)
        intercept = np.zeros(len(self.model.estimators_), dtype=np.float32)
        for row, estimator in enumerate(self.model.estimators_):
            if hasattr(estimator, "coef_"):
                coef[row], intercept[row] = estimator.coef_[0], estimator.intercept_[0]
            else:  # a label with one class in training: scikit-learn answers that class as its score
                intercept[row] = float(np.ravel(estimator.y_)[0])
        return {"idf": idf, "coef": coef, "intercept": intercept}


class WideHead(torch.nn.Module):
    """WidePath's logits from (input_ids, attention_mask), in torch (and so in ONNX)."""

    def __init__(self, idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("idf", torch.tensor(idf))
        self.register_buffer("coef", torch.tensor(coef))
        self.register_buffer("intercept", torch.tensor(intercept))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(input_ids.shape[0], self.idf.shape[0], device=input_ids.device)
        counts = counts.scatter_add(1, input_ids, attention_mask.to(counts.dtype))
        tf = torch.where(counts > 0, 1.0 + torch.log(counts.clamp(min=1.0)), torch.zeros_like(counts))
        x = tf * self.idf
        x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return x @ self.coef.T + self.intercept


def out_of_fold_probabilities(
    tokenizer: Tokenizer, ids: Sequence[Sequence[int]], y: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """The wide path's probabilities for each record from a fit that never saw it.

    The teacher of ``--distill-weight``: a fit's own training records get near-certain,
    uninformative scores; k-fold predictions keep the wide path's honest doubts.
    """
    probabilities = np.zeros(y.shape, dtype=np.float32)
    splitter = KFold(n_splits=min(folds, len(ids)), shuffle=True, random_state=seed)
    for fit_on, score in splitter.split(np.arange(len(ids))):
        path = WidePath(tokenizer, seed=seed).fit([ids[i] for i in fit_on], y[fit_on])
        probabilities[score] = sigmoid(path.logits([ids[i] for i in score]))
    return probabilities


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
    head = WideHead(saved["idf"], saved["coef"], saved["intercept"])
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
