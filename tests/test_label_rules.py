"""One rule for thresholds and one for label vectors (model/labels.py), whoever reads them.

A bundle's manifest, the CLI's --threshold, the editor's treelens.thresholds and the
runtime's overrides refuse the same thresholds with the same words; a data file and the
daemon's feedback params refuse the same label vectors, except that the daemon takes JSON
true/false for 1/0.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from treelens.daemon.cli import _thresholds as cli_thresholds
from treelens.daemon.params import labels as params_labels
from treelens.daemon.protocol import InvalidParams
from treelens.daemon.settings import Settings
from treelens.model.bundle import BundleError, load_bundle
from treelens.model.errors import UsageError
from treelens.model.labels import LABELS, check_thresholds, label_vector
from treelens.model.runtime import Classifier

BAD_THRESHOLDS = [
    ({"gui": 0.5}, "unknown label 'gui'"),
    ({"cli": 0}, "between 0 and 1"),
    ({"cli": 1}, "between 0 and 1"),
    ({"cli": 1.5}, "between 0 and 1"),
    ({"cli": -0.1}, "between 0 and 1"),
    ({"cli": math.nan}, "between 0 and 1"),
    ({"cli": math.inf}, "between 0 and 1"),
    ({"cli": True}, "between 0 and 1"),
    ({"cli": "0.5"}, "between 0 and 1"),
]
PERSON = dict.fromkeys(LABELS, 0) | {"backend": 1}


@pytest.fixture(scope="module")
def classifier(tiny_bundle: Path) -> Classifier:
    return Classifier.load(tiny_bundle, device="cpu", threads=1)


def _rule(value: dict) -> str:
    with pytest.raises(UsageError) as error:
        check_thresholds(value)
    return str(error.value)


@pytest.mark.parametrize(("value", "match"), BAD_THRESHOLDS)
def test_a_bad_threshold_is_refused_by_the_rule(value: dict, match: str) -> None:
    assert match in _rule(value)


def test_good_thresholds_come_back_as_floats_in_label_order() -> None:
    checked = check_thresholds({"iac": 0.2, "backend": 0.7})
    assert checked == {"backend": 0.7, "iac": 0.2} and list(checked) == ["backend", "iac"]
    assert check_thresholds(dict.fromkeys(LABELS, 0.5), every_label=True) == dict.fromkeys(LABELS, 0.5)
    with pytest.raises(UsageError, match=r"no threshold for label\(s\) \['frontend'"):
        check_thresholds({"backend": 0.5}, every_label=True)


@pytest.mark.parametrize(("value", "match"), BAD_THRESHOLDS)
def test_the_editor_setting_refuses_with_the_rules_words(value: dict, match: str) -> None:
    settings, problems = Settings.parse({"thresholds": value})
    assert len(problems) == 1 and _rule(value) in problems[0]
    assert dict(settings.thresholds) == {}


@pytest.mark.parametrize("option", ["gui=0.5", "cli=0", "cli=1", "cli=1.5", "cli=-0.1", "cli=inf"])
def test_the_cli_option_refuses_with_the_rules_words(option: str) -> None:
    name, _, number = option.partition("=")
    with pytest.raises(UsageError) as error:
        cli_thresholds([option])
    assert str(error.value) == _rule({name: float(number)})


@pytest.mark.parametrize(("value", "match"), BAD_THRESHOLDS)
def test_the_runtime_overrides_refuse_with_the_rules_words(
    classifier: Classifier, value: dict, match: str
) -> None:
    with pytest.raises(UsageError) as error:
        classifier.effective_thresholds(value)
    assert str(error.value) == _rule(value)


@pytest.mark.parametrize(("value", "match"), BAD_THRESHOLDS)
def test_a_bundle_refuses_with_the_rules_words(
    tiny_bundle: Path, tmp_path: Path, value: dict, match: str
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["thresholds"] = {**manifest["thresholds"], **value}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as error:
        load_bundle(bundle)
    assert "'thresholds' must give every label" in str(error.value) and _rule(value) in str(error.value)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ({**PERSON, "gui": 1}, r"unknown label\(s\) \['gui'\]"),
        ({"backend": 1}, r"missing label\(s\)"),
        ({**PERSON, "cli": 2}, "must be 0 or 1"),
        ({**PERSON, "cli": "1"}, "must be 0 or 1"),
    ],
)
def test_a_data_file_and_the_daemon_refuse_label_vectors_alike(labels: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as in_data:
        label_vector(labels, "'labels'")
    with pytest.raises(InvalidParams) as in_params:
        params_labels({"labels": labels})
    assert str(in_params.value) == str(in_data.value)


def test_json_booleans_are_labels_for_the_daemon_only() -> None:
    """A client's true/false reads as 1/0 (kept on purpose: to a person a label is yes or
    no); in a data file a bool is a mistyped record and is refused."""
    answer = {**PERSON, "cli": True, "mobile": False}
    assert params_labels({"labels": answer}) == {**PERSON, "cli": 1}
    assert label_vector(answer, booleans=True) == label_vector({**PERSON, "cli": 1})
    with pytest.raises(ValueError, match="must be 0 or 1"):
        label_vector(answer)
