"""The summary target of ``finetune --summary-weight``: what a text's tokens say as a whole.

A linear probe on the pretrained Longformer's states scores no better than finetuning it
(README, "Levers measured"), while 64 numbers of the TF-IDF's truncated SVD carry as much
as the whole bag of tokens. So the states lack that summary, not room for it. This target
asks the classifier's pooled features to predict those 64 numbers (standardised) beside
the labels: a label-free signal, 64 values per text instead of 8 (`pretrain
--summary-dimensions` sets another number), recomputed for every augmented view. Fit on
the training texts alone; nothing of it ships.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from tokenizers import Tokenizer

from treelens.training.stage_configs import SUMMARY_DIMENSIONS
from treelens.training.wide import SEGMENT_WEIGHTS, split_segments, vocabulary_ids


class SegmentTfidf:
    """Per segment TF-IDF over token ids (vocabulary = every id; sublinear counts, each
    segment L2-normed and weighted as the wide path weighs it), side by side."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.counted, self.sep_id = vocabulary_ids(tokenizer)
        self.vectorizers = [
            TfidfVectorizer(
                analyzer=self._ids,
                vocabulary=list(range(tokenizer.get_vocab_size())),
                lowercase=False,
                sublinear_tf=True,
                dtype=np.float32,
            )
            for _ in SEGMENT_WEIGHTS
        ]

    def _ids(self, ids: Sequence[int]) -> list[int]:
        return [i for i in ids if self.counted[i]]

    def features(self, ids: Sequence[Sequence[int]], fit: bool) -> sp.csr_matrix:
        """The segments' vectors; ``fit`` learns the idf from ``ids`` first."""
        parts = [split_segments(x, self.sep_id, len(self.vectorizers)) for x in ids]
        blocks = []
        for k, (vectorizer, weight) in enumerate(zip(self.vectorizers, SEGMENT_WEIGHTS, strict=True)):
            column = [p[k] for p in parts]
            block = vectorizer.fit_transform(column) if fit else vectorizer.transform(column)
            blocks.append(block * weight)
        return sp.hstack(blocks).tocsr()


class Summary:
    """Per segment TF-IDF of the token ids -> truncated SVD -> each dimension standardised
    over the training texts."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        ids: Sequence[Sequence[int]],
        seed: int = 0,
        dimensions: int = SUMMARY_DIMENSIONS,
    ) -> None:
        self.tfidf = SegmentTfidf(tokenizer)
        features = self.tfidf.features(ids, fit=True)
        dimensions = min(dimensions, features.shape[0] - 1, features.shape[1] - 1)
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
