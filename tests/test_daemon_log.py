"""The daemon's refresh log line keeps the shape its one reader (bench/daemon_freshness.py)
parses: written and parsed beside each other in daemon/server.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon_client import start_daemon
from tests.folders import write_files
from treelens.daemon.protocol import CLASSIFY
from treelens.daemon.server import REFRESHED


@pytest.mark.asyncio
async def test_each_refresh_logs_a_line_the_bench_can_read(tmp_path: Path, tiny_bundle: Path) -> None:
    write_files(tmp_path / "app", {"main.go": "", "go.mod": "module example.com/x\n"})
    daemon = await start_daemon([tmp_path / "app"], {"modelPath": str(tiny_bundle)})
    try:
        result = await daemon.call(CLASSIFY, {})
    finally:
        await daemon.close()
    found = [match for line in daemon.log if (match := REFRESHED.search(line))]
    assert found, "no refresh line in the daemon's log"
    assert float(found[0]["ms"]) >= 0 and found[0]["outcome"] in {
        "labelsChanged sent",
        "same labels and probabilities",
        "same model text",
    }
    assert result["labels"] is not None
