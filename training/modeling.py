"""What the torch stages share: the architecture, the run context (device, dtype,
DistributedDataParallel under torchrun), batching, checkpoints and prediction.

Batches group texts of similar length and pad only to the batch's longest text,
rounded up to the attention window (Longformer pads to a multiple of the window
anyway), so a 300-token project does not pay for 4,096 positions.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tokenizers import Tokenizer
from transformers import LongformerConfig

from treelens.model.errors import UsageError
from treelens.model.labels import LABELS
from treelens.model.tokenizer import CLS, PAD, SEP, UNK
from treelens.training.options import StageError, prepare_output_dir
from treelens.training.run_layout import CHECKPOINT_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Architecture:
    """Longformer size; stored in checkpoints and rebuilt from there on resume."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    attention_window: int
    max_tokens: int
    vocab_size: int
    dropout: float = 0.1

    def longformer_config(self, tokenizer: Tokenizer, **extra: Any) -> LongformerConfig:
        pad = tokenizer.token_to_id(PAD)
        if self.max_tokens % self.attention_window:
            raise UsageError(
                f"max_tokens {self.max_tokens} must be a multiple of attention_window {self.attention_window}"
            )
        return LongformerConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            intermediate_size=self.intermediate,
            attention_window=self.attention_window,
            # RoBERTa-style positions start after the padding id
            max_position_embeddings=self.max_tokens + pad + 1,
            hidden_dropout_prob=self.dropout,
            attention_probs_dropout_prob=self.dropout,
            type_vocab_size=1,
            pad_token_id=pad,
            bos_token_id=tokenizer.token_to_id(CLS),
            eos_token_id=tokenizer.token_to_id(SEP),
            sep_token_id=tokenizer.token_to_id(SEP),
            unk_token_id=tokenizer.token_to_id(UNK),
            **extra,
        )

    @classmethod
    def of(cls, config: LongformerConfig) -> Architecture:
        """The size of an existing model (the inverse of ``longformer_config``)."""
        return cls(
            layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            heads=config.num_attention_heads,
            intermediate=config.intermediate_size,
            attention_window=attention_window_of(config),
            max_tokens=max_tokens_of(config),
            vocab_size=config.vocab_size,
            dropout=config.hidden_dropout_prob,
        )


def max_tokens_of(config: LongformerConfig) -> int:
    """The longest input a model holds: its position table less the RoBERTa-style offset
    (positions start after the padding id), as ``Architecture.longformer_config`` sets it."""
    return config.max_position_embeddings - config.pad_token_id - 1


def attention_window_of(config: LongformerConfig) -> int:
    """The attention window as one int (transformers allows one per layer; ours are equal)."""
    window = config.attention_window
    return window if isinstance(window, int) else window[0]


def window_of(model: torch.nn.Module) -> int:
    """A model's attention window as one int."""
    return attention_window_of(unwrap(model).config)


def count(model: torch.nn.Module) -> int:
    """Parameters of ``model`` (for the start-up summary)."""
    return sum(p.numel() for p in model.parameters())


def classifier_labels() -> dict[str, Any]:
    """LongformerConfig keys for the multi-label head, in LABELS order."""
    return {
        "num_labels": len(LABELS),
        "problem_type": "multi_label_classification",
        "id2label": dict(enumerate(LABELS)),
        "label2id": {name: i for i, name in enumerate(LABELS)},
    }


@dataclass(frozen=True)
class RunContext:
    """Where this process runs: device, autocast dtype and its place under torchrun."""

    device: torch.device
    dtype: torch.dtype
    rank: int
    world_size: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on GPU, plain fp32 on CPU."""
        if self.dtype == torch.bfloat16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def summary(self, **counts: int) -> str:
        parts = [f"device {self.device}", f"dtype {str(self.dtype).removeprefix('torch.')}"]
        parts.append(f"world size {self.world_size}")
        parts.extend(f"{name.replace('_', ' ')} {n}" for name, n in counts.items())
        return ", ".join(parts)


def setup_run(device: str, threads: int | None) -> RunContext:
    """Pick the device and, under torchrun (RANK/WORLD_SIZE set), join the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but torch sees no GPU; use --device cpu")
        torch_device = torch.device("cuda", local_rank)
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device("cpu")
    if threads:
        torch.set_num_threads(threads)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch_device.type == "cuda" else "gloo")
    dtype = (
        torch.bfloat16 if torch_device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    )
    return RunContext(torch_device, dtype, rank, world_size, local_rank)


def start_run(
    output_dir: Path, overwrite: bool, device: str, threads: int | None, seed: int
) -> tuple[RunContext, Path, bool]:
    """What pretrain and finetune do first: set up the process, prepare ``output_dir``
    (the main process only) and seed. Returns the context, the checkpoint path and
    whether to resume from it (it exists and ``overwrite`` was not asked for)."""
    ctx = setup_run(device, threads)
    checkpoint_path = output_dir / CHECKPOINT_FILE
    resume = checkpoint_path.is_file() and not overwrite
    if ctx.main:
        prepare_output_dir(output_dir, overwrite, resume_ok=resume)
        if overwrite:
            checkpoint_path.unlink(missing_ok=True)
    seed_everything(seed)
    return ctx, checkpoint_path, resume


