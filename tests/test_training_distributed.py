"""The pretrain and finetune loops run unchanged under torchrun (DistributedDataParallel,
gloo on CPU): two processes, the same command a maintainer runs on a multi-GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys


def torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*command, "-m", "treelens.training.cli", *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_pretrain_and_finetune_under_torchrun(tiny_run, tiny_data, tmp_path):
    common = ["--preset", "tiny", "--data", str(tiny_data)]
    tokenizer = str(tiny_run / "tokenizer" / "tokenizer.json")
    pre = torchrun(
        "pretrain", *common, "--tokenizer", tokenizer, "--max-steps", "2",
        "--output-dir", str(tmp_path / "p"), "--summary-weight", "1.0",
    )  # fmt: skip
    assert "world size 2" in pre.stderr
    assert (
        json.loads((tmp_path / "p" / "train_results.json").read_text())["steps"] == 1
    )  # 5 texts: 1 batch per rank
    fine = torchrun(
        "finetune", *common, "--pretrained", str(tmp_path / "p"), "--output-dir", str(tmp_path / "f"),
        "--pooling", "segments", "--summary-weight", "1.0",  # a trained head and its second loss
    )  # fmt: skip
    assert "world size 2" in fine.stderr
    assert (tmp_path / "f" / "model" / "model.safetensors").is_file()
    assert set(json.loads((tmp_path / "f" / "thresholds.json").read_text())) >= {"backend", "iac"}
    probe = torchrun(  # the shipped head: every rank fits the probe, the main one saves it
        "finetune", *common, "--pretrained", str(tmp_path / "p"), "--output-dir", str(tmp_path / "q"),
        "--pooling", "probe",
    )  # fmt: skip
    assert "world size 2" in probe.stderr
    assert (tmp_path / "q" / "model" / "model.safetensors").is_file()
