"""`treelens-train crossval`: k-fold cross-validation of the model and both baselines on the
same folds, in one run.

Every labelled record lands in exactly one test fold. Inside a fold, a fixed share of the
other records is held out as validation: the Longformer picks its best epoch there (and,
scored alone, its thresholds). Nothing is tuned on the test fold. Per fold it scores

- ``model``: the Longformer finetuned from ``--pretrained`` with the preset's finetune
  settings (the shipped configuration); with ``--probe``, a linear probe on the frozen
  pretrained Longformer instead (training/probe.py: minutes, to judge a pretraining). When
  the preset's finetune is a probe (``--pooling probe`` or ``probe-cls``), the two are one
  computation: the frozen features are read once and the probe fit per fold, as finetune
  fits it;
- ``wide``: NB-LR on which token ids the model text holds (training/wide.py),
  fit on training + validation with thresholds from inner 5-fold out-of-fold predictions
  over them, as finetune ships it (the TF-IDF baseline is treated the same way);
- ``wide+deep``: the two mixed as the bundle mixes them (the preset's finetune wide weight,
  or ``--wide-weight``), with thresholds from the mix's own out-of-fold predictions where
  the model has them (the probe), else the wide path's, as finetune tunes them;
- ``tf-idf baseline`` and ``rules baseline`` (training/baselines.py).

Writes ``crossval.json`` (per system: mean, std and per-fold values of macro/micro F1, exact
match, label accuracy and per-label F1), ``crossval.md`` (the same as tables),
``predictions.jsonl`` (out-of-fold probabilities of every system) and one ``fold-K/`` folder
per fold. A killed run continues where it stopped: a finished fold keeps its Longformer
predictions (``fold-K/predictions.npz``), a fold's finetuning resumes from its checkpoint;
the wide path and the baselines take seconds and are fit again on every run, so a change to
them or to ``--wide-weight`` is scored without finetuning again. ``--fold K`` finetunes fold
K alone and stops, so the folds can run side by side (five processes share one GPU well);
a run without it then keeps them all and scores. ``--repeats N`` splits the records N times
(split R drawn with seed ``--seed`` + R, as a run with that seed would) and scores the N x k
folds together: one split's mean can sit 0.01 from another's (README, "A second split").
``--train-share F`` fits every system on a random share F of each fold's training records,
the test folds unchanged: a learning curve (README, "What more labelled data would buy").
``--train-data FILE`` adds labelled records to every fold's training records and to none of
its validation or test ones, so every score stays on ``--data``'s records (README, "The
team's annotations").
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold
from tokenizers import Tokenizer

from treelens.model.dataset import Record, label_counts
from treelens.model.input import DEFAULT_MAX_TOKENS, analyze
from treelens.model.labels import LABELS, UNTUNED_THRESHOLD
from treelens.model.tokenizer import PAD, encode_batch, line_counter, load_tokenizer
from treelens.training import finetune, modeling, probe
from treelens.training.baselines import TfidfBaseline, rules_labels
from treelens.training.longformer_fast import fast_longformer
from treelens.training.metrics import apply_thresholds, multilabel_metrics, tune_thresholds
from treelens.training.options import StageError, build_config, prepare_output_dir, to_json
from treelens.training.run_layout import MODEL_DIR, TOKENIZER_FILE, check_pretrained
from treelens.training.stage_configs import PROBE, PROBES, CrossvalConfig, FinetuneConfig, parse_label_weights
from treelens.training.texts import load_records, render, train_only_records
from treelens.training.wide import WidePath, label_weights, mix, sigmoid, to_logits

log = logging.getLogger(__name__)

SYSTEMS = ("model", "wide", "wide+deep", "tf-idf baseline", "rules baseline")
PREDICTIONS_FILE = "predictions.npz"
SCORES = ("macro_f1", "micro_f1", "exact_match", "label_accuracy")
WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
"""Wide weights the sweep scores (0: the Longformer alone, 1: the wide path alone)."""


def fold_indices(records: list[Record], config: CrossvalConfig) -> list[tuple[list, list, list]]:
    """(train, validation, test) index lists per fold, split after split (``--repeats``: split
    R is drawn with ``fold_seed``); the same for the same records and seed."""
    folds = []
    for first in range(0, config.folds * config.repeats, config.folds):
        seed = fold_seed(config, first)
        splitter = KFold(n_splits=config.folds, shuffle=True, random_state=seed)
        for k, (rest, test) in enumerate(splitter.split(np.arange(len(records)))):
            rng = np.random.default_rng(seed * 1000 + k)
            shuffled = rng.permutation(rest)
            n_val = max(1, round(len(rest) * config.validation_share))
            train, val = shuffled[n_val:], shuffled[:n_val]
            if config.train_share < 1:
                train, val = (share(part, config.train_share, rng) for part in (train, val))
            folds.append((sorted(train.tolist()), sorted(val.tolist()), test.tolist()))
    return folds


def with_train_only(
    splits: list[tuple[list, list, list]], first: int, count: int
) -> list[tuple[list, list, list]]:
    """The folds with ``--train-data``'s records (indices ``first`` on) added to every fold's
    training records: they fit every system, and no fold validates or tests on them."""
    extra = list(range(first, first + count))
    return [(train + extra, val, test) for train, val, test in splits]


def share(indices: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random ``fraction`` of ``indices`` (at least one): ``--train-share``'s smaller
    training sets, drawn after the fold's own split so that the test folds stay the same."""
    return rng.choice(indices, max(1, round(len(indices) * fraction)), replace=False)