def teardown_run(ctx: RunContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def predict(model, ids: list[list[int]], pad_id: int, batch_size: int, ctx: RunContext) -> np.ndarray:
    """Sigmoid probabilities of a classifier, one row per text (eval mode, no gradients)."""

    def probabilities(input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(model(input_ids=input_ids, attention_mask=mask).logits.float())

    return batched_rows(model, probabilities, ids, pad_id, batch_size, ctx)


def batched_rows(
    model: torch.nn.Module,
    rows_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ids: list[list[int]],
    pad_id: int,
    batch_size: int,
    ctx: RunContext,
) -> np.ndarray:
    """``rows_of(input_ids, attention_mask)`` over every text, one float32 row per text in
    ``ids`` order: texts of similar length batched together, eval mode, no gradients."""
    was_training = model.training
    model.eval()
    window = window_of(model)
    rows: dict[int, np.ndarray] = {}
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.no_grad(), ctx.autocast():
        for start in range(0, len(order), batch_size):
            part = order[start : start + batch_size]
            input_ids, mask = pad_batch([ids[i] for i in part], pad_id, window)
            out = rows_of(input_ids.to(ctx.device), mask.to(ctx.device))
            rows.update(zip(part, out.float().cpu().numpy(), strict=True))
    model.train(was_training)
    if not rows:
        return np.zeros((0, len(LABELS)), dtype=np.float32)
    return np.stack([rows[i] for i in range(len(ids))]).astype(np.float32)


def length_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, ctx: RunContext
) -> list[list[int]]:
    """This rank's batches of one epoch: similar lengths together, batch order shuffled.

    Indices are shuffled, cut into chunks of 50 batches, sorted by length inside a chunk,
    and batched; the batch order is then shuffled. Under torchrun every rank gets the
    same number of batches (the list is padded by repeating its first batches, as
    DistributedSampler pads), so DDP's collective calls line up.
    """
    rng = random.Random(seed * 1000 + epoch)  # noqa: S311 - shuffling, not security
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    missing = -len(batches) % ctx.world_size
    batches.extend(itertools.islice(itertools.cycle(batches), missing))
    return batches[ctx.rank :: ctx.world_size]


def pad_batch(ids: Sequence[list[int]], pad_id: int, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask padded to the longest, rounded up to ``multiple``."""
    width = math.ceil(max(len(x) for x in ids) / multiple) * multiple
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[row, : len(x)] = 1
    return input_ids, mask


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def decay_groups(
    model: torch.nn.Module, weight_decay: float, lr: float | None = None
) -> list[dict[str, Any]]:
    """AdamW groups: matrices decay, biases and LayerNorm weights (rank < 2) do not; with
    ``lr``, at that learning rate instead of the optimizer's."""
    params = [p for p in model.parameters() if p.requires_grad]
    rate = {} if lr is None else {"lr": lr}
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, **rate},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, **rate},
    ]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def check_summary_layer(
    state: dict[str, Any],
    path: Path,
    summary_weight: float,
    summary_cls: bool = False,
    summary_dimensions: int | None = None,
) -> None:
    """Refuse a resume whose checkpoint disagrees about the summary layer (``--summary-weight``
    or ``--summary-cls`` on one side only, or another number of summary dimensions, when the
    run names one): its weights and optimizer state would not fit the run."""
    saved = state.get("config", {})
    if ("summary_head" in state) != (summary_weight > 0):
        raise StageError(
            f"{path} was written with --summary-weight {saved.get('summary_weight', 0.0):g}, not "
            f"{summary_weight:g}; pass the same --summary-weight, or --overwrite-output-dir to start over"
        )
    if saved.get("summary_cls", False) != summary_cls:
        raise StageError(
            f"{path} was written with{'out' if summary_cls else ''} --summary-cls; pass the same, or "
            "--overwrite-output-dir to start over"
        )
    if summary_dimensions is None or "summary_head" not in state:
        return
    written = state["summary_head"]["weight"].shape[0]
    if written != summary_dimensions:
        raise StageError(
            f"{path} was written with a {written}-dimension summary, not {summary_dimensions}; pass the same "
            "--summary-dimensions, or --overwrite-output-dir to start over"
        )


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])


def no_sync(model: torch.nn.Module | None, skip_sync: bool) -> AbstractContextManager:
    """DDP's no_sync for micro-batches that only accumulate gradients; a no-op otherwise
    (and for no module at all)."""
    if skip_sync and isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return nullcontext()


def zero_loss(model: torch.nn.Module) -> torch.Tensor:
    """A zero that touches every parameter: the backward of a skipped (non-finite) batch,
    so DDP's gradient reduction still completes on every process."""
    return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0


def iterate(batches: list[list[int]], skip: int) -> Iterator[tuple[int, list[int]]]:
    """(index, batch) pairs from ``skip`` on: a resumed epoch continues where it stopped."""
    for index in range(skip, len(batches)):
        yield index, batches[index]
