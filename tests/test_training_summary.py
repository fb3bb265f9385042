"""``--summary-weight``: in finetune the segments head's pooled features, in pretrain the
mean of each segment's states, also predict the text's TF-IDF summary. The target is
standardised and follows the text; the extra output layer trains with the model and never
ships with it, and a resume that disagrees about it is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from tests.tiny_model import finetune_cli, pretrain_cli
from treelens.training.pooling import load_classifier
from treelens.training.run_layout import CHECKPOINT_FILE
from treelens.training.summary import Summary


def _ids(count: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(10, 300, size=rng.integers(20, 60)).tolist() for _ in range(count)]


def test_summary_is_standardised_and_follows_the_text(tiny_run: Path):
    tokenizer = Tokenizer.from_file(str(tiny_run / "tokenizer" / "tokenizer.json"))
    train = _ids(120, seed=0)
    summary = Summary(tokenizer, train, seed=0)
    targets = summary.targets(train)
    assert targets.shape == (120, summary.dimensions) and targets.dtype == np.float32
    assert np.allclose(targets.mean(axis=0), 0, atol=1e-4) and np.allclose(targets.std(axis=0), 1, atol=1e-3)
    assert np.array_equal(Summary(tokenizer, train, seed=0).targets(train), targets)
    other = summary.targets(_ids(5, seed=1))
    assert not np.allclose(other[0], other[1]), "different texts got the same summary"
    assert np.allclose(summary.targets([train[3]])[0], targets[3], atol=1e-5)
    assert Summary(tokenizer, train, seed=0, dimensions=5).targets(train).shape == (120, 5)


def test_finetune_with_a_summary_target_through_the_cli(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    out = tmp_path / "fine"
    done = finetune_cli(tiny_run, tiny_data, out, "--pooling", "segments", "--summary-weight", "1.0")
    assert done.returncode == 0, done.stderr
    history = json.loads((out / "all_results.json").read_text())["history"]
    assert history["config"]["summary_weight"] == 1.0
    checkpoint = torch.load(out / CHECKPOINT_FILE, weights_only=False)
    assert "summary_head" in checkpoint, "the summary layer is not in the checkpoint: a resume would lose it"
    saved = load_classifier(out / "model").state_dict()
    assert not any("summary" in key for key in saved), "the summary layer leaked into the shipped model"
    # resuming it without the summary loss would drop the layer and its optimizer state
    again = finetune_cli(tiny_run, tiny_data, out, "--pooling", "segments")
    assert again.returncode != 0
    assert "was written with --summary-weight 1, not 0; pass the same --summary-weight" in again.stderr


def test_resuming_without_a_summary_layer_into_a_summary_run_is_refused(
    tiny_run: Path, tiny_data: Path, tmp_path: Path
):
    out = tmp_path / "plain"
    assert finetune_cli(tiny_run, tiny_data, out, "--pooling", "segments").returncode == 0
    done = finetune_cli(tiny_run, tiny_data, out, "--pooling", "segments", "--summary-weight", "0.5")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "was written with --summary-weight 0, not 0.5" in done.stderr


def test_summary_weight_without_segments_is_refused(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    done = finetune_cli(tiny_run, tiny_data, tmp_path / "o", "--summary-weight", "1.0")
    assert done.returncode != 0 and "--summary-weight needs --pooling segments" in done.stderr


def test_pretrain_with_a_summary_target_through_the_cli(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    out = tmp_path / "pre"
    done = pretrain_cli(tiny_run, tiny_data, out, "--summary-weight", "1.0")
    assert done.returncode == 0, done.stderr
    assert "summary mse" in done.stderr, "the summary loss is not logged"
    checkpoint = torch.load(out / CHECKPOINT_FILE, weights_only=False)
    assert checkpoint["summary_head"]["weight"].shape[1] == 3 * checkpoint["model_args"]["hidden"]
    saved = load_file(out / "model" / "model.safetensors")
    assert not any("summary" in key for key in saved), "the summary layer leaked into the pretrained model"
    again = pretrain_cli(tiny_run, tiny_data, out)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "was written with --summary-weight 1, not 0" in again.stderr


def test_pretrain_summary_dimensions_through_the_cli(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    """``--summary-dimensions`` sizes the summary layer; a resume with another size is refused
    with what to do, and a size below 1 is refused before anything runs."""
    out = tmp_path / "pre"
    done = pretrain_cli(tiny_run, tiny_data, out, "--summary-weight", "1.0", "--summary-dimensions", "3")
    assert done.returncode == 0, done.stderr
    checkpoint = torch.load(out / CHECKPOINT_FILE, weights_only=False)
    assert checkpoint["summary_head"]["weight"].shape[0] == 3
    again = pretrain_cli(tiny_run, tiny_data, out, "--summary-weight", "1.0", "--summary-dimensions", "2")
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "was written with a 3-dimension summary, not 2; pass the same --summary-dimensions" in again.stderr
    zero = pretrain_cli(
        tiny_run, tiny_data, tmp_path / "zero", "--summary-weight", "1.0", "--summary-dimensions", "0"
    )
    assert zero.returncode != 0 and "--summary-dimensions must be at least 1, got 0" in zero.stderr


def test_pretrain_summary_reads_segments_of_the_unmasked_text(tiny_run: Path):
    """A masked token's random replacement can be a [SEP]; the summary layer still pools
    the segments of the text as written, not as masked."""
    from transformers import LongformerForMaskedLM

    from treelens.training.pooling import segment_means
    from treelens.training.pretrain import MaskedLMObjective

    torch.manual_seed(0)
    objective = MaskedLMObjective(LongformerForMaskedLM.from_pretrained(tiny_run / "pretrain" / "model"), 4)
    objective.eval()
    sep = objective.model.config.sep_token_id
    written = torch.tensor([[0, 40, 41, 42, sep, 43, 44, sep, 45, sep] + [46] * 54])
    masked = written.clone()
    masked[0, 2] = sep  # position 2 was picked for masking and replaced at random by [SEP]
    labels = torch.full_like(written, -100)
    labels[0, 2] = written[0, 2]
    mask = torch.ones_like(written)
    target = torch.zeros(1, 4)
    with torch.no_grad():
        _, mse = objective(masked, mask, labels, target)
        hidden = objective.model.longformer(input_ids=masked, attention_mask=mask)[0]
        expected = objective.summary(segment_means(hidden, written, mask, sep)).pow(2).mean()
        misread = objective.summary(segment_means(hidden, masked, mask, sep)).pow(2).mean()
    assert float(mse) == pytest.approx(float(expected), rel=1e-5)
    assert abs(float(expected) - float(misread)) > 1e-6  # the test would see the difference


@pytest.mark.parametrize("summary_cls", [False, True])
def test_summary_cls_trains_the_global_projections(tiny_run: Path, summary_cls: bool):
    """Masked tokens give [CLS] no global attention, so the global projections a probe-cls
    head reads through get no gradient; with ``summary_cls`` the summary reads [CLS], which
    attends globally, and they do."""
    from transformers import LongformerForMaskedLM

    from treelens.training.pretrain import MaskedLMObjective

    torch.manual_seed(0)
    model = LongformerForMaskedLM.from_pretrained(tiny_run / "pretrain" / "model")
    objective = MaskedLMObjective(model, 4, summary_cls=summary_cls)
    sep = model.config.sep_token_id
    ids = torch.tensor([[0, 40, 41, 42, sep, 43, 44, sep, 45, sep] + [46] * 54])
    labels = torch.full_like(ids, -100)
    labels[0, 3] = ids[0, 3]
    mlm, mse = objective(ids, torch.ones_like(ids), labels, torch.ones(1, 4))
    (mlm + mse).backward()
    assert objective.summary.weight.shape[1] == (3 + summary_cls) * model.config.hidden_size
    grad = model.longformer.encoder.layer[-1].attention.self.query_global.weight.grad
    assert (grad is not None and bool(grad.abs().sum() > 0)) == summary_cls


def test_pretrain_with_summary_cls_through_the_cli(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    """The summary layer reads [CLS] beside the three segments; a resume that disagrees about
    it, or the flag without a summary loss, is refused with what to do."""
    out = tmp_path / "pre"
    done = pretrain_cli(tiny_run, tiny_data, out, "--summary-weight", "1.0", "--summary-cls")
    assert done.returncode == 0, done.stderr
    checkpoint = torch.load(out / CHECKPOINT_FILE, weights_only=False)
    assert checkpoint["summary_head"]["weight"].shape[1] == 4 * checkpoint["model_args"]["hidden"]
    again = pretrain_cli(tiny_run, tiny_data, out, "--summary-weight", "1.0")
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "was written with --summary-cls" in again.stderr
    alone = pretrain_cli(tiny_run, tiny_data, tmp_path / "alone", "--summary-cls")
    assert alone.returncode != 0 and "--summary-cls needs --summary-weight" in alone.stderr