def fold_seed(config: CrossvalConfig, fold: int) -> int:
    """The seed of fold ``fold``'s split (``--seed`` + the split's number), for its folds
    and for every system fit on it: each split is what a run with that ``--seed`` makes."""
    return config.seed + fold // config.folds


def pretrained_max_tokens(pretrained: Path) -> int:
    """The longest input of the pretrained model (the default budget without one: --skip-model)."""
    from transformers import LongformerConfig

    if not (pretrained / MODEL_DIR / "config.json").is_file():
        return DEFAULT_MAX_TOKENS
    return modeling.max_tokens_of(LongformerConfig.from_pretrained(pretrained / MODEL_DIR))


def finetune_config(config: CrossvalConfig, preset: str | Path | None, output_dir: Path) -> FinetuneConfig:
    """The preset's finetune settings (the shipped configuration) for one fold's run."""
    return build_config(
        FinetuneConfig,
        "finetune",
        argparse.Namespace(
            output_dir=output_dir,
            pretrained=config.pretrained,
            data_dir=config.data_dir,
            data=config.data,
            seed=config.seed,
            device=config.device,
            threads=config.threads,
        ),
        preset,
    )


def deep_probabilities(
    model_dir: Path, ids: dict[str, list[list[int]]], pad_id: int, config: CrossvalConfig
) -> dict[str, np.ndarray]:
    """The finetuned Longformer's probabilities on each named list of token ids."""
    from treelens.training.pooling import load_classifier

    ctx = modeling.setup_run(config.device, config.threads)
    model = load_classifier(model_dir).to(ctx.device)
    with fast_longformer():
        return {name: modeling.predict(model, x, pad_id, 8, ctx) for name, x in ids.items()}


def probe_features(config: CrossvalConfig, ids: list[list[int]], pad_id: int, pooling: str) -> np.ndarray:
    """The frozen pretrained Longformer's features of every record that a probe of ``pooling``
    reads."""
    log.info("crossval: the probe: reading %d texts with the frozen pretrained Longformer", len(ids))
    ctx = modeling.setup_run(config.device, config.threads)
    return probe.frozen_features(config.pretrained / MODEL_DIR, ids, pad_id, ctx, pooling)


def fold_longformer(
    k: int,
    records: list[Record],
    split: tuple[list, list, list],
    pad_id: int,
    ids: list[list[int]],
    config: CrossvalConfig,
    preset: str | Path | None,
) -> dict[str, np.ndarray]:
    """Fold K's Longformer validation and test probabilities: the saved ones of a finished
    fold, else finetuned now and saved (the hour of the run; ``--fold K`` runs only this,
    so folds can run side by side)."""
    folder = config.output_dir / f"fold-{k}"
    saved = folder / PREDICTIONS_FILE
    train, val, test = split
    if saved.is_file():
        kept = dict(np.load(saved))
        if "fit_on" in kept and kept["fit_on"].tolist() != train + val:
            raise StageError(
                f"{saved} was finetuned on other records than fold {k + 1} holds now (another "
                "--seed or --train-share, or other data): pass a fresh --output-dir, or "
                "--overwrite-output-dir to finetune every fold again"
            )
        log.info("crossval: fold %d already done, keeping the Longformer's %s", k + 1, saved)
        return {name: p for name, p in kept.items() if name in ("model/val", "model/test")}
    fine = finetune_config(replace(config, seed=fold_seed(config, k)), preset, folder / "finetune")
    summary = {"fold": k, "labels": label_counts(records[i] for i in train)}
    with fast_longformer():
        finetune.fit(fine, [records[i] for i in train], [records[i] for i in val], summary)
    probabilities = deep_probabilities(
        folder / "finetune" / MODEL_DIR,
        {"val": [ids[i] for i in val], "test": [ids[i] for i in test]},
        pad_id,
        config,
    )
    deep = {"model/val": probabilities["val"], "model/test": probabilities["test"]}
    np.savez(saved, **deep, fit_on=np.array(train + val))
    return deep


