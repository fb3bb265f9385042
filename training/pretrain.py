"""`treelens-train pretrain`: masked-language-model pretraining of a Longformer from scratch.

Reads top to bottom in the order it runs: setup -> data -> model -> optimizer and
schedule -> loop (this epoch's views, some trees with files dropped; mask, forward, skip
non-finite losses, clip, step, log, evaluate and checkpoint every N steps) -> final
evaluation -> save. The masking probability decays linearly from 0.38 to 0.08 across
epochs (the seed report's schedule): early epochs make the model fill in most of a
tree, later ones refine. A kill at any point loses at most ``checkpoint_steps`` steps:
the run resumes from ``checkpoint.pt``. With ``--summary-weight`` the mean of each segment's
states also predicts the text's TF-IDF summary (training/summary.py), a second label-free
loss beside the masked tokens.
Runs unchanged under ``torchrun --nproc_per_node N`` (DistributedDataParallel).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm
from transformers import (
    DataCollatorForLanguageModeling,
    LongformerForMaskedLM,
    PreTrainedTokenizerFast,
    get_linear_schedule_with_warmup,
)

from treelens.model.tokenizer import encode_batch, line_counter, load_tokenizer
from treelens.model.tree import ProjectTree
from treelens.training import modeling
from treelens.training.longformer_fast import fast_longformer
from treelens.training.modeling import Architecture, RunContext, count
from treelens.training.options import to_json
from treelens.training.pooling import SEGMENTS, cls_global_mask, segment_means
from treelens.training.run_layout import (
    HF_SPECIAL_TOKENS,
    MODEL_DIR,
    TOKENIZER_FILE,
    save_hf_files,
    write_metrics,
)
from treelens.training.stage_configs import PretrainConfig
from treelens.training.summary import Summary
from treelens.training.texts import (
    SubtreeRule,
    epoch_views,
    labelled_splits,
    load_records,
    pretraining_trees,
    render,
    train_only_records,
)

log = logging.getLogger(__name__)

EVAL_MLM_PROBABILITY = 0.15


def build_architecture(config: PretrainConfig, vocab_size: int) -> Architecture:
    return Architecture(
        layers=config.layers,
        hidden=config.hidden,
        heads=config.heads,
        intermediate=config.intermediate,
        attention_window=config.attention_window,
        max_tokens=config.max_tokens,
        vocab_size=vocab_size,
        dropout=config.dropout,
    )


def mlm_probability(config: PretrainConfig, epoch: int) -> float:
    """Linear decay from the start to the end probability across epochs."""
    if config.epochs <= 1:
        return config.mlm_probability_start
    share = epoch / (config.epochs - 1)
    return config.mlm_probability_start + share * (config.mlm_probability_end - config.mlm_probability_start)


def hf_tokenizer(tokenizer_path: Path) -> PreTrainedTokenizerFast:
    """The transformers view of our tokenizer, for the MLM collator."""
    return PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_path), **HF_SPECIAL_TOKENS)


def pretraining_data(config: PretrainConfig, counter) -> tuple[list[ProjectTree], list[str]]:
    """Training trees (every record but the held-out splits, plus sub-trees; each epoch
    renders some of them again with files dropped) and eval texts.

    The labelled validation and test splits are kept out: validation measures the MLM
    loss on unseen projects, and the test split is never seen by any stage but evaluate.
    ``--train-data``'s trees join the training trees (their labels unused): the annotated
    repositories are trees the Longformer otherwise never reads.
    """
    records = load_records(config.data, config.data_dir)
    splits = labelled_splits(records)
    held_out = {r.id for r in splits["validation"] + splits["test"]}
    train_records = [r for r in records if r.id not in held_out]
    train_records += train_only_records(config.train_data, records)
    trees = pretraining_trees(train_records, SubtreeRule() if config.subtrees else None)
    evaluation = render(
        [r.tree for r in splits["validation"]][: config.max_eval_samples], config.max_tokens, counter
    )
    return trees[: config.max_train_samples], evaluation


def evaluate_mlm(model, collator, ids: list[list[int]], config: PretrainConfig, ctx: RunContext) -> dict:
    """MLM loss and perplexity on the eval texts with a fixed masking (same masks every call)."""
    if not ids:
        return {}
    model.eval()
    previous = collator.mlm_probability
    collator.mlm_probability = EVAL_MLM_PROBABILITY
    total, weight = 0.0, 0
    try:
        with torch.no_grad(), torch.random.fork_rng(), ctx.autocast():
            torch.manual_seed(config.seed)
            for start in range(0, len(ids), config.batch_size):
                batch = collator([{"input_ids": x} for x in ids[start : start + config.batch_size]])
                masked = int((batch["labels"] != -100).sum())
                if masked == 0:
                    continue
                loss, _ = model(**{k: v.to(ctx.device) for k, v in batch.items()})
                total += float(loss) * masked
                weight += masked
    finally:  # training goes on with its own masking rate and mode
        collator.mlm_probability = previous
        model.train()
    loss = total / max(weight, 1)
    return {
        "eval_loss": round(loss, 5),
        "perplexity": round(math.exp(min(loss, 50)), 3),
        "eval_samples": len(ids),
    }


class MaskedLMObjective(torch.nn.Module):
    """LongformerForMaskedLM's loss, with its 8,000-way output layer run only on the masked
    positions (8-38% of tokens) instead of all of them: the same mean cross-entropy over
    masked tokens, at a fraction of the cost. DDP wraps this module, so its forward is
    the training step's whole forward.

    With ``summary_dimensions``, a linear layer (``summary``, trained here and never saved
    with the model) reads the mean of each segment's states and predicts the text's
    summary; ``forward`` then also returns that mean squared error (0 without targets).
    With ``summary_cls`` [CLS] attends globally, as the classifier has it attend, and the
    layer reads its state too: masked tokens alone never train the global projections that
    a ``probe-cls`` head reads through.
    """

    def __init__(
        self, model: LongformerForMaskedLM, summary_dimensions: int = 0, summary_cls: bool = False
    ) -> None:
        super().__init__()
        self.model = model
        self.summary_cls = summary_cls
        width = (SEGMENTS + summary_cls) * model.config.hidden_size
        self.summary = torch.nn.Linear(width, summary_dimensions) if summary_dimensions else None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        summary: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked-token cross-entropy, summary mean squared error)."""
        global_mask = cls_global_mask(input_ids) if self.summary_cls else None
        hidden = self.model.longformer(
            input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_mask
        )[0]
        masked = labels != -100
        if masked.any():
            logits = self.model.lm_head(hidden[masked])
            mlm = torch.nn.functional.cross_entropy(logits.float(), labels[masked])
        else:
            mlm = hidden.sum() * 0.0
        if self.summary is None or summary is None:
            return mlm, mlm.new_zeros(())
        # segments from the unmasked text: a masked position's random replacement may be a [SEP]
        original = torch.where(masked, labels, input_ids)
        pooled = segment_means(hidden, original, attention_mask, self.model.config.sep_token_id)
        if self.summary_cls:
            pooled = torch.cat([pooled, hidden[:, 0]], dim=-1)
        return mlm, torch.nn.functional.mse_loss(self.summary(pooled).float(), summary)


