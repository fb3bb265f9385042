"""The linear probe: a logistic regression on the frozen pretrained Longformer's segment means
(tree, project, facts: ``pooling.segment_means`` of the last layer; ``--pooling probe-cls``:
the last layer's [CLS] state beside them).

It is two things. ``crossval --probe`` scores a pretraining with it in minutes instead of an
hour of finetuning per fold. And ``finetune --pooling probe`` (or ``probe-cls``) ships it:
the regression, its standardisation folded in, becomes the classifier's one linear layer
(``fit_head``), so the exported graph computes it. Finetuning the whole model on 552 records lost part of what
pretraining had put in (README, "The model": over ten folds the finetuned Longformer scored
0.719 macro-F1, the probe on the same pretraining 0.751); the probe keeps all of it.
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

from treelens.training import modeling
from treelens.training.longformer_fast import fast_longformer
from treelens.training.metrics import inner_folds
from treelens.training.pooling import SegmentPooledClassifier, new_classifier
from treelens.training.stage_configs import PROBE

CONSTANT_LOGIT = 20.0


def frozen_features(
    model_dir: Path, ids: Sequence[list[int]], pad_id: int, ctx: modeling.RunContext, pooling: str = PROBE
) -> np.ndarray:
    """The features of every text (``head_features``) that a probe of ``pooling`` (``probe``
    or ``probe-cls``) reads from the pretrained Longformer in ``model_dir`` (its MLM head left
    out), one row per text."""
    classifier = new_classifier(model_dir, pooling, **modeling.classifier_labels())
    return head_features(classifier.to(ctx.device), ids, pad_id, ctx)


def head_features(
    classifier: SegmentPooledClassifier, ids: Sequence[list[int]], pad_id: int, ctx: modeling.RunContext
) -> np.ndarray:
    """What a probe classifier's head reads: the mean of each segment's last hidden states
    (and, for ``probe-cls``, the last [CLS] state), [CLS] attending globally as in the
    classifier and its export (eval mode, no gradients)."""

    def features(input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return classifier(input_ids=input_ids, attention_mask=mask).hidden_states[0]

    with fast_longformer():
        return modeling.batched_rows(classifier, features, list(ids), pad_id, 8, ctx)


def probe_model(features: int, seed: int) -> Pipeline:
    """Standardised features -> one-vs-rest logistic regression, balanced classes, C = 3 /
    feature count. Over the ten folds of seeds 0 and 1 the Longformer alone scored 0.727,
    0.743, 0.745, 0.751, 0.750, 0.743 and 0.739 macro-F1 at 0.3, 1, 2, 3, 5, 10 and 30 /
    count (README, "Levers measured")."""
    return make_pipeline(
        StandardScaler(),
        OneVsRestClassifier(
            LogisticRegression(C=3.0 / features, class_weight="balanced", max_iter=5000, random_state=seed)
        ),
    )


def fit(x: np.ndarray, y: np.ndarray, seed: int, folds: int = 5) -> tuple[Pipeline, np.ndarray]:
    """The probe fit on every row, and its inner ``folds``-fold out-of-fold probabilities over
    them (to tune thresholds on, as the wide path does)."""
    model = probe_model(x.shape[1], seed)
    inner = inner_folds(len(x), folds, seed)
    oof = cross_val_predict(model, x, y, cv=inner, method="predict_proba")
    model.fit(x, y)
    return model, oof.astype(np.float32)


def fold_probabilities(
    x: np.ndarray, y: np.ndarray, fit_on: list[int], test: list[int], seed: int
) -> dict[str, np.ndarray]:
    """The probe fit on ``fit_on``: its out-of-fold probabilities over them and its
    probabilities on ``test`` (a cross-validation fold)."""
    model, oof = fit(x[fit_on], y[fit_on], seed)
    return {"model/oof": oof, "model/test": model.predict_proba(x[test]).astype(np.float32)}


def linear_layer(model: Pipeline, features: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitted probe as one linear layer, logits = x @ weight.T + bias: the scaler folded
    into each label's regression. A label with one class only in the data gets a constant
    logit of +-CONSTANT_LOGIT (scikit-learn fits no regression for it)."""
    scaler, regressions = model[0], model[-1].estimators_
    weight = np.zeros((len(regressions), features))
    bias = np.zeros(len(regressions))
    for row, regression in enumerate(regressions):
        if hasattr(regression, "coef_"):
            weight[row] = regression.coef_[0] / scaler.scale_
            bias[row] = regression.intercept_[0] - weight[row] @ scaler.mean_
        else:
            present = regression.predict_proba(np.zeros((1, features)))[0, -1] > 0.5
            bias[row] = CONSTANT_LOGIT if present else -CONSTANT_LOGIT
    return weight, bias


def fit_head(
    classifier: SegmentPooledClassifier,
    ids: Sequence[list[int]],
    y: np.ndarray,
    pad_id: int,
    seed: int,
    ctx: modeling.RunContext,
) -> np.ndarray:
    """Fit the probe on the classifier's frozen states of ``ids`` and write it into the
    classifier's head; returns the probe's out-of-fold probabilities over ``ids``."""
    x = head_features(classifier, ids, pad_id, ctx)
    model, oof = fit(x, y, seed)
    weight, bias = linear_layer(model, x.shape[1])
    head = classifier.classifier.out_proj
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))
    return oof