def quick_fold(
    records: list[Record],
    split: tuple[list, list, list],
    tokenizer: Tokenizer,
    ids: list[list[int]],
    texts: list[str],
    seed: int,
) -> dict[str, np.ndarray]:
    """The wide path and both baselines on one fold (seconds: fit again on every run).

    Both are fit on training + validation records, as finetune ships the wide path, and
    keep out-of-fold probabilities over those records to tune their thresholds on.
    """
    train, val, test = split
    y = np.array([r.labels for r in records])
    fit_on = train + val
    wide = WidePath(tokenizer, seed=seed)
    oof_logits = wide.fit_out_of_fold([ids[i] for i in fit_on], y[fit_on])
    tfidf = TfidfBaseline(tokenizer, seed)
    tfidf.fit([texts[i] for i in fit_on], y[fit_on])
    return {
        "wide/oof": sigmoid(oof_logits),
        "wide/test": sigmoid(wide.logits([ids[i] for i in test])),
        "tf-idf baseline/oof": tfidf.out_of_fold_probabilities,
        "tf-idf baseline/test": tfidf.probabilities([texts[i] for i in test]),
        "rules baseline/test": np.array(
            [rules_labels(analyze(records[i].tree)) for i in test], dtype=np.float32
        ),
    }


def with_mix(probs: dict[str, np.ndarray], wide_weight: float | np.ndarray) -> dict[str, np.ndarray]:
    """A fold's probabilities with wide+deep mixed from the saved model and wide ones (so a
    finished fold is scored at any weight without training again). As in finetune, the mix
    takes its thresholds from its own out-of-fold probabilities where the model has them (the
    probe's inner folds), else from the wide path's."""
    if "model/test" not in probs:
        return probs
    mixed = mix(to_logits(probs["model/test"]), to_logits(probs["wide/test"]), wide_weight)
    if "model/oof" in probs:
        oof = mix(to_logits(probs["model/oof"]), to_logits(probs["wide/oof"]), wide_weight)
    else:
        oof = probs["wide/oof"]
    return {**probs, "wide+deep/test": mixed, "wide+deep/oof": oof}


def score_fold(
    y: np.ndarray,
    split: tuple[list, list, list],
    probs: dict[str, np.ndarray],
    wide_weight: float | np.ndarray,
) -> dict:
    """Test-fold metrics per system (wide+deep at ``wide_weight``, one or one per label).
    Thresholds are tuned on out-of-fold probabilities over the training + validation
    records where a system has them, else (the Longformer alone) on the validation records."""
    train, val, test = split
    probs = with_mix(probs, wide_weight)
    scores = {}
    for system in SYSTEMS:
        if f"{system}/test" not in probs:
            continue
        if system == "rules baseline":
            cut = [UNTUNED_THRESHOLD] * len(LABELS)
        elif f"{system}/oof" in probs:
            tuned = tune_thresholds(y[train + val], probs[f"{system}/oof"])
            cut = [tuned[name] for name in LABELS]
        else:
            tuned = tune_thresholds(y[val], probs[f"{system}/val"])
            cut = [tuned[name] for name in LABELS]
        scores[system] = multilabel_metrics(y[test], apply_thresholds(probs[f"{system}/test"], cut))
    return scores


def weight_sweep(
    y: np.ndarray, splits: list[tuple[list, list, list]], fold_probs: list[dict[str, np.ndarray]]
) -> dict[str, dict]:
    """Test macro-F1 (mean, std over folds) of wide+deep at several wide weights, from the
    saved probabilities: how much each path is worth, without training again."""
    sweep = {}
    for weight in WEIGHTS:
        scores = [
            score_fold(y, split, probs, weight)["wide+deep"]["macro_f1"]
            for split, probs in zip(splits, fold_probs, strict=True)
        ]
        sweep[f"{weight:g}"] = {
            "mean": round(float(np.mean(scores)), 4),
            "std": round(float(np.std(scores)), 4),
        }
    return sweep


