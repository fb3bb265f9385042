"""The summary target of ``finetune --summary-weight``: what a text's tokens say as a whole.

A linear probe on the pretrained Longformer's states scores no better than finetuning it
(README, "Levers measured"), while 64 numbers of the TF-IDF's truncated SVD carry as much
as the whole bag of tokens. So the states lack that summary, not room for it. This target
asks the classifier's pooled features to predict those 64 numbers (standardised) beside
the labels: a label-free signal, 64 values per text instead of 8, recomputed for every
augmented view. Fit on the training texts alone; nothing of it ships.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from tokenizers import Tokenizer

from treelens.training.wide import WidePath

DIMENSIONS = 64


class Summary:
    """Per segment TF-IDF of the token ids (the wide path's features) -> truncated SVD ->
    each dimension standardised over the training texts."""

    def __init__(self, tokenizer: Tokenizer, ids: Sequence[Sequence[int]], seed: int = 0) -> None:
        self.tfidf = WidePath(tokenizer, seed=seed)
        features = self.tfidf.features(ids, fit=True)
        dimensions = min(DIMENSIONS, features.shape[0] - 1, features.shape[1] - 1)
        self.svd = TruncatedSVD(dimensions, random_state=seed).fit(features)
        reduced = self.svd.transform(features)
        self.mean, self.scale = reduced.mean(axis=0), reduced.std(axis=0) + 1e-6

    @property
    def dimensions(self) -> int:
        return self.svd.n_components

    def targets(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """The standardised summary of each text, float32 (texts x dimensions)."""
        reduced = self.svd.transform(self.tfidf.features(ids, fit=False))
        return ((reduced - self.mean) / self.scale).astype(np.float32)
