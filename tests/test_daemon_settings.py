"""Settings from initializationOptions / didChangeConfiguration: defaults, nesting, and
bad values reported with their default kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from treelens.daemon.settings import Settings, default_feedback_database
from treelens.model.devices import DEFAULT_DEVICE
from treelens.model.labels import LABELS


def test_defaults_when_nothing_is_given() -> None:
    for raw in (None, {}, {"treelens": {}}, {"unrelated": 1}):
        settings, problems = Settings.parse(raw)
        assert settings == Settings() and problems == []
    # The default values themselves have one owner, daemon/settings.py; package.json mirrors
    # them and extension/test/unit/settings.test.ts checks it against --describe-protocol.
    defaults = Settings()
    assert defaults.model_path is None and defaults.device == DEFAULT_DEVICE
    assert defaults.extra_ignores == () and dict(defaults.thresholds) == {}
    assert defaults.feedback_database == default_feedback_database()
    assert default_feedback_database().name == "feedback.sqlite3"


def test_values_nested_under_the_section_as_the_extension_sends_them(tmp_path: Path) -> None:
    raw = {
        "treelens": {
            "modelPath": str(tmp_path / "bundle"),
            "device": "cpu",
            "debounceMs": 50,
            "extraIgnores": ["generated/", "*.pb.go"],
            "thresholds": {"mobile": 0.3},
            "feedbackDatabase": str(tmp_path / "f.sqlite3"),
            "pythonPath": "ignored: the extension's own setting",
        }
    }
    settings, problems = Settings.parse(raw)
    assert problems == []
    assert settings.model_path == tmp_path / "bundle"
    assert settings.device == "cpu" and settings.debounce_ms == 50
    assert settings.extra_ignores == ("generated/", "*.pb.go")
    assert dict(settings.thresholds) == {"mobile": 0.3}
    assert settings.feedback_database == tmp_path / "f.sqlite3"
    assert Settings.parse(settings.to_json())[0] == settings


def test_null_and_empty_model_path_mean_the_default() -> None:
    assert Settings.parse({"modelPath": None, "feedbackDatabase": None}) == (Settings(), [])
    assert Settings.parse({"modelPath": ""})[0].model_path is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("device", "gpu"),
        ("debounceMs", -1),
        ("debounceMs", "300"),
        ("debounceMs", True),
        ("debounceMs", float("nan")),
        ("extraIgnores", "generated/"),
        ("extraIgnores", [1]),
        ("thresholds", {"web": 0.5}),
        ("thresholds", {"mobile": 1.5}),
        ("thresholds", {"mobile": 0}),
        ("thresholds", []),
        ("modelPath", "relative/bundle"),
        ("modelPath", 7),
        ("feedbackDatabase", "feedback.sqlite3"),
    ],
)
def test_a_bad_value_is_reported_and_its_default_kept(key: str, value: object) -> None:
    settings, problems = Settings.parse({key: value, "device": "cpu"} if key != "device" else {key: value})
    assert len(problems) == 1
    assert f"treelens.{key}" in problems[0] and "using the default" in problems[0]
    assert settings.to_json()[key] == Settings().to_json()[key]
    if key != "device":
        assert settings.device == "cpu"  # the good values still apply


def test_settings_that_are_not_an_object() -> None:
    settings, problems = Settings.parse(["modelPath"])
    assert settings == Settings() and "JSON object" in problems[0]


def test_thresholds_are_kept_in_label_order() -> None:
    settings, _ = Settings.parse({"thresholds": {"iac": 0.2, "backend": 0.7}})
    assert list(settings.thresholds) == [label for label in LABELS if label in ("iac", "backend")]
