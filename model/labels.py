"""The label set and its order: the one place every other part reads it from.

The order is the model's output order and is recorded in every bundle's manifest;
the definitions are in ../shared/data/LABELS.md.
"""

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

UNCERTAIN_RATIO = 0.5
"""A label is present at p >= threshold, uncertain at UNCERTAIN_RATIO x threshold <= p <
threshold (shown as ``library?``; the query policy keeps its queries), absent below."""


def label_state(probability: float, threshold: float, ratio: float = UNCERTAIN_RATIO) -> str:
    """'present', 'uncertain' or 'absent': one reading of a probability for the CLI, the
    editor and the query policy (whose policy file may set another ``ratio``)."""
    if probability >= threshold:
        return "present"
    return "uncertain" if probability >= ratio * threshold else "absent"


def label_vector(labels: dict[str, int], where: str = "record") -> list[int]:
    """Turn a ``{label: 0|1}`` mapping into a vector in LABELS order.

    Raises ValueError naming ``where`` when a label is unknown, missing or not 0/1,
    because a silently mis-ordered or partial vector would corrupt training.
    """
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"{where}: unknown label(s) {unknown}; known labels are {list(LABELS)}")
    missing = [name for name in LABELS if name not in labels]
    if missing:
        raise ValueError(f"{where}: missing label(s) {missing}")
    bad = {k: v for k, v in labels.items() if v not in (0, 1) or isinstance(v, bool)}
    if bad:
        raise ValueError(f"{where}: label values must be 0 or 1, got {bad}")
    return [int(labels[name]) for name in LABELS]
