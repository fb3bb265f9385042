"""policy.yaml and manifest.json refuse keys they do not know, naming them.

A silently ignored key is a rule that does nothing (a misspelt gate condition keeps or
drops queries nobody meant to) or a bundle that says more than was checked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from treelens.model.bundle import BundleError, load_bundle
from treelens.model.querysets import Policy, PolicyError
from treelens.model.querysets.policy import DEFAULT_POLICY


def _policy_with(tmp_path: Path, change: Any) -> Path:
    data = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _first_gate(data: dict) -> dict:
    return next(iter(data["gates"].values()))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: _first_gate(d)["match"].update(cwe=[79]), "extra fields found (cwe) @ policy.gates["),
        (lambda d: _first_gate(d).update(and_cew=[79]), "extra fields found (and_cew) @ policy.gates["),
        (
            lambda d: d["families"]["kubernetes"].update(file=["k8s/"]),
            "(file) @ policy.families",
        ),
        (lambda d: d.update(familes={}), "extra fields found (familes) @ policy"),
        # the uncertainty band is model/labels.py's alone; the policy file cannot restate it
        (lambda d: d.update(uncertain={"ratio": 0.4}), "extra fields found (uncertain) @ policy"),
        (lambda d: _first_gate(d).update(and_cwe=["many"]), "expected int @ policy.gates["),
    ],
)
def test_an_unknown_or_mistyped_policy_key_is_named(tmp_path: Path, change: Any, named: str) -> None:
    with pytest.raises(PolicyError, match=r"policy\.yaml: malformed query policy") as error:
        Policy.load(_policy_with(tmp_path, change))
    assert named in str(error.value)


def test_the_shipped_policy_has_only_known_keys() -> None:
    assert Policy.load().gates


def test_an_unknown_key_in_a_manifest_file_entry_is_named(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["tokenizer.json"]["sha512"] = "0" * 128
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"files entry 'tokenizer.json' has unknown key\(s\) \['sha512'\]"):
        load_bundle(bundle)
