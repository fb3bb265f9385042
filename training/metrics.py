"""Multi-label metrics and per-label threshold tuning (scikit-learn does the counting)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score, multilabel_confusion_matrix, precision_recall_fscore_support

from model.labels import LABELS

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str] = LABELS) -> dict:
    """Per-label precision, recall, F1, support and accuracy; micro and macro F1; exact match;
    a confusion matrix per label ([[tn, fp], [fn, tp]]).

    "accuracy" per label is the seed report's "accuracy across all classes": the share of
    projects whose value for that label is right; ``label_accuracy`` averages it.
    """
    y_true = np.asarray(y_true, dtype=int).reshape(-1, len(labels))
    y_pred = np.asarray(y_pred, dtype=int).reshape(-1, len(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, zero_division=0
    )
    confusion = multilabel_confusion_matrix(y_true, y_pred)
    per_label = {
        name: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
            "accuracy": round(float((y_true[:, i] == y_pred[:, i]).mean()) if len(y_true) else 0.0, 4),
            "confusion": confusion[i].tolist(),
        }
        for i, name in enumerate(labels)
    }
    return {
        "samples": len(y_true),
        "labels": per_label,
        "micro_f1": round(float(f1_score(y_true, y_pred, average="micro", zero_division=0)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, average="macro", zero_division=0)), 4),
        "exact_match": round(float((y_true == y_pred).all(axis=1).mean()) if len(y_true) else 0.0, 4),
        "label_accuracy": round(float((y_true == y_pred).mean()) if len(y_true) else 0.0, 4),
    }


def apply_thresholds(probabilities: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """0/1 predictions: a label is on when its probability reaches its threshold."""
    return (np.asarray(probabilities) >= np.asarray(thresholds)[None, :]).astype(int)


def tune_thresholds(
    y_true: np.ndarray, probabilities: np.ndarray, labels: Sequence[str] = LABELS
) -> dict[str, float]:
    """Per label, the threshold on the grid with the best F1 on these (validation) projects.

    Ties go to the threshold closest to 0.5, and a label with no positives keeps 0.5:
    with a few dozen validation projects a lucky extreme threshold would not generalise.
    """
    y_true = np.asarray(y_true, dtype=int)
    chosen = {}
    for i, name in enumerate(labels):
        if y_true[:, i].sum() == 0:
            chosen[name] = 0.5
            continue
        scores = [f1_score(y_true[:, i], probabilities[:, i] >= t, zero_division=0) for t in THRESHOLD_GRID]
        best = max(scores)
        candidates = [t for t, s in zip(THRESHOLD_GRID, scores, strict=True) if s >= best - 1e-9]
        chosen[name] = float(min(candidates, key=lambda t: (abs(t - 0.5), t)))
    return chosen
