"""A training run killed with SIGKILL resumes from its checkpoint and ends where an
uninterrupted run ends, to the last bit of every weight."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from treelens.training import finetune, pretrain
from treelens.training.modeling import CHECKPOINT_FILE
from treelens.training.options import StageError, build_config
from treelens.training.stage_configs import FinetuneConfig, PretrainConfig


def start_and_kill(command: list[str], checkpoint: Path, timeout: float = 300) -> None:
    """Start ``command`` and SIGKILL it as soon as its first checkpoint is on disk."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        if process.poll() is not None:
            raise AssertionError(f"finished before it could be killed: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "treelens.training.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def same_weights(a: Path, b: Path) -> None:
    left, right = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


def test_pretrain_resumes_after_a_kill(tiny_run, tiny_data, tmp_path):
    settings = {"max_steps": 24, "epochs": 12, "checkpoint_steps": 2}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    common = [
        "--preset",
        "tiny",
        "--data",
        str(tiny_data),
        "--tokenizer",
        str(tiny_run / "tokenizer" / "tokenizer.json"),
    ]
    killed = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "treelens.training.cli",
        "pretrain",
        *common,
        *flags,
        "--output-dir",
        str(killed),
    ]
    start_and_kill(command, killed / CHECKPOINT_FILE)
    stopped_at = torch.load(killed / CHECKPOINT_FILE, weights_only=False)["step"]
    assert 0 < stopped_at < 24

    resumed = run_cli(["pretrain", *common, *flags, "--output-dir", str(killed)])
    assert f"resuming from {killed / CHECKPOINT_FILE} at step {stopped_at}" in resumed.stderr
    assert json.loads((killed / "train_results.json").read_text())["steps"] == 24

    whole = tmp_path / "whole"
    args = argparse.Namespace(
        output_dir=whole, data=[tiny_data], tokenizer=tiny_run / "tokenizer" / "tokenizer.json", **settings
    )
    pretrain.run(build_config(PretrainConfig, "pretrain", args, "tiny"))
    same_weights(killed, whole)

    # a finished run (which `all` keeps) is not redone, and its results keep their real figures
    results = (whole / "train_results.json").read_text()
    again = run_cli(["pretrain", *common, *flags, "--output-dir", str(whole)])
    assert "already finished at step 24" in again.stderr
    assert (whole / "train_results.json").read_text() == results
    same_weights(killed, whole)


def test_finetune_resumes_after_a_kill(tiny_run, tiny_data, tmp_path):
    common = ["--preset", "tiny", "--data", str(tiny_data), "--pretrained", str(tiny_run / "pretrain")]
    flags = ["--max-epochs=6", "--min-epochs=6"]
    killed = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "treelens.training.cli",
        "finetune",
        *common,
        *flags,
        "--output-dir",
        str(killed),
    ]
    start_and_kill(command, killed / CHECKPOINT_FILE)
    done_epochs = torch.load(killed / CHECKPOINT_FILE, weights_only=False)["epoch"]
    assert 0 < done_epochs < 6

    resumed = run_cli(["finetune", *common, *flags, "--output-dir", str(killed)])
    assert f"after epoch {done_epochs}" in resumed.stderr
    history = json.loads((killed / "history_results.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == list(range(6))

    whole = tmp_path / "whole"
    args = argparse.Namespace(
        output_dir=whole, data=[tiny_data], pretrained=tiny_run / "pretrain", max_epochs=6, min_epochs=6
    )
    finetune.run(build_config(FinetuneConfig, "finetune", args, "tiny"))
    same_weights(killed, whole)
    assert (killed / "thresholds.json").read_text() == (whole / "thresholds.json").read_text()

    # a checkpoint written for another model size is refused, not loaded into this one
    state = torch.load(killed / CHECKPOINT_FILE, weights_only=False)
    state["model_args"]["hidden"] *= 2
    torch.save(state, killed / CHECKPOINT_FILE)
    args.output_dir = killed
    with pytest.raises(StageError, match="was written for a model of size"):
        finetune.run(build_config(FinetuneConfig, "finetune", args, "tiny"))
