"""Where data files are looked for by default: one setting (model.dataset.default_data_dir).

$TREELENS_DATA_DIR, else ../shared/data beside a checkout, for the training stages and the
semgrep rule index alike; an installed package has no checkout beside it, so the variable
is how it finds the data without --data-dir on every command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from treelens.model.dataset import CHECKOUT_DATA_DIR, DATA_DIR_ENV

BIN = Path(sys.executable).parent


def _run(command: str, *args: str, data_dir: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != DATA_DIR_ENV}
    if data_dir is not None:
        env[DATA_DIR_ENV] = str(data_dir)
    return subprocess.run(
        [str(BIN / command), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_the_variable_moves_the_training_data_and_the_rule_index(tmp_path: Path) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    train = _run("treelens-train", "tokenizer", "--output-dir", str(tmp_path / "out"), data_dir=empty)
    assert train.returncode == 1 and f"{empty}: no projects-*.jsonl(.gz) data files" in train.stderr
    suggest = _run(
        "treelens", "suggest", "--engine", "semgrep", "--no-model", str(tmp_path / "app"), data_dir=empty
    )
    assert suggest.returncode == 1 and f"{empty / 'semgrep-rules-index.jsonl'} is not there" in suggest.stderr


def test_without_the_variable_a_checkout_reads_shared_data() -> None:
    done = _run("treelens-train", "tokenizer", "--help", data_dir=None)
    assert done.returncode == 0 and str(CHECKOUT_DATA_DIR) in " ".join(done.stdout.split())
    assert Path(__file__).resolve().parents[2] / "shared" / "data" == CHECKOUT_DATA_DIR
