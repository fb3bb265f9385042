"""Multi-label metrics and per-label threshold tuning (scikit-learn does the counting)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score, multilabel_confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import KFold

from treelens.model.labels import LABELS, UNTUNED_THRESHOLD


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
    """0/1 predictions: a label is on when its probability reaches its threshold (p >= t,
    the 'present' of model.labels.label_state, for whole arrays)."""
    return (np.asarray(probabilities) >= np.asarray(thresholds)[None, :]).astype(int)


def tune_thresholds(
    y_true: np.ndarray, probabilities: np.ndarray, labels: Sequence[str] = LABELS
) -> dict[str, float]:
    """Per label, the threshold with the best F1 on these (validation) projects, placed in
    the middle of the widest gap between their probabilities that reaches that F1.

    Every threshold inside a gap between two neighbouring probabilities gives the same
    F1; the middle of the widest one keeps every validation project as far from its
    decision boundary as possible, so small perturbations (int8 quantization, a file
    more or less) do not flip it. Ties go to the gap nearer 0.5; a label without
    positives here keeps 0.5. Thresholds are rounded to 4 decimals unless that reaches 0
    or 1 (a gap below 0.0001: a bundle's thresholds lie strictly between 0 and 1).
    """
    y_true = np.asarray(y_true, dtype=int)
    chosen = {}
    for i, name in enumerate(labels):
        if y_true[:, i].sum() == 0:
            chosen[name] = UNTUNED_THRESHOLD
            continue
        values = np.unique(np.concatenate([[0.0, 1.0], probabilities[:, i]]))
        cuts = (values[:-1] + values[1:]) / 2  # the middle of every gap
        gaps = values[1:] - values[:-1]
        scores = _f1_at_cuts(y_true[:, i], probabilities[:, i], cuts)
        best = np.flatnonzero(scores >= scores.max() - 1e-9)
        pick = max(best, key=lambda k: (round(float(gaps[k]), 6), -abs(float(cuts[k]) - 0.5)))
        rounded = round(float(cuts[pick]), 4)
        chosen[name] = rounded if 0 < rounded < 1 else float(cuts[pick])
    return chosen


def _f1_at_cuts(y: np.ndarray, p: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """F1 of ``p >= cut`` for every cut at once (sorted counts; one scikit-learn call per cut
    took seconds for the few hundred cuts of out-of-fold predictions)."""
    order = np.argsort(p, kind="stable")
    above = np.concatenate([np.cumsum(y[order][::-1])[::-1], [0]])  # positives at or after index k
    first = np.searchsorted(p[order], cuts, side="left")
    predicted = len(p) - first
    true_positives = above[first]
    return 2 * true_positives / np.maximum(predicted + y.sum(), 1)


def inner_folds(count: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit on, score) index pairs of a shuffled k-fold split of ``count`` training records:
    out-of-fold predictions to tune thresholds on every training record, not a small share."""
    splitter = KFold(n_splits=min(folds, count), shuffle=True, random_state=seed)
    return list(splitter.split(np.arange(count)))
