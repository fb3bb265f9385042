"""What a training run's output folder holds: the names every stage writes and the next reads.

One place for the layout, so no stage imports another stage for a file name:

    <stage output>/
      tokenizer.json             TOKENIZER_FILE (every stage copies it along)
      tokenizer_config.json      save_hf_files: what transformers needs to load the tokenizer
      special_tokens_map.json
      model/                     MODEL_DIR (pretrain: the MLM; finetune: the classifier)
      thresholds.json            THRESHOLDS_FILE (finetune: per-label thresholds)
      data_summary.json          DATA_SUMMARY_FILE (finetune: records per split, for the manifest)
      checkpoint.pt              CHECKPOINT_FILE (pretrain, finetune: resume state)
      <split>_results.json       write_metrics
      all_results.json

Torch-free, so the CLI and the export's checks can read a run folder without loading torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from treelens.model.errors import UsageError
from treelens.model.tokenizer import CLS, MASK, PAD, SEP, UNK

TOKENIZER_FILE = "tokenizer.json"
MODEL_DIR = "model"
THRESHOLDS_FILE = "thresholds.json"
DATA_SUMMARY_FILE = "data_summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
ALL_RESULTS_FILE = "all_results.json"

HF_SPECIAL_TOKENS = {
    "cls_token": CLS,
    "sep_token": SEP,
    "pad_token": PAD,
    "unk_token": UNK,
    "mask_token": MASK,
    "bos_token": CLS,
    "eos_token": SEP,
}
"""transformers' names for our special tokens ([CLS] and [SEP] double as BOS and EOS)."""


def save_hf_files(output_dir: Path, max_tokens: int) -> None:
    """The files PreTrainedTokenizerFast.from_pretrained(output_dir) needs besides tokenizer.json."""
    special = HF_SPECIAL_TOKENS
    (output_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_tokens, **special}
    (output_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_metrics(output_dir: Path, splits: dict[str, dict]) -> None:
    """One JSON file per split (``<split>_results.json``) and ``all_results.json``."""
    for name, metrics in splits.items():
        (output_dir / f"{name}_results.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (output_dir / ALL_RESULTS_FILE).write_text(json.dumps(splits, indent=2) + "\n")


def check_pretrained(folder: Path, *, model: bool = True) -> None:
    """Refuse a ``--pretrained`` folder that lacks what the stage reads (the tokenizer, and
    the pretrained model unless ``model`` is false), before any work or output folder."""
    needed = [f"{MODEL_DIR}/config.json"] * model + [TOKENIZER_FILE]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise UsageError(
            f"--pretrained {folder}: no {' or '.join(missing)}; run the pretrain stage, or give the "
            "output folder of a finished one"
        )
