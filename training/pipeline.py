"""`treelens-train all`: every stage in order, each in its own folder under --output-dir.

    <output-dir>/tokenizer  pretrain  finetune  evaluate  export/bundle  export/bundle-fp32

Stage settings come from the preset (one section per stage); the few flags of ``all``
(data, seed, device, threads) apply to every stage. A killed run continues where it
stopped when started again with the same command: a finished tokenizer is kept,
pretrain and finetune resume from their checkpoints, evaluate and export run again.
``--pretrained DIR`` finetunes a pretraining made elsewhere (a GPU's, copied without its
checkpoint) instead of running the tokenizer and pretrain stages.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from treelens.training import evaluate, export, finetune, pretrain, tokenizer
from treelens.training.options import build_config, prepare_output_dir
from treelens.training.run_layout import TOKENIZER_FILE, check_pretrained
from treelens.training.stage_configs import (
    AllConfig,
    EvaluateConfig,
    ExportConfig,
    FinetuneConfig,
    PretrainConfig,
    TokenizerConfig,
)

log = logging.getLogger(__name__)


def run(config: AllConfig, preset: str | Path | None) -> Path:
    """Run the stages; returns the bundle folder."""
    if config.pretrained is not None:
        check_pretrained(config.pretrained)
    root = config.output_dir
    prepare_output_dir(root, overwrite=True)
    common = {"data_dir": config.data_dir, "data": config.data, "seed": config.seed}
    system = {"device": config.device, "threads": config.threads}
    fresh = {"overwrite_output_dir": config.overwrite_output_dir}

    def stage_config(cls: type, stage: str, **values):
        return build_config(cls, stage, argparse.Namespace(**values), preset)

    if config.pretrained is not None:
        pretrained = config.pretrained
        log.info("all: finetuning the pretraining in %s (no tokenizer or pretrain stage)", pretrained)
    else:
        tok = stage_config(TokenizerConfig, "tokenizer", output_dir=root / "tokenizer", **common, **fresh)
        tokenizer_path = tok.output_dir / TOKENIZER_FILE
        if tokenizer_path.is_file() and not config.overwrite_output_dir:
            log.info("all: keeping the tokenizer in %s", tokenizer_path)
        else:
            tok.overwrite_output_dir = True
            tokenizer.run(tok)
        pre = stage_config(
            PretrainConfig,
            "pretrain",
            output_dir=root / "pretrain",
            tokenizer=tokenizer_path,
            train_data=config.train_data,
            **common, **system, **fresh,
        )  # fmt: skip
        pretrain.run(pre)
        pretrained = pre.output_dir

    fine = stage_config(
        FinetuneConfig,
        "finetune",
        output_dir=root / "finetune",
        pretrained=pretrained,
        train_data=config.train_data,
        **common, **system, **fresh,
    )  # fmt: skip
    finetune.run(fine)

    ev = stage_config(
        EvaluateConfig,
        "evaluate",
        output_dir=root / "evaluate",
        model=fine.output_dir,
        train_data=config.train_data,
        overwrite_output_dir=True,
        **common, **system,
    )  # fmt: skip
    evaluate.run(ev)

    ex = stage_config(
        ExportConfig,
        "export",
        output_dir=root / "export",
        model=fine.output_dir,
        metrics=ev.output_dir / "metrics.json",
        install=config.install,
        install_dir=config.install_dir,
        force=config.force,
        overwrite_output_dir=True,
        threads=config.threads,
        **common,
    )
    bundle = export.run(ex)

    shipped = stage_config(
        EvaluateConfig,
        "evaluate",
        output_dir=root / "evaluate-bundle",
        bundle=bundle,
        model=None,
        baselines=False,
        overwrite_output_dir=True,
        **common, **system,
    )  # fmt: skip
    evaluate.run(shipped)
    log.info("all: done; bundle in %s", bundle)
    return bundle
