"""The wide path: per label, a logistic regression over which BPE tokens the model text
holds (each segment apart: text, project name, facts), each token weighted by how much
more often it occurs in that label's projects than in the others (naive Bayes log-count
ratios: NB-LR), beside the Longformer ("wide and deep").

It reads exactly the token ids the Longformer reads, so it needs nothing at run time but
those ids: the same arithmetic (presence, per segment L2 norm, one matrix product) runs
inside the exported ONNX graph (``WideHead``). A bag of tokens is what a small data set
teaches quickly; the Longformer adds order and context on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from tokenizers import Tokenizer

from treelens.model.labels import LABELS
from treelens.model.tokenizer import SEP, SPECIAL_TOKENS
from treelens.training.metrics import inner_folds
from treelens.training.options import StageError

WIDE_FILE = "wide.npz"
T = TypeVar("T", np.ndarray, torch.Tensor)


SEGMENT_WEIGHTS = (1.0, 0.5, 0.3)
"""Weights of the text, project-name and facts segments' vectors (each L2-normed on its
own). Measured on the 5 cross-validation folds: the name and facts lines as tokens of the
one text vector gain 0.02 macro-F1, as segments of their own 0.05 (README)."""
C = 16.0
"""Inverse regularisation of each label's logistic regression (README, Levers measured)."""
SMOOTHING = 0.05
"""Added to every token's summed presence in a label's projects and in the others before
their ratio is taken, so a token seen on one side only gets a finite weight."""


