"""The label set and its order: the one place every other part reads it from.

The order is the model's output order and is recorded in every bundle's manifest;
the definitions are in ../shared/data/LABELS.md. What a label vector and a threshold
may be is checked here too, once, for every reader (data files, bundles, the CLI, the daemon).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treelens.model.errors import UsageError

LABELS: tuple[str, ...] = (
    "backend",
    "frontend",
    "mobile",
    "has_api",
    "desktop",
    "cli",
    "library",
    "iac",
)

UNTUNED_THRESHOLD = 0.5
"""A label's threshold before one is tuned on validation: finetune's epoch choice, a label
with no validation positives, the baselines. A bundle always carries tuned thresholds."""

UNCERTAIN_RATIO = 0.5
"""A label is present at p >= threshold, uncertain at UNCERTAIN_RATIO x threshold <= p <
threshold (shown as ``library?``; the query policy keeps its queries), absent below."""


def label_state(probability: float, threshold: float, ratio: float = UNCERTAIN_RATIO) -> str:
    """'present', 'uncertain' or 'absent': one reading of a probability for the CLI, the
    editor and the query policy (whose policy file may set another ``ratio``)."""
    if probability >= threshold:
        return "present"
    return "uncertain" if probability >= ratio * threshold else "absent"


def check_thresholds(values: Mapping[Any, Any], *, every_label: bool = False) -> dict[str, float]:
    """Per-label thresholds as floats in LABELS order, or UsageError naming the first problem.

    The one rule for a bundle's manifest (``every_label``), the CLI's ``--threshold``, the
    editor's ``treelens.thresholds`` and the runtime's overrides: a known label, and a
    number strictly between 0 and 1 (not a bool, not NaN), as ``p >= threshold`` needs.
    """
    for name in values:
        if name not in LABELS:
            raise UsageError(f"threshold for unknown label {name!r:.80}; labels are {list(LABELS)}")
    missing = [name for name in LABELS if name not in values]
    if every_label and missing:
        raise UsageError(f"no threshold for label(s) {missing}; every label needs one")
    for name, p in values.items():
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 < p < 1.0:
            raise UsageError(f"threshold for {name} must be a number between 0 and 1, got {p!r:.80}")
    return {name: float(values[name]) for name in LABELS if name in values}


def label_vector(labels: Mapping[Any, Any], where: str = "record", *, booleans: bool = False) -> list[int]:
    """Turn a ``{label: 0|1}`` mapping into a vector in LABELS order.

    Raises ValueError naming ``where`` when a label is unknown, missing or not 0/1,
    because a silently mis-ordered or partial vector would corrupt training.
    ``booleans``: JSON true/false count as 1/0, for the daemon's clients, to whom a label
    is yes or no; a data file holds 0/1, and a bool there is a sign of a mistyped record.
    """
    unknown = sorted(str(name) for name in set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"{where}: unknown label(s) {unknown!r:.200}; known labels are {list(LABELS)}")
    missing = [name for name in LABELS if name not in labels]
    if missing:
        raise ValueError(f"{where}: missing label(s) {missing}")
    bad = {k: v for k, v in labels.items() if v not in (0, 1) or (isinstance(v, bool) and not booleans)}
    if bad:
        raise ValueError(f"{where}: label values must be 0 or 1, got {bad!r:.200}")
    return [int(labels[name]) for name in LABELS]
