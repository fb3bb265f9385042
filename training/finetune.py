"""`treelens-train finetune`: the multi-label classifier on top of the pretrained Longformer.

Reads in run order: setup -> data (the report's split rule, the test split held out)
-> model (LongformerForSequenceClassification from the pretrained MLM; [CLS] gets
global attention) -> optimizer and schedule (the report's epoch rule) -> one epoch at a
time: train with BCEWithLogitsLoss, evaluate on validation, check for overfitting
(validation loss > 5x training loss), keep the best epoch by validation macro-F1, stop
early, checkpoint (with ``--head-epochs N`` the first N epochs train the head alone; with
a probe pooling, ``probe`` or ``probe-cls``, there are no epochs: the head is a logistic
regression fit on the frozen pretrained states of training + validation records,
training/probe.py) -> tune per-label
thresholds (on out-of-fold predictions over training + validation records: with the probe
the mix's own, else the wide path's; on validation without a wide path) -> save. Runs
unchanged under ``torchrun --nproc_per_node N``; a killed run resumes from its last epoch.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm
from transformers import (
    LongformerConfig,
    LongformerForSequenceClassification,
    get_linear_schedule_with_warmup,
)

from treelens.model.dataset import Record, label_counts
from treelens.model.labels import LABELS, UNTUNED_THRESHOLD
from treelens.model.tokenizer import PAD, encode_batch, line_counter, load_tokenizer
from treelens.training import modeling, pooling, probe, wide
from treelens.training.longformer_fast import fast_longformer
from treelens.training.metrics import apply_thresholds, multilabel_metrics, tune_thresholds
from treelens.training.options import StageError, to_json
from treelens.training.run_layout import (
    CHECKPOINT_FILE,
    DATA_SUMMARY_FILE,
    MODEL_DIR,
    THRESHOLDS_FILE,
    TOKENIZER_FILE,
    check_pretrained,
    save_hf_files,
    write_metrics,
)
from treelens.training.stage_configs import PROBES, FinetuneConfig, parse_label_weights
from treelens.training.summary import Summary
from treelens.training.texts import epoch_views, labelled_splits, load_records, render, train_only_records

log = logging.getLogger(__name__)

MAX_POS_WEIGHT = 5.0


def init_global_attention(model: LongformerForSequenceClassification, uniform: bool) -> None:
    """Start each layer's global query/key/value from its local ones.

    MLM pretraining gives no token global attention, so the global projections leave it
    as they were initialised, at random; yet [CLS] reads the tree only through them.
    Copying the trained local projections (as Longformer itself was started from
    RoBERTa's) gives [CLS] a meaningful attention from the first step. ``uniform`` also
    zeroes the global query: [CLS] then starts as the mean of every token's value (a
    bag of contextual tokens, quick to fit on few examples) and learns where to look.
    """
    with torch.no_grad():
        for layer in model.longformer.encoder.layer:
            attention = layer.attention.self
            for local, global_ in (
                (attention.query, attention.query_global),
                (attention.key, attention.key_global),
                (attention.value, attention.value_global),
            ):
                global_.weight.copy_(local.weight)
                global_.bias.copy_(local.bias)
            if uniform:
                attention.query_global.weight.zero_()
                attention.query_global.bias.zero_()


def untuned_macro_f1(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Macro-F1 at the untuned threshold (0.5): what picks the best epoch, before thresholds."""
    untuned = apply_thresholds(probabilities, [UNTUNED_THRESHOLD] * len(LABELS))
    return multilabel_metrics(y, untuned)["macro_f1"]