def vocabulary_ids(tokenizer: Tokenizer) -> tuple[np.ndarray, int]:
    """Which token ids count (every id but the special tokens) and the [SEP] id."""
    counted = np.ones(tokenizer.get_vocab_size(), dtype=bool)
    counted[[i for i in map(tokenizer.token_to_id, SPECIAL_TOKENS) if i is not None]] = False
    return counted, tokenizer.token_to_id(SEP)


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
    """Token presence per segment, side by side, then per label NB-LR: a logistic regression
    over the presence vector scaled by the label's log-count ratios.

    Measured against the TF-IDF logistic regression it replaced on both cross-validation
    splits (README, Levers measured): the ratios say which tokens tell a label apart before
    the regression starts, which 552 projects are too few to learn from idf-weighted counts
    alone (the shipped mix over ten folds: frontend 0.85 -> 0.92, iac 0.80 -> 0.83).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        c: float = C,
        seed: int = 0,
        segment_weights: Sequence[float] = SEGMENT_WEIGHTS,
        smoothing: float = SMOOTHING,
    ) -> None:
        self.tokenizer, self.c, self.seed, self.smoothing = tokenizer, c, seed, smoothing
        self.counted, self.sep_id = vocabulary_ids(tokenizer)
        self.segment_weights = tuple(segment_weights)
        self.coef = np.zeros((0, len(self.segment_weights) * len(self.counted)), dtype=np.float32)
        self.intercept = np.zeros(0, dtype=np.float32)

    def features(self, ids: Sequence[Sequence[int]]) -> sp.csr_matrix:
        """Each segment's presence vector (1 for every counted token id it holds), L2-normed
        and weighted, side by side."""
        vocab_size = len(self.counted)
        rows, columns, values = [], [], []
        for row, x in enumerate(ids):
            for k, part in enumerate(split_segments(x, self.sep_id, len(self.segment_weights))):
                present = sorted({i for i in part if self.counted[i]})
                rows += [row] * len(present)
                columns += [k * vocab_size + i for i in present]
                values += [self.segment_weights[k] / np.sqrt(len(present))] * len(present)
        shape = (len(ids), len(self.segment_weights) * vocab_size)
        return sp.csr_matrix((np.array(values, dtype=np.float32), (rows, columns)), shape=shape)

    def log_count_ratios(self, x: sp.csr_matrix, positive: np.ndarray) -> np.ndarray:
        """Per feature: log of its share of the label's projects' summed features over its
        share of the other projects' (smoothed)."""
        p = self.smoothing + np.asarray(x[positive].sum(axis=0)).ravel()
        q = self.smoothing + np.asarray(x[~positive].sum(axis=0)).ravel()
        return np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)

    def fit(self, ids: Sequence[Sequence[int]], y: np.ndarray) -> WidePath:
        """One NB-LR per label; its coefficients times its ratios are the path's weights."""
        x = self.features(ids)
        self.coef = np.zeros((y.shape[1], x.shape[1]), dtype=np.float32)
        self.intercept = np.zeros(y.shape[1], dtype=np.float32)
        for label in range(y.shape[1]):
            positive = y[:, label] == 1
            if positive.all() or not positive.any():  # one class in training: its smoothed log-odds
                self.intercept[label] = np.log((positive.sum() + 0.5) / ((~positive).sum() + 0.5))
                continue
            ratios = self.log_count_ratios(x, positive)
            regression = LogisticRegression(
                C=self.c, class_weight="balanced", max_iter=5000, random_state=self.seed
            ).fit(x.multiply(ratios).tocsr(), positive)
            self.coef[label] = regression.coef_[0] * ratios
            self.intercept[label] = regression.intercept_[0]
        return self

    def logits(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        return np.asarray(self.features(ids) @ self.coef.T) + self.intercept

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
            inner = WidePath(self.tokenizer, self.c, self.seed, self.segment_weights, self.smoothing)
            logits[score] = inner.fit([ids[i] for i in fit_on], y[fit_on]).logits([ids[i] for i in score])
        return logits

    def weights(self) -> dict[str, np.ndarray]:
        """Which ids count, segment weights, coefficients (labels x segments * vocab, the
        ratios folded in) and intercepts, for WideHead."""
        return {
            "counted": self.counted.astype(np.float32),
            "segment_weights": np.array(self.segment_weights, dtype=np.float32),
            "sep_id": np.int64(self.sep_id),
            "coef": self.coef,
            "intercept": self.intercept,
        }


class WideHead(torch.nn.Module):
    """WidePath's logits from (input_ids, attention_mask), in torch (and so in ONNX).

    A token's segment is the number of [SEP] before it, so the ids alone say which
    segment's presence and norm it belongs to.
    """

    def __init__(
        self,
        counted: np.ndarray,
        segment_weights: np.ndarray,
        sep_id: int,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> None:
        super().__init__()
        self.segments, self.vocab_size = len(segment_weights), len(counted)
        self.sep_id = int(sep_id)
        self.register_buffer("counted", torch.tensor(np.tile(counted, self.segments), dtype=torch.float32))
        self.register_buffer("segment_weights", torch.tensor(segment_weights).view(1, -1, 1))
        self.register_buffer("coef", torch.tensor(coef))
        self.register_buffer("intercept", torch.tensor(intercept))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        index = segment_ids(input_ids, self.sep_id, self.segments) * self.vocab_size + input_ids
        counts = torch.zeros(input_ids.shape[0], self.counted.shape[0], device=input_ids.device)
        counts = counts.scatter_add(1, index, attention_mask.to(counts.dtype))
        x = ((counts > 0).to(counts.dtype) * self.counted).reshape(-1, self.segments, self.vocab_size)
        x = x / x.norm(dim=2, keepdim=True).clamp(min=1e-12) * self.segment_weights
        return x.reshape(-1, self.counted.shape[0]) @ self.coef.T + self.intercept


def out_of_fold_probabilities(
    tokenizer: Tokenizer, ids: Sequence[Sequence[int]], y: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """The wide path's probabilities for each record from a fit that never saw it.

    The teacher of ``--distill-weight``: a fit's own training records get near-certain,
    uninformative scores; k-fold predictions keep the wide path's honest doubts.
    """
    return sigmoid(WidePath(tokenizer, seed=seed).out_of_fold_logits(ids, y, folds))


def mix_logits(deep_logits: T, wide_logits: T, wide_weight: float | T) -> T:
    """The wide-and-deep logits: the weighted mean of both paths' logits (numpy or torch;
    ``wide_weight`` one number or one per label), the one formula finetune, evaluate, the
    export graph and the benchmarks share."""
    return (1.0 - wide_weight) * deep_logits + wide_weight * wide_logits


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def mix(deep_logits: np.ndarray, wide_logits: np.ndarray, wide_weight: float | np.ndarray) -> np.ndarray:
    """Probabilities of the wide-and-deep model."""
    return sigmoid(mix_logits(deep_logits, wide_logits, wide_weight))


def to_logits(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def label_weights(wide_weight: float, overrides: Mapping[str, float]) -> np.ndarray:
    """The wide path's weight per label, in LABELS order: ``wide_weight`` for every label but
    those ``overrides`` names (``{"cli": 0.5}``: where the Longformer alone reads a label
    better than the wide path, its logits count for more)."""
    return np.array([overrides.get(name, wide_weight) for name in LABELS], dtype=np.float32)


def save(folder: Path, wide: WidePath, wide_weights: np.ndarray) -> None:
    np.savez(folder / WIDE_FILE, **wide.weights(), wide_weight=np.asarray(wide_weights, dtype=np.float32))


def load(folder: Path) -> tuple[WideHead, np.ndarray] | None:
    """The wide path saved beside a finetuned model and its weight per label, or None (deep
    only). A single weight (saved before per-label weights) applies to every label."""
    path = folder / WIDE_FILE
    if not path.is_file():
        return None
    saved = np.load(path)
    if "counted" not in saved:
        raise StageError(
            f"{path} holds the TF-IDF wide path of an older Treelens; finetune again to get the "
            "NB-LR wide path this version exports"
        )
    head = WideHead(
        saved["counted"], saved["segment_weights"], int(saved["sep_id"]), saved["coef"], saved["intercept"]
    )
    return head, np.broadcast_to(saved["wide_weight"].astype(np.float32), (len(LABELS),)).copy()


def head_logits(head: WideHead, ids: Sequence[Sequence[int]]) -> np.ndarray:
    """WideHead's logits of unpadded token-id lists, one run each."""
    with torch.no_grad():
        rows = [head(torch.tensor([x]), torch.ones(1, len(x), dtype=torch.long))[0] for x in ids]
    return torch.stack(rows).numpy() if rows else np.zeros((0, head.coef.shape[0]), dtype=np.float32)


class WideAndDeep(torch.nn.Module):
    """Logits of a deep model (``deep(input_ids, attention_mask) -> logits``) mixed with the
    wide path's: ``(1 - w) * deep + w * wide``; the graph the bundle ships."""

    def __init__(self, deep: torch.nn.Module, wide: WideHead, wide_weights: np.ndarray) -> None:
        super().__init__()
        self.deep, self.wide = deep, wide
        self.register_buffer("wide_weight", torch.as_tensor(np.asarray(wide_weights, dtype=np.float32)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        deep = self.deep(input_ids, attention_mask)
        return mix_logits(deep, self.wide(input_ids, attention_mask), self.wide_weight)
