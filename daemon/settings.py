"""The daemon's settings: one dataclass, each default stated once.

Settings arrive as JSON through ``initializationOptions`` and
``workspace/didChangeConfiguration``. Each key's default, validator and limits are stated
here (``_KEYS``); package.json's ``contributes.configuration`` copies the keys, defaults and
limits for VS Code, and the extension's tests compare it with ``describe()`` (printed by
``python -m treelens.daemon --describe-protocol``). Every message
carries the whole section, so a missing key means its default; a message that does not carry
the section (``Settings.carried``) changes nothing. A bad value is reported (the caller logs
it) and its default is used, so a typo never stops the daemon.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import pathspec

from treelens.daemon.protocol import SETTINGS_SECTION
from treelens.model.devices import DEFAULT_DEVICE, DEVICES
from treelens.model.feedback import default_feedback_database
from treelens.model.labels import check_thresholds

MAX_DEBOUNCE_MS = 60_000


@dataclass(frozen=True)
class Settings:
    """Effective settings; ``model_path`` None means the shipped default bundle."""

    model_path: Path | None = None
    device: str = DEFAULT_DEVICE
    debounce_ms: int = 300
    extra_ignores: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    feedback_database: Path = field(default_factory=default_feedback_database)

    @classmethod
    def parse(cls, raw: Any) -> tuple[Settings, list[str]]:
        """Settings from a JSON object (flat, or nested under ``"treelens"``) and the
        problems found, one readable line each; a bad value keeps its default."""
        problems: list[str] = []
        if isinstance(raw, dict) and isinstance(raw.get(SETTINGS_SECTION), dict):
            raw = raw[SETTINGS_SECTION]
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            return cls(), [f"settings must be a JSON object, got {_kind(raw)}; using the defaults"]
        values: dict[str, Any] = {}
        for key, spec in _KEYS.items():
            if raw.get(key) is None:
                continue
            try:
                values[spec.name] = spec.check(raw[key])
            except ValueError as error:
                problems.append(f"setting {SETTINGS_SECTION}.{key}: {error}; using the default")
        return cls(**values), problems

    @staticmethod
    def carried(raw: Any) -> bool:
        """Whether a settings message carries Treelens' section: nested under ``"treelens"``
        as the extension pushes it, or flat with at least one of its keys (a pulled section).
        A message without it (another extension's section, nothing) must not reset ours."""
        if not isinstance(raw, dict):
            return False
        return isinstance(raw.get(SETTINGS_SECTION), dict) or any(key in raw for key in _KEYS)

    @staticmethod
    def json_keys() -> tuple[str, ...]:
        """The JSON keys of the settings section."""
        return tuple(_KEYS)

    def to_json(self) -> dict[str, Any]:
        """The effective settings as the client spells them (logged at start-up)."""
        return {
            "modelPath": str(self.model_path) if self.model_path else None,
            "device": self.device,
            "debounceMs": self.debounce_ms,
            "extraIgnores": list(self.extra_ignores),
            "thresholds": dict(self.thresholds),
            "feedbackDatabase": str(self.feedback_database),
        }


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a path, got {_kind(value)} {value!r:.80}")
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        raise ValueError(f"{value!r:.200} is not an absolute path")
    return path


def _optional_path(value: Any) -> Path | None:
    if value == "":
        return None  # an empty setting means "the default bundle"
    return _path(value)


def _device(value: Any) -> str:
    if value not in DEVICES:
        raise ValueError(f"expected one of {', '.join(DEVICES)}, got {value!r:.80}")
    return value


def _debounce(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected milliseconds (a number), got {_kind(value)} {value!r:.80}")
    if not 0 <= value <= MAX_DEBOUNCE_MS:
        raise ValueError(f"expected 0 to {MAX_DEBOUNCE_MS} ms, got {value}")
    return round(value)


def _globs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of gitignore-style globs, got {_kind(value)} {value!r:.80}")
    for pattern in value:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except Exception as error:  # pathspec raises several types for a bad pattern
            raise ValueError(f"{pattern!r:.200} is not a valid gitignore pattern ({error})") from None
    return tuple(value)


def _thresholds(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"expected {{label: probability}}, got {_kind(value)} {value!r:.80}")
    return check_thresholds(value)


@dataclass(frozen=True)
class _Key:
    """One JSON key of the section: the Settings field it sets (``name``), its validator (raising
    ValueError with a readable reason) and its JSON schema, which package.json's
    ``contributes.configuration`` mirrors (checked through ``--describe-protocol``)."""

    name: str
    check: Callable[[Any], Any]
    schema: dict[str, Any]


_PROBABILITY = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}

_KEYS: dict[str, _Key] = {
    "modelPath": _Key("model_path", _optional_path, {"type": "string"}),
    "device": _Key("device", _device, {"type": "string", "enum": list(DEVICES)}),
    "debounceMs": _Key(
        "debounce_ms", _debounce, {"type": "integer", "minimum": 0, "maximum": MAX_DEBOUNCE_MS}
    ),
    "extraIgnores": _Key("extra_ignores", _globs, {"type": "array", "items": {"type": "string"}}),
    "thresholds": _Key("thresholds", _thresholds, {"type": "object", "additionalProperties": _PROBABILITY}),
    "feedbackDatabase": _Key("feedback_database", _path, {"type": "string"}),
}


def _client_default(name: str) -> Any:
    """A field's default as the client spells it: JSON values, and null where the daemon
    computes the default on its machine (the feedback database in the user data folder)."""
    spec = {f.name: f for f in fields(Settings)}[name]
    if spec.default is not MISSING:
        value = spec.default
    elif spec.default_factory in (dict, list, tuple):
        value = spec.default_factory()
    else:
        return None
    return list(value) if isinstance(value, tuple) else value


def describe() -> dict[str, Any]:
    """The settings section for ``--describe-protocol``: each key's JSON schema and default
    (null: the daemon's own default; a message may send null for any key to ask for it)."""
    return {
        "section": SETTINGS_SECTION,
        "properties": {
            key: {**spec.schema, "default": _client_default(spec.name)} for key, spec in _KEYS.items()
        },
    }
