"""``python -m treelens.daemon --describe-protocol``: the one description of what the extension
mirrors (methods, error codes, engines, settings with their defaults and limits), printed
from the owners of those facts; the extension's unit tests compare their copies with it.
Here: the description is what the daemon really does (its defaults parse to the defaults,
its limits are the validators' limits), the engines are the query-set registry's, and the
liveness method the extension probes is answered."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_client import REPO, start_daemon
from treelens.daemon import protocol
from treelens.daemon.settings import Settings
from treelens.model.devices import DEVICES
from treelens.model.querysets import CatalogError, load_catalog
from treelens.model.querysets.catalog import Catalog
from treelens.model.querysets.suggest import ENGINES, REGISTRY, engine_config


@pytest.fixture(scope="module")
def described() -> dict[str, Any]:
    """What the command prints, run as the extension's tests run it."""
    output = subprocess.run(
        [sys.executable, "-P", "-m", "treelens.daemon", "--describe-protocol"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(output.stdout)


def test_the_description_names_the_owners_facts(described: dict[str, Any]) -> None:
    assert described["requests"] == list(protocol.REQUESTS)
    assert described["notifications"] == list(protocol.NOTIFICATIONS)
    assert described["errorCodes"] == protocol.ERROR_CODES
    assert described["engines"] == list(ENGINES) == list(REGISTRY)
    assert described["settings"]["section"] == protocol.SETTINGS_SECTION
    properties = described["settings"]["properties"]
    assert list(properties) == list(Settings.json_keys())
    assert properties["device"]["enum"] == list(DEVICES)


def test_the_described_defaults_are_the_daemons_defaults(described: dict[str, Any]) -> None:
    """A client that sends every described default gets the daemon's defaults, no problem."""
    properties = described["settings"]["properties"]
    defaults = {key: spec["default"] for key, spec in properties.items()}
    assert Settings.parse({"treelens": defaults}) == (Settings(), [])
    assert defaults["device"] == Settings().device and defaults["debounceMs"] == Settings().debounce_ms


def _edges(schema: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Values a schema accepts and values it refuses, at its limits."""
    accepted: list[Any] = []
    refused: list[Any] = []
    if "enum" in schema:
        accepted += schema["enum"]
        refused.append("".join(schema["enum"]))
    if "minimum" in schema:
        accepted.append(schema["minimum"])
        refused.append(schema["minimum"] - 1)
    if "maximum" in schema:
        accepted.append(schema["maximum"])
        refused.append(schema["maximum"] + 1)
    if "exclusiveMinimum" in schema:
        refused.append(schema["exclusiveMinimum"])
        accepted.append(math.nextafter(schema["exclusiveMinimum"], math.inf))
    if "exclusiveMaximum" in schema:
        refused.append(schema["exclusiveMaximum"])
        accepted.append(math.nextafter(schema["exclusiveMaximum"], -math.inf))
    return accepted, refused


@pytest.mark.parametrize("key", ["device", "debounceMs", "thresholds"])
def test_the_described_limits_are_the_validators_limits(described: dict[str, Any], key: str) -> None:
    """package.json copies these limits; the daemon must refuse exactly beyond them."""
    schema = described["settings"]["properties"][key]
    wrap = (lambda value: {"has_api": value}) if key == "thresholds" else (lambda value: value)
    accepted, refused = _edges(schema.get("additionalProperties", schema))
    assert accepted and refused
    for value in accepted:
        assert Settings.parse({key: wrap(value)})[1] == [], f"{key}={value!r} is within the description"
    for value in refused:
        assert len(Settings.parse({key: wrap(value)})[1]) == 1, f"{key}={value!r} is beyond the description"


def test_every_engine_has_a_reader_and_a_writer_and_an_unknown_one_is_refused() -> None:
    with pytest.raises(
        CatalogError, match=r"unknown engine 'nope'; choose from semgrep, codeql, bandit, checkov"
    ):
        load_catalog("nope")
    for engine in REGISTRY.values():
        assert callable(engine.load) and callable(engine.config)
    # a catalog no reader made used to get bandit's config silently
    stray = Catalog(engine="nope", source="test", kind="index", queries=())
    with pytest.raises(KeyError, match="nope"):
        engine_config(stray, [], "a stray catalog")


@pytest.mark.asyncio
async def test_the_liveness_method_is_answered_without_a_model(tmp_path: Path) -> None:
    """treelens/ping answers at once whatever the params, touching no folder and no model."""
    daemon = await start_daemon([tmp_path], {"modelPath": str(tmp_path / "no-bundle")})
    try:
        for params in (None, {}, [], {"folder": "file:///nowhere"}):
            assert await daemon.call(protocol.PING, params) == {}
    finally:
        await daemon.close()