def summarize(per_fold: list[dict]) -> dict:
    """Mean, std (population, over folds) and per-fold values of every score and label F1."""

    def stats(values: list[float]) -> dict:
        return {
            "mean": round(float(np.mean(values)), 4),
            "std": round(float(np.std(values)), 4),
            "folds": values,
        }

    systems = {}
    for system in per_fold[0]:
        folds = [f[system] for f in per_fold]
        systems[system] = {
            **{score: stats([f[score] for f in folds]) for score in SCORES},
            "labels": {name: stats([f["labels"][name]["f1"] for f in folds]) for name in LABELS},
        }
    return systems


def model_description(config: CrossvalConfig, fine: FinetuneConfig) -> str:
    """What the report's ``model`` row is."""
    if config.probe:
        return "a linear probe on the frozen pretrained Longformer's segment means (--probe)"
    if fine.pooling in PROBES:
        what = "segment means" if fine.pooling == PROBE else "[CLS] state and segment means"
        return (
            f"the preset's finetune, a linear probe on the frozen pretrained Longformer's {what} "
            f"(--pooling {fine.pooling}: features read once, the probe fit on each fold)"
        )
    return "the Longformer finetuned on each fold"


def markdown(
    systems: dict,
    config: CrossvalConfig,
    samples: int,
    train_only: int,
    sweep: dict[str, dict],
    mixed_at: str,
    model: str,
) -> str:
    title = f"{config.folds}-fold cross-validation"
    if config.repeats > 1:
        title += f", {config.repeats} splits: {config.folds * config.repeats} folds"
    if config.train_share < 1:
        title += f", every system fit on {config.train_share:.0%} of each fold's training records"
    if train_only:
        title += f", every fold's training records joined by {train_only} that only train (--train-data)"
    lines = [
        f"# {title} ({samples} labelled projects, mean ± std over folds)",
        "",
        f"model: {model}; wide+deep mixes the logits at wide weight {mixed_at}.",
        "",
        "| system | macro-F1 | micro-F1 | exact match | label accuracy |",
        "|---|---|---|---|---|",
    ]
    for name, s in systems.items():
        cells = " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in SCORES)
        lines.append(f"| {name} | {cells} |")
    lines += ["", "Per-label F1:", "", "| label | " + " | ".join(systems) + " |"]
    lines.append("|---" * (len(systems) + 1) + "|")
    for label in LABELS:
        cells = " | ".join(
            f"{s['labels'][label]['mean']:.3f} ± {s['labels'][label]['std']:.3f}" for s in systems.values()
        )
        lines.append(f"| {label} | {cells} |")
    if sweep:
        lines += [
            "",
            "wide+deep macro-F1 by the wide path's weight, the same for every label (0: Longformer alone, "
            "1: wide alone):",
            "",
        ]
        lines += ["| wide weight | " + " | ".join(sweep) + " |", "|---" * (len(sweep) + 1) + "|"]
        lines.append(
            "| macro-F1 | " + " | ".join(f"{v['mean']:.3f} ± {v['std']:.3f}" for v in sweep.values()) + " |"
        )
    return "\n".join(lines) + "\n"


def write_predictions(path: Path, records: list[Record], oof: dict[tuple[int, int], dict]) -> None:
    """``predictions.jsonl``: each record's out-of-fold probabilities of every system, one
    line per split (``oof`` maps (split, record index) to the fold and the probabilities)."""
    with open(path, "w", encoding="utf-8") as handle:
        for (split, i), row in sorted(oof.items()):
            probabilities = {name: v for name, v in row.items() if name != "fold"}
            line = {
                "id": records[i].id,
                "split": split,
                "fold": row["fold"],
                "labels": [n for n, v in zip(LABELS, records[i].labels, strict=True) if v],
                "probabilities": {
                    system: {n: round(float(p), 4) for n, p in zip(LABELS, v, strict=True)}
                    for system, v in probabilities.items()
                },
            }
            handle.write(json.dumps(line) + "\n")