def run(config: PretrainConfig) -> Path:
    """Pretrain; returns the folder of the saved LongformerForMaskedLM."""
    with fast_longformer():  # exact, faster attention (training/longformer_fast.py)
        return _run(config)


def _run(config: PretrainConfig) -> Path:
    # setup ------------------------------------------------------------------------------
    tokenizer = load_tokenizer(config.tokenizer)  # before anything is written: a wrong path fails fast
    ctx, checkpoint_path, resume = modeling.start_run(
        config.output_dir, config.overwrite_output_dir, config.device, config.threads, config.seed
    )

    # data -------------------------------------------------------------------------------
    counter = line_counter(tokenizer)
    train_trees, eval_texts = pretraining_data(config, counter)
    train_ids = encode_batch(tokenizer, render(train_trees, config.max_tokens, counter), config.max_tokens)
    eval_ids = encode_batch(tokenizer, eval_texts, config.max_tokens)
    lengths = [len(x) for x in train_ids]
    text_summary = (
        Summary(tokenizer, train_ids, seed=config.seed, dimensions=config.summary_dimensions)
        if config.summary_weight > 0
        else None
    )
    collator = DataCollatorForLanguageModeling(
        hf_tokenizer(config.tokenizer),
        mlm_probability=config.mlm_probability_start,
        pad_to_multiple_of=config.attention_window,
    )

    # model ------------------------------------------------------------------------------
    state = modeling.load_checkpoint(checkpoint_path) if resume else None
    architecture = (
        Architecture(**state["model_args"])
        if state
        else build_architecture(config, tokenizer.get_vocab_size())
    )
    mlm = LongformerForMaskedLM(architecture.longformer_config(tokenizer))
    objective = MaskedLMObjective(mlm, text_summary.dimensions if text_summary else 0, config.summary_cls).to(
        ctx.device
    )
    if state:
        modeling.check_summary_layer(
            state,
            checkpoint_path,
            config.summary_weight,
            config.summary_cls,
            text_summary.dimensions if text_summary else None,
        )
        mlm.load_state_dict(state["model"])
        if objective.summary is not None:
            objective.summary.load_state_dict(state["summary_head"])
    model: torch.nn.Module = objective
    if ctx.distributed:
        # MLM gives no token global attention (but --summary-cls does), so the global
        # projections may get no gradient
        model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    # optimizer and schedule ---------------------------------------------------------------
    batches_per_epoch = len(modeling.length_batches(lengths, config.batch_size, config.seed, 0, ctx))
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    optimizer = torch.optim.AdamW(
        modeling.decay_groups(model, config.weight_decay),
        lr=config.learning_rate,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    step, epoch, skip, nan_batches = 0, 0, 0, 0
    history: list[dict] = []
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, skip, nan_batches = state["step"], state["epoch"], state["batch"], state["nan_batches"]
        history = state["history"]
        modeling.set_rng_state(state["rng"])
        log.info(
            "pretrain: resuming from %s at step %d (epoch %d, batch %d)", checkpoint_path, step, epoch, skip
        )
    if ctx.main:
        log.info(
            "pretrain: %s",
            ctx.summary(
                train_samples=len(train_ids),
                eval_samples=len(eval_ids),
                steps=total_steps,
                parameters=count(model),
            ),
        )

    model_dir = config.output_dir / MODEL_DIR
    if step >= total_steps and model_dir.is_dir():  # a finished run (`all` keeps one): nothing to redo
        if ctx.main:
            log.info("pretrain: already finished at step %d; %s and its results are kept", step, model_dir)
        modeling.teardown_run(ctx)
        return model_dir

    def checkpoint(next_epoch: int, next_batch: int) -> None:
        if ctx.main:
            modeling.save_checkpoint(
                checkpoint_path,
                {
                    "model": mlm.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "model_args": asdict(architecture),
                    "config": to_json(config),
                    "step": step,
                    "epoch": next_epoch,
                    "batch": next_batch,
                    "nan_batches": nan_batches,
                    "rng": modeling.rng_state(),
                    "history": history,
                    **(
                        {"summary_head": objective.summary.state_dict()}
                        if objective.summary is not None
                        else {}
                    ),
                },
            )

    # loop -------------------------------------------------------------------------------
    model.train()
    started, tokens_seen, losses, summary_losses = time.perf_counter(), 0, [], []
    progress = tqdm(total=total_steps, initial=step, desc="pretrain", disable=not ctx.main, mininterval=5)
    while epoch < config.epochs and step < total_steps:
        collator.mlm_probability = mlm_probability(config, epoch)
        epoch_ids = epoch_views(train_trees, train_ids, config, epoch, tokenizer, config.max_tokens, counter)
        batches = modeling.length_batches(
            [len(x) for x in epoch_ids], config.batch_size, config.seed, epoch, ctx
        )
        summary_targets = text_summary.targets(epoch_ids) if text_summary else None
        for index, batch_indices in modeling.iterate(batches, skip):
            # forward one micro-batch; a non-finite loss on any process skips the batch everywhere
            batch = collator([{"input_ids": epoch_ids[i]} for i in batch_indices])
            if summary_targets is not None:
                batch["summary"] = torch.from_numpy(summary_targets[batch_indices])
            batch = {k: v.to(ctx.device) for k, v in batch.items()}
            last_micro = (index + 1) % config.grad_accum == 0 or index + 1 == len(batches)
            with modeling.no_sync(model, not last_micro):
                with ctx.autocast():
                    mlm_loss, summary_loss = model(**batch)
                    loss = mlm_loss + config.summary_weight * summary_loss
                finite = all_finite(loss, ctx)
                (loss / config.grad_accum if finite else modeling.zero_loss(model)).backward()
            if not finite:
                nan_batches += 1
                optimizer.zero_grad(set_to_none=True)
                continue
            tokens_seen += int(batch["attention_mask"].sum())
            losses.append(mlm_loss.item())
            summary_losses.append(summary_loss.item())
            if not last_micro:
                continue
            # optimizer step: clip, step, schedule
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            progress.update(1)
            # log
            if step % config.log_steps == 0 or step == total_steps:
                rate = tokens_seen * ctx.world_size / (time.perf_counter() - started)
                mean = sum(losses) / len(losses)
                summary_mean = sum(summary_losses) / len(summary_losses)
                progress.set_postfix(
                    loss=f"{mean:.3f}", tok_s=f"{rate:.0f}", mlm_p=f"{collator.mlm_probability:.2f}"
                )
                if ctx.main:
                    log.info(
                        "pretrain: step %d/%d epoch %d loss %.4f%s lr %.2e %.0f tokens/s nan-skipped %d",
                        step, total_steps, epoch, mean,
                        f" summary mse {summary_mean:.4f}" if text_summary else "",
                        scheduler.get_last_lr()[0], rate, nan_batches,
                    )  # fmt: skip
                losses, summary_losses = [], []
            # evaluate and checkpoint
            if step % config.checkpoint_steps == 0:
                if ctx.main:
                    metrics = evaluate_mlm(modeling.unwrap(model), collator, eval_ids, config, ctx)
                    history.append({"step": step, "epoch": epoch, **metrics})
                    log.info("pretrain: step %d eval %s", step, metrics)
                checkpoint(epoch, index + 1)
            if step >= total_steps:
                break  # the while condition ends the run
        else:  # the epoch ran to its end: the next one starts at its first batch
            epoch, skip = epoch + 1, 0
    progress.close()

    # final evaluation and save ------------------------------------------------------------
    seconds = time.perf_counter() - started
    if ctx.main:
        checkpoint(epoch, 0)
        final = evaluate_mlm(modeling.unwrap(model), collator, eval_ids, config, ctx)
        mlm.save_pretrained(model_dir)
        shutil.copyfile(config.tokenizer, config.output_dir / TOKENIZER_FILE)
        save_hf_files(config.output_dir, config.max_tokens)
        train_metrics = {
            "steps": step,
            "epochs_done": round(step / steps_per_epoch, 2),
            "nan_batches_skipped": nan_batches,
            "train_samples": len(train_ids),
            "seconds_this_session": round(seconds, 1),
            "tokens_per_second": round(tokens_seen * ctx.world_size / max(seconds, 1e-9)),
        }
        write_metrics(config.output_dir, {"train": train_metrics, "validation": final, "history": history})
        log.info("pretrain: done, eval %s; model in %s", final, model_dir)
    if ctx.distributed:
        dist.barrier()
    modeling.teardown_run(ctx)
    return model_dir


def all_finite(loss: torch.Tensor, ctx: RunContext) -> bool:
    """Whether the loss is finite on every process (one all-reduce under torchrun)."""
    finite = torch.isfinite(loss.detach()).to(torch.float32).reshape(1)
    if ctx.distributed:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())
