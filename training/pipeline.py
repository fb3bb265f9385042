"""`treelens-train all`: every stage in order, each in its own folder under --output-dir.

    <output-dir>/tokenizer  pretrain  finetune  evaluate  export/bundle  export/bundle-fp32

Stage settings come from the preset (one section per stage); the few flags of ``all``
(data, seed, device, threads) apply to every stage. A killed run continues where it
stopped when started again with the same command: a finished tokenizer is kept,
pretrain and finetune resume from their checkpoints, evaluate and export run again.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from model.bundle import DEFAULT_BUNDLE_DIR
from training import evaluate, export, finetune, pretrain, tokenizer
from training.config import DEFAULT_DATA_DIR, build_config, option, prepare_output_dir

log = logging.getLogger(__name__)


@dataclass
class AllConfig:
    output_dir: Path = option(Path("runs/default"), "root folder of the run (one sub-folder per stage)")
    overwrite_output_dir: bool = option(False, "start every stage over (else continue a killed run)")
    data_dir: Path = option(DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz) data files")
    data: list[Path] = option([], "data files (override --data-dir)")
    install: bool = option(False, f"install the int8 bundle to {DEFAULT_BUNDLE_DIR} at the end")
    device: str = option("auto", "auto, cpu or cuda", choices=["auto", "cpu", "cuda"])
    threads: int | None = option(None, "torch / onnxruntime CPU threads")
    seed: int = option(0, "random seed of every stage")


def run(config: AllConfig, preset: str | Path | None) -> Path:
    """Run the stages; returns the int8 bundle folder."""
    root = config.output_dir
    prepare_output_dir(root, overwrite=True)
    common = {"data_dir": config.data_dir, "data": config.data, "seed": config.seed}
    system = {"device": config.device, "threads": config.threads}
    fresh = {"overwrite_output_dir": config.overwrite_output_dir}

    def stage_config(cls: type, stage: str, **values):
        return build_config(cls, stage, argparse.Namespace(**values), preset)

    tok = stage_config(
        tokenizer.TokenizerConfig, "tokenizer", output_dir=root / "tokenizer", **common, **fresh
    )
    tokenizer_path = tok.output_dir / tokenizer.TOKENIZER_FILE
    if tokenizer_path.is_file() and not config.overwrite_output_dir:
        log.info("all: keeping the tokenizer in %s", tokenizer_path)
    else:
        tok.overwrite_output_dir = True
        tokenizer.run(tok)

    pre = stage_config(
        pretrain.PretrainConfig,
        "pretrain",
        output_dir=root / "pretrain",
        tokenizer=tokenizer_path,
        **common, **system, **fresh,
    )  # fmt: skip
    pretrain.run(pre)

    fine = stage_config(
        finetune.FinetuneConfig,
        "finetune",
        output_dir=root / "finetune",
        pretrained=pre.output_dir,
        **common, **system, **fresh,
    )  # fmt: skip
    finetune.run(fine)

    ev = stage_config(
        evaluate.EvaluateConfig,
        "evaluate",
        output_dir=root / "evaluate",
        model=fine.output_dir,
        overwrite_output_dir=True,
        **common, **system,
    )  # fmt: skip
    evaluate.run(ev)

    ex = stage_config(
        export.ExportConfig,
        "export",
        output_dir=root / "export",
        model=fine.output_dir,
        metrics=ev.output_dir / "metrics.json",
        install=config.install,
        overwrite_output_dir=True,
        threads=config.threads,
        **common,
    )
    bundle = export.run(ex)

    shipped = stage_config(
        evaluate.EvaluateConfig,
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