def bce_loss(probabilities: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def run(config: FinetuneConfig) -> Path:
    """Finetune; returns the folder of the saved classifier."""
    with fast_longformer():  # exact, faster attention (training/longformer_fast.py)
        return _run(config)


def _run(config: FinetuneConfig) -> Path:
    data = load_records(config.data, config.data_dir)
    splits = labelled_splits(data)
    train_only = train_only_records(config.train_data, data)
    splits["train"] = splits["train"] + train_only
    summary = {
        "records": {name: len(records) for name, records in splits.items()},
        "labels": {name: label_counts(records) for name, records in splits.items()},
        "train_only": len(train_only),
    }
    return fit(config, splits["train"], splits["validation"], summary)


def fit(
    config: FinetuneConfig, train_records: list[Record], val_records: list[Record], summary: dict
) -> Path:
    """Finetune on ``train_records``, pick the epoch and the thresholds on ``val_records``;
    returns the folder of the saved classifier. ``summary`` describes the data for the
    bundle's manifest. Cross-validation calls this once per fold."""
    # setup ------------------------------------------------------------------------------
    pretrained_model = config.pretrained / MODEL_DIR
    tokenizer_path = config.pretrained / TOKENIZER_FILE
    check_pretrained(config.pretrained)
    probing = config.pooling in PROBES
    # a probe keeps no checkpoint (it takes a minute): run again, it is fit again in its folder;
    # a folder with another run's checkpoint still resumes, and refuses the other pooling
    fresh = config.overwrite_output_dir or (probing and not (config.output_dir / CHECKPOINT_FILE).is_file())
    ctx, checkpoint_path, resume = modeling.start_run(
        config.output_dir, fresh, config.device, config.threads, config.seed
    )

    # data -------------------------------------------------------------------------------
    tokenizer = load_tokenizer(tokenizer_path)
    pad_id = tokenizer.token_to_id(PAD)
    counter = line_counter(tokenizer)
    architecture = modeling.Architecture.of(LongformerConfig.from_pretrained(pretrained_model))
    max_tokens = architecture.max_tokens
    train_records = train_records[: config.max_train_samples]
    val_records = val_records[: config.max_eval_samples]
    if not train_records or not val_records:
        raise StageError(
            f"finetuning needs labelled records in both train and validation splits, got "
            f"{len(train_records)} and {len(val_records)}; add labelled records"
        )
    y_train = np.array([r.labels for r in train_records], dtype=np.float32)
    y_val = np.array([r.labels for r in val_records], dtype=np.float32)
    y_all = np.concatenate([y_train, y_val])
    train_ids = encode_batch(
        tokenizer, render([r.tree for r in train_records], max_tokens, counter), max_tokens
    )
    val_ids = encode_batch(tokenizer, render([r.tree for r in val_records], max_tokens, counter), max_tokens)
    epochs = 0 if probing else config.epochs_for(len(train_records))
    targets_train = y_train
    if config.distill_weight > 0:
        teacher = wide.out_of_fold_probabilities(tokenizer, train_ids, y_train, seed=config.seed)
        targets_train = (1 - config.distill_weight) * y_train + config.distill_weight * teacher
    text_summary = Summary(tokenizer, train_ids, seed=config.seed) if config.summary_weight > 0 else None

    # model ------------------------------------------------------------------------------
    model = pooling.new_classifier(pretrained_model, config.pooling, **modeling.classifier_labels())
    if config.global_init != "random" and not probing:  # the probe reads the pretrained model as it is
        init_global_attention(model, uniform=config.global_init == "mean")
    # the summary's own output layer: trained beside the head, never saved with the model
    summary_head = None
    if text_summary is not None:
        summary_head = torch.nn.Linear(model.config.hidden_size, text_summary.dimensions).to(ctx.device)
    model.to(ctx.device)
    state = modeling.load_checkpoint(checkpoint_path) if resume else None
    if state:
        if state.get("model_args") != asdict(architecture):
            raise StageError(
                f"{checkpoint_path} was written for a model of size {state.get('model_args')}, but "
                f"--pretrained {config.pretrained} holds {asdict(architecture)}; pass the same "
                "--pretrained, or --overwrite-output-dir to start over"
            )
        saved_pooling = state.get("config", {}).get("pooling", "cls")
        if saved_pooling != config.pooling:
            raise StageError(
                f"{checkpoint_path} was written with --pooling {saved_pooling}, not {config.pooling}; "
                "pass the same --pooling, or --overwrite-output-dir to start over"
            )
        modeling.check_summary_layer(state, checkpoint_path, config.summary_weight)
        saved_rate = state.get("config", {}).get("encoder_learning_rate")
        if (saved_rate is None) != (config.encoder_learning_rate is None):
            # the optimizer's parameter groups differ: its saved state would not fit
            raise StageError(
                f"{checkpoint_path} was written with --encoder-learning-rate {saved_rate or 'unset'}, "
                f"not {config.encoder_learning_rate or 'unset'}; pass the same setting, or "
                "--overwrite-output-dir to start over"
            )
        model.load_state_dict(state["model"])
        if summary_head is not None:
            summary_head.load_state_dict(state["summary_head"])
    if ctx.distributed:
        # each trained module gets its own wrapper, so every rank's gradients are averaged;
        # a frozen encoder (--head-epochs) leaves its parameters without gradients for a while
        model = torch.nn.parallel.DistributedDataParallel(
            model, find_unused_parameters=config.head_epochs > 0
        )
        if summary_head is not None:
            summary_head = torch.nn.parallel.DistributedDataParallel(summary_head)
    positives = y_train.sum(axis=0)
    weight = np.minimum((len(y_train) - positives) / np.maximum(positives, 1), MAX_POS_WEIGHT)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(weight, dtype=torch.float32, device=ctx.device) if config.pos_weight else None
    )

    # optimizer and schedule ---------------------------------------------------------------
    lengths = [len(x) for x in train_ids]
    batches_per_epoch = len(modeling.length_batches(lengths, config.batch_size, config.seed, 0, ctx))
    total_steps = epochs * math.ceil(batches_per_epoch / config.grad_accum)
    if config.encoder_learning_rate is None:
        groups = modeling.decay_groups(model, config.weight_decay)
    else:
        classifier = modeling.unwrap(model)
        groups = [
            *modeling.decay_groups(classifier.longformer, config.weight_decay, config.encoder_learning_rate),
            *modeling.decay_groups(classifier.classifier, config.weight_decay),
        ]
    if summary_head is not None:
        groups.extend(modeling.decay_groups(summary_head, config.weight_decay))
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    epoch, best_f1, best_epoch, best_state, history = 0, -1.0, -1, None, []
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch, best_f1, best_epoch = state["epoch"], state["best_f1"], state["best_epoch"]
        best_state, history = state["best_state"], state["history"]
        modeling.set_rng_state(state["rng"])
        log.info(
            "finetune: resuming from %s after epoch %d (best macro-F1 %.4f)", checkpoint_path, epoch, best_f1
        )
    if ctx.main:
        log.info(
            "finetune: %s",
            ctx.summary(
                train_samples=len(train_ids),
                eval_samples=len(val_ids),
                epochs=epochs,
                parameters=modeling.count(model),
            ),
        )

    probe_oof = None
    if probing:
        log.info(
            "finetune: --pooling %s: fitting the head on the frozen states of %d texts",
            config.pooling, len(y_all),
        )  # fmt: skip
        classifier = modeling.unwrap(model)
        probe_oof = probe.fit_head(classifier, [*train_ids, *val_ids], y_all, pad_id, config.seed, ctx)
        best_state = copy.deepcopy(classifier.state_dict())
        best_f1 = untuned_macro_f1(probe_oof[len(train_ids) :], y_val)

    # loop: one epoch at a time ------------------------------------------------------------
    started = time.perf_counter()
    train_trees = [r.tree for r in train_records]
    patience = config.early_stopping_patience
    # patience counts from the best epoch, and never from before the whole model learns
    while epoch < epochs and epoch - max(best_epoch, config.head_epochs - 1) <= patience:
        epoch_ids = epoch_views(train_trees, train_ids, config, epoch, tokenizer, max_tokens, counter)
        batches = modeling.length_batches(
            [len(x) for x in epoch_ids], config.batch_size, config.seed, epoch, ctx
        )
        summary_targets = text_summary.targets(epoch_ids) if text_summary else None
        # LP-FT: the encoder learns only once the head has been fit on its pretrained states
        modeling.unwrap(model).longformer.requires_grad_(epoch >= config.head_epochs)
        model.train()
        losses = []
        for index, batch_indices in tqdm(
            list(modeling.iterate(batches, 0)),
            desc=f"finetune epoch {epoch}",
            disable=not ctx.main,
            mininterval=5,
        ):
            input_ids, mask = modeling.pad_batch(
                [epoch_ids[i] for i in batch_indices], pad_id, modeling.window_of(model)
            )
            targets = torch.tensor(targets_train[batch_indices], device=ctx.device)
            last_micro = (index + 1) % config.grad_accum == 0 or index + 1 == len(batches)
            with modeling.no_sync(model, not last_micro), modeling.no_sync(summary_head, not last_micro):
                with ctx.autocast():
                    output = model(input_ids=input_ids.to(ctx.device), attention_mask=mask.to(ctx.device))
                loss = loss_fn(output.logits.float(), targets)
                if summary_head is not None:
                    predicted = summary_head(output.hidden_states[0].float())
                    wanted = torch.tensor(summary_targets[batch_indices], device=ctx.device)
                    loss = loss + config.summary_weight * torch.nn.functional.mse_loss(predicted, wanted)
                (loss / config.grad_accum).backward()
            losses.append(loss.item())
            if last_micro:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
        # evaluate on validation, check overfitting, keep the best epoch
        train_loss = sum(losses) / max(len(losses), 1)
        val_probs = modeling.predict(model, val_ids, pad_id, config.batch_size, ctx)
        val_loss = bce_loss(val_probs, y_val)
        val_f1 = untuned_macro_f1(val_probs, y_val)
        overfitting = val_loss > config.overfit_ratio * train_loss
        history.append(
            {
                "epoch": epoch,
                "train_loss": round(train_loss, 5),
                "val_loss": round(val_loss, 5),
                "val_macro_f1": val_f1,
            }
        )
        if ctx.main:
            log.info(
                "finetune: epoch %d train loss %.4f val loss %.4f val macro-F1 %.4f%s",
                epoch, train_loss, val_loss, val_f1,
                f" (overfitting: val loss > {config.overfit_ratio:g}x train loss)" if overfitting else "",
            )  # fmt: skip
        if val_f1 > best_f1:
            best_f1, best_epoch = val_f1, epoch
            best_state = copy.deepcopy(modeling.unwrap(model).state_dict())
        epoch += 1
        if ctx.main:
            modeling.save_checkpoint(
                checkpoint_path,
                {
                    "model": modeling.unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch,
                    "best_f1": best_f1,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "history": history,
                    "config": to_json(config),
                    "model_args": asdict(architecture),
                    "rng": modeling.rng_state(),
                    **(
                        {"summary_head": modeling.unwrap(summary_head).state_dict()}
                        if summary_head is not None
                        else {}
                    ),
                },
            )
    if epoch < epochs and ctx.main:
        log.info("finetune: early stop after epoch %d (best epoch %d)", epoch - 1, best_epoch)

    # thresholds, final metrics, save --------------------------------------------
    classifier = modeling.unwrap(model)
    classifier.load_state_dict(best_state)
    model_dir = config.output_dir / MODEL_DIR
    if ctx.main:
        if probe_oof is not None:  # the probe saw validation: its out-of-fold probabilities keep it unseen
            train_probs, val_probs = probe_oof[: len(train_ids)], probe_oof[len(train_ids) :]
        else:
            val_probs = modeling.predict(classifier, val_ids, pad_id, config.batch_size, ctx)
            train_probs = modeling.predict(classifier, train_ids, pad_id, config.batch_size, ctx)
        if config.wide_weight > 0:
            # The wide path, fit on training + validation records; the metrics below mix each
            # record's out-of-fold wide logits with the Longformer's, so validation stays unseen.
            wide_path = wide.WidePath(tokenizer, seed=config.seed)
            oof = wide_path.fit_out_of_fold([*train_ids, *val_ids], y_all)
            weights = wide.label_weights(config.wide_weight, parse_label_weights(config.label_wide_weight))
            wide.save(config.output_dir, wide_path, weights)
            train_probs = wide.mix(wide.to_logits(train_probs), oof[: len(train_ids)], weights)
            val_probs = wide.mix(wide.to_logits(val_probs), oof[len(train_ids) :], weights)
            # Thresholds on out-of-fold predictions over all of them: with the probe, the mix's own
            # (both paths out of fold; a label mixed at its own weight needs its own threshold);
            # a finetuned Longformer has none (a finetune per inner fold), so the wide path's.
            if probe_oof is not None:
                thresholds = tune_thresholds(y_all, np.concatenate([train_probs, val_probs]))
            else:
                thresholds = tune_thresholds(y_all, wide.sigmoid(oof))
        else:
            thresholds = tune_thresholds(y_val, val_probs)
        cut = [thresholds[name] for name in LABELS]
        classifier.save_pretrained(model_dir)
        shutil.copyfile(tokenizer_path, config.output_dir / TOKENIZER_FILE)
        save_hf_files(config.output_dir, max_tokens)
        (config.output_dir / THRESHOLDS_FILE).write_text(json.dumps(thresholds, indent=2) + "\n")
        summary = {
            **summary,
            "used": {"train": len(train_records), "validation": len(val_records)},
            "pretrained": str(config.pretrained),
        }
        (config.output_dir / DATA_SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        write_metrics(
            config.output_dir,
            {
                "train": {
                    **multilabel_metrics(y_train, apply_thresholds(train_probs, cut)),
                    "epochs_planned": epochs,
                    "epochs_done": epoch,
                    "best_epoch": best_epoch,
                    "seconds_this_session": round(time.perf_counter() - started, 1),
                },
                "validation": {
                    **multilabel_metrics(y_val, apply_thresholds(val_probs, cut)),
                    "macro_f1_at_0.5": best_f1,
                    "thresholds": thresholds,
                },
                "history": {"epochs": history, "config": to_json(config)},
            },
        )
        chosen = "the probe (out of fold)" if probing else f"best epoch {best_epoch}"
        log.info("finetune: %s, validation macro-F1 %.4f at 0.5; model in %s", chosen, best_f1, model_dir)
    if ctx.distributed:
        dist.barrier()
    modeling.teardown_run(ctx)
    return model_dir
