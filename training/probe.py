"""`treelens-train crossval --probe`: what pretraining put into the Longformer's states, in
minutes instead of an hour.

A logistic regression on the frozen pretrained Longformer's segment means (tree, project,
facts: ``pooling.segment_means`` of the last layer) has scored what finetuning the whole
model on every fold scores (README, "Levers measured": 0.630 against 0.631 on one
pretraining, 0.736 ± 0.023 against 0.715 ± 0.016 on the next). Finetuning adds little to
what pretraining put in, so a pretraining lever can be judged by this probe, on the same
folds as the baselines, without finetuning five times.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import LongformerModel

from treelens.training import modeling
from treelens.training.longformer_fast import fast_longformer
from treelens.training.metrics import inner_folds
from treelens.training.pooling import segment_means


def frozen_features(
    model_dir: Path, ids: Sequence[list[int]], pad_id: int, ctx: modeling.RunContext
) -> np.ndarray:
    """The mean of each segment's last hidden states of the pretrained Longformer in
    ``model_dir`` (its MLM head left out), one row per text; [CLS] attends globally, as in
    the classifier."""
    model = LongformerModel.from_pretrained(model_dir, add_pooling_layer=False).to(ctx.device)
    sep_id = model.config.sep_token_id

    def means(input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        global_mask = torch.zeros_like(input_ids)
        global_mask[:, 0] = 1
        hidden = model(input_ids=input_ids, attention_mask=mask, global_attention_mask=global_mask)
        return segment_means(hidden.last_hidden_state, input_ids, mask, sep_id)

    with fast_longformer():
        return modeling.batched_rows(model, means, list(ids), pad_id, 8, ctx)


def probe_model(features: int, seed: int) -> Pipeline:
    """Standardised features -> one-vs-rest logistic regression, balanced classes, C = 1 /
    feature count (3 / count and 0.3 / count scored 0.741 and 0.722 macro-F1 on the five
    folds, against 0.736: inside one standard deviation)."""
    return make_pipeline(
        StandardScaler(),
        OneVsRestClassifier(
            LogisticRegression(C=1.0 / features, class_weight="balanced", max_iter=5000, random_state=seed)
        ),
    )


def fold_probabilities(
    x: np.ndarray, y: np.ndarray, fit_on: list[int], test: list[int], seed: int, folds: int = 5
) -> dict[str, np.ndarray]:
    """The probe fit on ``fit_on``: out-of-fold probabilities over them (inner ``folds``-fold,
    to tune thresholds on, as the wide path does) and its probabilities on ``test``."""
    model = probe_model(x.shape[1], seed)
    inner = inner_folds(len(fit_on), folds, seed)
    oof = cross_val_predict(model, x[fit_on], y[fit_on], cv=inner, method="predict_proba")
    model.fit(x[fit_on], y[fit_on])
    test_probabilities = model.predict_proba(x[test])
    return {"model/oof": oof.astype(np.float32), "model/test": test_probabilities.astype(np.float32)}