def run(config: CrossvalConfig, preset: str | Path | None) -> dict:
    """Cross-validate; returns the summary written to crossval.json."""
    check_pretrained(config.pretrained, model=not config.skip_model)
    prepare_output_dir(config.output_dir, config.overwrite_output_dir, resume_ok=True)
    if config.overwrite_output_dir:  # with --fold K only fold K: its siblings may be running beside it
        started = "fold-*" if config.fold is None else f"fold-{config.fold}"
        for finished in config.output_dir.glob(started):
            shutil.rmtree(finished)
    tokenizer_path = config.pretrained / TOKENIZER_FILE
    data = load_records(config.data, config.data_dir)
    records = sorted((r for r in data if r.labelled), key=lambda r: r.id)
    train_only = train_only_records(config.train_data, data)
    fitted = records + train_only  # the records every system reads; the folds split `records`
    if len(records) < config.folds * 2:
        raise StageError(f"{len(records)} labelled records are too few for {config.folds} folds")
    tokenizer = load_tokenizer(tokenizer_path)
    pad_id = tokenizer.token_to_id(PAD)
    fine = finetune_config(config, preset, config.output_dir)
    wide_weight = fine.wide_weight if config.wide_weight is None else config.wide_weight
    overrides = parse_label_weights(
        fine.label_wide_weight if config.label_wide_weight is None else config.label_wide_weight
    )
    weights = label_weights(wide_weight, overrides)
    probing = config.probe or (fine.pooling in PROBES and not config.skip_model)
    probe_pooling = PROBE if config.probe else fine.pooling
    max_tokens = pretrained_max_tokens(config.pretrained)
    texts = render([r.tree for r in fitted], max_tokens, line_counter(tokenizer))
    ids = encode_batch(tokenizer, texts, max_tokens)
    y = np.array([r.labels for r in fitted])
    splits = with_train_only(fold_indices(records, config), len(records), len(train_only))
    (config.output_dir / "folds.json").write_text(
        json.dumps([[records[i].id for i in test] for _, _, test in splits], indent=1) + "\n"
    )

    if config.fold is not None:
        fold_longformer(config.fold, fitted, splits[config.fold], pad_id, ids, config, preset)
        log.info("crossval: fold %d saved; a run without --fold scores every system", config.fold + 1)
        return {"fold": config.fold}
    frozen = probe_features(config, ids, pad_id, probe_pooling) if probing else None
    per_fold, oof, fold_probs = [], {}, []
    for k, split in enumerate(splits):
        seed = fold_seed(config, k)
        log.info(
            "crossval: fold %d/%d (seed %d): %d train, %d validation, %d test",
            k + 1, len(splits), seed, len(split[0]), len(split[1]), len(split[2]),
        )  # fmt: skip
        if frozen is not None:
            deep = probe.fold_probabilities(frozen, y, split[0] + split[1], split[2], seed)
        elif config.skip_model:
            deep = {}
        else:
            deep = fold_longformer(k, fitted, split, pad_id, ids, config, preset)
        probs = {**deep, **quick_fold(fitted, split, tokenizer, ids, texts, seed)}
        fold_probs.append(probs)
        scores = score_fold(y, split, probs, weights)
        for system, m in scores.items():
            log.info("crossval: fold %d %-16s macro-F1 %.3f", k + 1, system, m["macro_f1"])
        per_fold.append(scores)
        for name, p in with_mix(probs, weights).items():
            if name.endswith("/test"):
                for row, i in enumerate(split[2]):
                    oof.setdefault((k // config.folds, i), {"fold": k})[name.removesuffix("/test")] = p[row]

    systems = summarize(per_fold)
    sweep = weight_sweep(y, splits, fold_probs) if not config.skip_model else {}
    model = model_description(config, fine)
    result = {
        "folds": config.folds,
        "repeats": config.repeats,
        "samples": len(records),
        "train_only": len(train_only),
        "label_counts": label_counts(records),
        "systems": systems,
        "model": model,
        "wide_weight": wide_weight,
        "label_wide_weight": overrides,
        "wide_weight_sweep": sweep,
        "config": to_json(config),
        "preset": str(preset) if preset else None,
    }
    (config.output_dir / "crossval.json").write_text(json.dumps(result, indent=2) + "\n")
    mixed_at = f"{wide_weight:g}" + "".join(f", {name} {w:g}" for name, w in overrides.items())
    report = markdown(systems, config, len(records), len(train_only), sweep, mixed_at, model)
    (config.output_dir / "crossval.md").write_text(report)
    write_predictions(config.output_dir / "predictions.jsonl", records, oof)
    for name, s in systems.items():
        log.info("crossval: %-16s macro-F1 %.3f ± %.3f", name, s["macro_f1"]["mean"], s["macro_f1"]["std"])
    print(report)
    return result
