"""``finetune --head-epochs N`` (LP-FT): the first N epochs train the head alone; the
pretrained Longformer's weights stay exactly as pretrained until then, and move after.
``--encoder-learning-rate`` moves them at their own pace."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.test_training_distributed import torchrun
from tests.tiny_model import finetune_cli
from treelens.training.run_layout import CHECKPOINT_FILE

EMBEDDINGS = "longformer.embeddings.word_embeddings.weight"
EVERY_EPOCH = ("--max-epochs", "2", "--min-epochs", "2", "--early-stopping-patience", "2")


def _embeddings_shift(run: Path, output_dir: Path) -> float:
    """How far the last epoch's word embeddings (the checkpoint's, not the best epoch's)
    moved from the pretrained ones: the largest change of one weight."""
    before = load_file(run / "pretrain" / "model" / "model.safetensors")[EMBEDDINGS]
    after = torch.load(output_dir / CHECKPOINT_FILE, weights_only=False)["model"][EMBEDDINGS]
    return float((after - before).abs().max())


def _embeddings_moved(run: Path, output_dir: Path) -> bool:
    return _embeddings_shift(run, output_dir) > 0


def test_head_epochs_keep_the_encoder_frozen_then_free_it(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    frozen = finetune_cli(tiny_run, tiny_data, tmp_path / "frozen", *EVERY_EPOCH, "--head-epochs", "2")
    assert frozen.returncode == 0, frozen.stderr
    assert not _embeddings_moved(tiny_run, tmp_path / "frozen"), "a head epoch trained the encoder"
    # the control: one head epoch, then the whole model learns (so the check above can fail)
    freed = finetune_cli(tiny_run, tiny_data, tmp_path / "freed", *EVERY_EPOCH, "--head-epochs", "1")
    assert freed.returncode == 0, freed.stderr
    assert _embeddings_moved(tiny_run, tmp_path / "freed"), "the encoder never learned after the head epochs"


def test_head_epochs_under_torchrun(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    """DistributedDataParallel must accept parameters that get no gradient for a while."""
    torchrun(
        "finetune", "--preset", "tiny", "--data", str(tiny_data), "--pretrained", str(tiny_run / "pretrain"),
        "--output-dir", str(tmp_path / "f"), "--max-epochs", "2", "--min-epochs", "2", "--head-epochs", "1",
    )  # fmt: skip
    assert _embeddings_moved(tiny_run, tmp_path / "f")


def test_the_encoder_learns_at_its_own_rate(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    """AdamW moves a weight by about its learning rate a step: two steps at 1e-9 stay below
    1e-7, while the head's rate (the preset's) moves the embeddings far more."""
    slow = finetune_cli(tiny_run, tiny_data, tmp_path / "slow", *EVERY_EPOCH, "--encoder-learning-rate=1e-9")
    assert slow.returncode == 0, slow.stderr
    assert 0 < _embeddings_shift(tiny_run, tmp_path / "slow") < 1e-7
    same = finetune_cli(tiny_run, tiny_data, tmp_path / "same", *EVERY_EPOCH)
    assert same.returncode == 0, same.stderr
    assert _embeddings_shift(tiny_run, tmp_path / "same") > 1e-5


def test_resuming_with_or_without_an_encoder_rate_is_refused(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    """The optimizer's parameter groups differ with and without the encoder's own rate."""
    done = finetune_cli(tiny_run, tiny_data, tmp_path / "f", "--encoder-learning-rate=1e-4")
    assert done.returncode == 0, done.stderr
    again = finetune_cli(tiny_run, tiny_data, tmp_path / "f")
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "was written with --encoder-learning-rate 0.0001, not unset" in again.stderr


def test_bad_values_are_refused(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    done = finetune_cli(tiny_run, tiny_data, tmp_path / "o", "--head-epochs", "-1")
    assert done.returncode != 0 and "--head-epochs must be at least 0, got -1" in done.stderr
    done = finetune_cli(tiny_run, tiny_data, tmp_path / "o", "--encoder-learning-rate", "0")
    assert done.returncode != 0 and "--encoder-learning-rate must be above 0, got 0" in done.stderr
