"""``finetune --distill-weight``: the Longformer learns from the labels mixed with the wide
path's out-of-fold probabilities. The teacher must never score a record it was fit on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from tests.tiny_model import finetune_cli
from treelens.training.wide import out_of_fold_probabilities


def test_teacher_never_scores_its_own_records(tiny_run: Path):
    """Each record holds one token no other record has, and its labels are random: a fit that
    saw the record would score its labels back (in-sample), an out-of-fold one cannot."""
    tokenizer = Tokenizer.from_file(str(tiny_run / "tokenizer" / "tokenizer.json"))
    rng = np.random.default_rng(0)
    ids = [[100 + i] * 5 + [20, 21, 22] for i in range(60)]
    y = rng.integers(0, 2, size=(60, 8)).astype(np.float32)
    probabilities = out_of_fold_probabilities(tokenizer, ids, y, folds=5, seed=0)
    assert probabilities.shape == y.shape
    own = np.corrcoef(probabilities.ravel(), y.ravel())[0, 1]
    assert abs(own) < 0.3, f"the teacher scored records it was fit on (correlation {own:.2f})"


def test_teacher_learns_a_shared_signal(tiny_run: Path):
    """The same teacher does learn a token that means the label across records."""
    tokenizer = Tokenizer.from_file(str(tiny_run / "tokenizer" / "tokenizer.json"))
    y = np.zeros((60, 8), dtype=np.float32)
    y[::2, 0] = 1
    ids = [[30 if y[i, 0] else 31, 40 + i % 7, 60 + i % 5] for i in range(60)]
    probabilities = out_of_fold_probabilities(tokenizer, ids, y, folds=5, seed=0)
    assert (probabilities[y[:, 0] == 1, 0] > probabilities[y[:, 0] == 0, 0].max()).all()


def test_finetune_with_distillation_through_the_cli(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    out = tmp_path / "fine"
    done = finetune_cli(tiny_run, tiny_data, out, "--distill-weight", "0.5")
    assert done.returncode == 0, done.stderr
    history = json.loads((out / "all_results.json").read_text())["history"]
    assert history["config"]["distill_weight"] == 0.5
    assert (out / "model" / "config.json").is_file()


def test_distill_weight_out_of_range_is_refused(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    done = finetune_cli(tiny_run, tiny_data, tmp_path / "o", "--distill-weight", "1.5")
    assert done.returncode != 0 and "--distill-weight must be between 0 and 1" in done.stderr
