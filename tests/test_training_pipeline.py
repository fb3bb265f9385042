"""Every training stage end to end on the tiny preset and a few real records.

The session fixture ``tiny_run`` (tests/conftest.py) has run tokenizer -> pretrain (1 step)
-> finetune (1 epoch) -> export; these tests check what each stage left behind, run
evaluate on it, and run ``treelens-train all`` through the real CLI once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from treelens.model.bundle import DEFAULT_BUNDLE_DIR, load_bundle
from treelens.model.dataset import read_records
from treelens.model.labels import LABELS
from treelens.model.runtime import Classifier
from treelens.model.tokenizer import SPECIAL_TOKENS, line_counter, load_tokenizer
from treelens.training import crossval, evaluate
from treelens.training.options import build_config, read_preset
from treelens.training.run_layout import CHECKPOINT_FILE
from treelens.training.stage_configs import CrossvalConfig
from treelens.training.texts import render


def test_tokenizer_loads_in_both_libraries(tiny_run):
    folder = tiny_run / "tokenizer"
    fast = PreTrainedTokenizerFast.from_pretrained(folder)
    plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = "src/components/UserProfile.tsx\n  package.json\n"
    assert fast(text)["input_ids"] == plain.encode(text).ids
    assert [plain.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS)
    assert fast.cls_token == SPECIAL_TOKENS[0] and fast.mask_token_id == 4 and fast.pad_token_id == 1
    encoded = plain.encode(text)
    assert encoded.tokens[0] == "[CLS]" and encoded.tokens[-1] == "[SEP]"


def test_tokenizer_splits_paths_and_isolates_newlines(tiny_run):
    tokenizer = load_tokenizer(tiny_run / "tokenizer" / "tokenizer.json")
    tokens = tokenizer.encode("myApp/user_profile-view.py\n", add_special_tokens=False).tokens
    pieces = "".join(tokens).replace("Ġ", " ")
    assert pieces == "myApp/user_profile-view.py\u010a"
    for boundary in ("/", "_", "-", ".", "\u010a"):  # never merged with a neighbour
        assert boundary in tokens
    assert not any(t.startswith("my") and "A" in t for t in tokens)  # camelCase hump split


def test_line_counts_add_up_on_real_texts(tiny_run, tiny_data):
    tokenizer = load_tokenizer(tiny_run / "tokenizer" / "tokenizer.json")
    counter = line_counter(tokenizer)
    for record in read_records(tiny_data):
        (text,) = render([record.tree], 512, counter)
        lines = text.splitlines(keepends=True)
        whole = len(tokenizer.encode(text, add_special_tokens=False).ids)
        assert whole == sum(counter(lines)) <= 512 - 2


def test_training_texts_equal_runtime_texts(tiny_run, tiny_bundle, tiny_data):
    """What finetune trained on is byte for byte what the runtime shows the model."""
    tokenizer = load_tokenizer(tiny_run / "finetune" / "tokenizer.json")
    classifier = Classifier.load(tiny_bundle, device="cpu", threads=1)
    for record in read_records(tiny_data):
        (training_text,) = render([record.tree], classifier.max_tokens, line_counter(tokenizer))
        assert training_text == classifier.describe(record.tree).text


def test_pretrain_and_finetune_outputs(tiny_run):
    pre = json.loads((tiny_run / "pretrain" / "all_results.json").read_text())
    assert pre["train"]["steps"] == 1 and pre["train"]["nan_batches_skipped"] == 0
    assert pre["validation"]["eval_loss"] > 0
    assert (tiny_run / "pretrain" / "model" / "config.json").is_file()
    fine = tiny_run / "finetune"
    thresholds = json.loads((fine / "thresholds.json").read_text())
    assert list(thresholds) == list(LABELS) and all(0 < t < 1 for t in thresholds.values())
    for split in ("train", "validation"):
        metrics = json.loads((fine / f"{split}_results.json").read_text())
        assert set(metrics["labels"]) == set(LABELS) and 0 <= metrics["macro_f1"] <= 1
    config = json.loads((fine / "model" / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(LABELS)}


def test_export_bundle(tiny_run, tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    manifest = bundle.manifest
    assert manifest["precision"] == "int8" and manifest["max_tokens"] == 512
    assert set(manifest["parity"]["int8"]) == {"256", "512"}
    assert all(
        p["max_abs_dprob"] <= 0.01 and p["label_flips"] == 0 for p in manifest["parity"]["int8"].values()
    )
    assert all(p["max_abs_dprob"] <= 1e-4 for p in manifest["parity"]["fp32"].values())
    assert manifest["training"]["data"]["records"]["train"] == 4
    assert load_bundle(tiny_run / "export" / "bundle-fp32").manifest["precision"] == "fp32"


def test_evaluate_model_and_baselines(tiny_run, tiny_data, tmp_path):
    args = argparse.Namespace(output_dir=tmp_path / "ev", data=[tiny_data], model=tiny_run / "finetune")
    result = evaluate.run(build_config(evaluate.EvaluateConfig, "evaluate", args, "tiny"))
    assert result["split"] == "test" and result["samples"] == 3
    assert set(result["systems"]) == {"model", "rules baseline", "tf-idf baseline"}
    for metrics in result["systems"].values():
        assert {"micro_f1", "macro_f1", "exact_match", "label_accuracy"} <= set(metrics)
        row = metrics["labels"]["backend"]
        assert {"precision", "recall", "f1", "support", "accuracy", "confusion"} <= set(row)
        assert sum(map(sum, row["confusion"])) == 3
    out = tmp_path / "ev"
    assert "| rules baseline |" in (out / "report.md").read_text()
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3


def test_evaluate_the_bundle(tiny_bundle, tiny_data, tmp_path):
    args = argparse.Namespace(
        output_dir=tmp_path / "ev", data=[tiny_data], bundle=tiny_bundle, baselines=False, split="all"
    )
    result = evaluate.run(build_config(evaluate.EvaluateConfig, "evaluate", args, "tiny"))
    assert result["samples"] == 10 and list(result["systems"]) == ["model"]


def test_all_through_the_cli(tiny_data, tmp_path):
    """`treelens-train all` runs every stage and installs the bundle where it is told."""
    install_dir = tmp_path / "installed"
    command = [
        sys.executable,
        "-m",
        "treelens.training.cli",
        "all",
        "--preset",
        "tiny",
        "--data",
        str(tiny_data),
    ]
    command += ["--output-dir", str(tmp_path / "run"), "--install", "--install-dir", str(install_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "world size 1" in done.stderr  # the start-up summary line
    assert load_bundle(install_dir).manifest["precision"] == "int8"
    for folder in ("tokenizer", "pretrain", "finetune", "evaluate", "export", "evaluate-bundle"):
        assert (tmp_path / "run" / folder).is_dir()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "keeping the tokenizer" in again.stderr and "resuming from" in again.stderr


def test_all_finetunes_a_pretraining_made_elsewhere(tiny_run, tiny_data, tmp_path):
    """`all --pretrained DIR`: a pretraining copied from another machine without its
    checkpoint is finetuned, evaluated and exported; no tokenizer or pretrain stage runs."""
    copied = tmp_path / "from-gpu"
    shutil.copytree(tiny_run / "pretrain", copied, ignore=shutil.ignore_patterns(CHECKPOINT_FILE))
    command = [sys.executable, "-m", "treelens.training.cli", "all", "--preset", "tiny"]
    command += ["--data", str(tiny_data)]
    done = subprocess.run(
        [*command, "--output-dir", str(tmp_path / "run"), "--pretrained", str(copied)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"finetuning the pretraining in {copied}" in done.stderr
    assert not (tmp_path / "run" / "tokenizer").exists() and not (tmp_path / "run" / "pretrain").exists()
    assert load_bundle(tmp_path / "run" / "export" / "bundle").manifest["precision"] == "int8"
    # a folder that is no pretraining is refused before anything is written
    (tmp_path / "empty").mkdir()
    bad = subprocess.run(
        [*command, "--output-dir", str(tmp_path / "bad"), "--pretrained", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "no model/config.json or tokenizer.json; run the pretrain stage, or give" in bad.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "stage", ["tokenizer", "pretrain", "finetune", "evaluate", "export", "all", "crossval"]
)
def test_every_stage_has_help(stage):
    done = subprocess.run(
        [sys.executable, "-m", "treelens.training.cli", stage, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0
    assert "--output-dir" in done.stdout and "--seed" in done.stdout and "--preset" in done.stdout


def test_output_dir_must_be_empty(tiny_data, tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    command = [
        sys.executable,
        "-m",
        "treelens.training.cli",
        "tokenizer",
        "--preset",
        "tiny",
        "--data",
        str(tiny_data),
    ]
    done = subprocess.run([*command, "--output-dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 1 and "is not empty; pass --overwrite-output-dir" in done.stderr
    done = subprocess.run(
        [*command, "--output-dir", str(tmp_path / "out"), "--overwrite-output-dir"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and (tmp_path / "out" / "tokenizer.json").is_file()
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_crossval_scores_every_system_on_the_same_folds(tiny_run, tiny_data, tmp_path):
    """Two folds of the tiny records through the real CLI: the model and both baselines are
    scored on the same test folds, every record out of fold once; a second run keeps the
    finished folds and scores wide+deep at the weight it is given."""
    out = tmp_path / "cv"
    command = [
        sys.executable,
        "-m",
        "treelens.training.cli",
        "crossval",
        "--preset",
        "tiny",
        "--data",
        str(tiny_data),
    ]
    command += ["--pretrained", str(tiny_run / "pretrain"), "--folds", "2", "--output-dir", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "crossval.json").read_text())
    assert result["folds"] == 2 and result["samples"] == 10
    assert list(result["systems"]) == ["model", "wide", "wide+deep", "tf-idf baseline", "rules baseline"]
    for system in result["systems"].values():
        assert len(system["macro_f1"]["folds"]) == 2
        assert system["macro_f1"]["mean"] == pytest.approx(sum(system["macro_f1"]["folds"]) / 2, abs=1e-4)
        assert set(system["labels"]) == set(LABELS)
    folds = json.loads((out / "folds.json").read_text())
    assert sorted(i for fold in folds for i in fold) == sorted(
        r.id for r in read_records(tiny_data) if r.labelled
    )
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(set(row["probabilities"]) == set(result["systems"]) for row in rows)
    assert "| tf-idf baseline |" in (out / "crossval.md").read_text()
    assert result["wide_weight"] == 0.5  # the tiny preset's finetune weight: the mix it ships
    again = subprocess.run([*command, "--wide-weight", "1"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stderr.count("already done") == 2, again.stderr[-3000:]
    rescored = json.loads((out / "crossval.json").read_text())["systems"]  # finished folds, a new mix
    assert rescored["wide+deep"]["macro_f1"]["folds"] == rescored["wide"]["macro_f1"]["folds"]
    cli_deep = subprocess.run(
        [*command, "--wide-weight", "1", "--label-wide-weight", "cli=0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli_deep.returncode == 0, cli_deep.stderr[-3000:]
    assert json.loads((out / "crossval.json").read_text())["label_wide_weight"] == {"cli": 0.0}
    assert "at wide weight 1, cli 0." in (out / "crossval.md").read_text()
    for line in (out / "predictions.jsonl").read_text().splitlines():
        probs = json.loads(line)["probabilities"]
        assert probs["wide+deep"]["cli"] == pytest.approx(probs["model"]["cli"], abs=2e-4)
        assert probs["wide+deep"]["backend"] == pytest.approx(probs["wide"]["backend"], abs=2e-4)


def test_crossval_fold_runs_one_fold_that_a_full_run_keeps(tiny_run, tiny_data, tmp_path):
    """--fold K finetunes fold K alone (so folds can run side by side on a GPU) and writes
    no summary; the run without --fold keeps that fold and finetunes only the other."""
    out = tmp_path / "cv"
    command = [sys.executable, "-m", "treelens.training.cli", "crossval", "--preset", "tiny"]
    command += ["--data", str(tiny_data), "--pretrained", str(tiny_run / "pretrain")]
    command += ["--folds", "2", "--output-dir", str(out)]
    done = subprocess.run([*command, "--fold", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "fold-1" / "predictions.npz").is_file() and not (out / "fold-0").exists()
    assert not (out / "crossval.json").exists() and "without --fold scores every system" in done.stderr
    full = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-3000:]
    assert full.stderr.count("already done") == 1 and "fold 2 already done" in full.stderr
    assert (out / "fold-0" / "predictions.npz").is_file() and (out / "crossval.json").is_file()
    refused = subprocess.run([*command, "--fold", "2"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "between 0 and 1 (--folds x --repeats - 1): 2" in refused.stderr
    second_split = [*command, "--repeats", "2", "--fold", "2"]
    second = subprocess.run(second_split, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    saved = json.loads((out / "fold-2" / "finetune" / "all_results.json").read_text())
    assert saved["history"]["config"]["seed"] == 1  # the second split's seed, as --seed 1 would
    other_records = subprocess.run([*command, "--seed", "1"], capture_output=True, text=True, timeout=600)
    assert other_records.returncode == 1 and "finetuned on other records than fold 1" in other_records.stderr
    again = [*command, "--seed", "1", "--fold", "0", "--overwrite-output-dir"]
    done = subprocess.run(again, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "already done" not in done.stderr, done.stderr[-3000:]
    assert (out / "fold-1" / "predictions.npz").is_file()  # --fold 0 starts fold 0 alone over
    over = [*command, "--seed", "1", "--overwrite-output-dir"]
    everything = subprocess.run(over, capture_output=True, text=True, timeout=600)
    assert everything.returncode == 0 and "already done" not in everything.stderr, everything.stderr[-3000:]
    assert not (out / "fold-2").exists()  # started over: the other split's fold is gone too


def test_crossval_repeats_score_every_split_as_its_own_seed_would(tiny_run, tiny_data, tmp_path):
    """--repeats 2: two splits of the records, each exactly the folds (and wide path scores)
    of a run with that --seed, scored together; every record out of fold once per split."""
    command = [sys.executable, "-m", "treelens.training.cli", "crossval", "--preset", "tiny", "--skip-model"]
    command += ["--data", str(tiny_data), "--pretrained", str(tiny_run / "pretrain"), "--folds", "2"]
    runs = {}
    for name, extra in {"both": ["--repeats", "2"], "seed1": ["--seed", "1"]}.items():
        output = ["--output-dir", str(tmp_path / name)]
        done = subprocess.run([*command, *extra, *output], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = tmp_path / name
    result = json.loads((runs["both"] / "crossval.json").read_text())
    assert result["repeats"] == 2 and len(result["systems"]["wide"]["macro_f1"]["folds"]) == 4
    folds = json.loads((runs["both"] / "folds.json").read_text())
    ids = sorted(r.id for r in read_records(tiny_data) if r.labelled)
    assert sorted(i for f in folds[:2] for i in f) == ids and sorted(i for f in folds[2:] for i in f) == ids
    assert folds[2:] == json.loads((runs["seed1"] / "folds.json").read_text()) and folds[2:] != folds[:2]
    seed1 = json.loads((runs["seed1"] / "crossval.json").read_text())
    assert result["systems"]["wide"]["macro_f1"]["folds"][2:] == seed1["systems"]["wide"]["macro_f1"]["folds"]
    rows = [json.loads(line) for line in (runs["both"] / "predictions.jsonl").read_text().splitlines()]
    assert sorted((row["split"], row["id"]) for row in rows) == [(s, i) for s in (0, 1) for i in ids]
    assert {row["fold"] for row in rows if row["split"] == 1} == {2, 3}
    assert "2-fold cross-validation, 2 splits: 4 folds (" in (runs["both"] / "crossval.md").read_text()


def test_crossval_skip_model_runs_on_the_installed_bundles_tokenizer(tiny_data, tmp_path):
    """--skip-model needs no pretraining: the installed bundle's folder (its tokenizer.json)
    serves as --pretrained, as the README's third-split command runs it on a fresh checkout."""
    out = tmp_path / "cv"
    command = [sys.executable, "-m", "treelens.training.cli", "crossval", "--skip-model", "--folds", "2"]
    command += ["--data", str(tiny_data), "--pretrained", str(DEFAULT_BUNDLE_DIR), "--output-dir", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "crossval.json").read_text())
    assert list(result["systems"]) == ["wide", "tf-idf baseline", "rules baseline"]
    assert len(result["systems"]["wide"]["macro_f1"]["folds"]) == 2


def test_crossval_train_share_fits_on_fewer_records_of_the_same_folds(tiny_run, tiny_data, tmp_path):
    """--train-share F: each fold's training and validation records cut to a random share F
    (a learning curve), the test folds exactly those of the full run; the report says so."""
    records = list(range(200))
    full = crossval.fold_indices(records, CrossvalConfig())
    config = CrossvalConfig(train_share=0.5)
    for (train, val, test), (all_train, all_val, all_test) in zip(
        crossval.fold_indices(records, config), full, strict=True
    ):
        assert test == all_test and set(train) < set(all_train) and set(val) < set(all_val)
        assert (len(train), len(val)) == (round(len(all_train) / 2), round(len(all_val) / 2))
    assert crossval.fold_indices(records, config) == crossval.fold_indices(records, config)
    out = tmp_path / "cv"
    command = [sys.executable, "-m", "treelens.training.cli", "crossval", "--skip-model", "--folds", "2"]
    command += ["--data", str(tiny_data), "--pretrained", str(tiny_run / "pretrain")]
    command += ["--output-dir", str(out)]
    done = subprocess.run([*command, "--train-share", "0.6"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 train, 1 validation, 5 test" in done.stderr  # of 4 and 1 at the full share
    assert "every system fit on 60% of each fold's training records" in (out / "crossval.md").read_text()
    assert json.loads((out / "crossval.json").read_text())["config"]["train_share"] == 0.6
    refused = subprocess.run([*command, "--train-share", "0"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "--train-share must be above 0 and at most 1, got 0" in refused.stderr


@pytest.mark.parametrize(
    ("probe_preset", "flags", "model"),
    [
        (False, ["--probe"], "a linear probe on the frozen pretrained Longformer's segment means (--probe)"),
        (True, [], "the preset's finetune, a linear probe on the frozen pretrained Longformer's"),
    ],
)
def test_crossval_probe_scores_the_frozen_pretrained_model(
    tiny_run, tiny_data, tmp_path, probe_preset: bool, flags: list[str], model: str
):
    """--probe, or a preset whose finetune is the probe (the default one): the model row is a
    linear probe on the frozen pretrained Longformer, with thresholds from inner out-of-fold
    predictions; nothing is finetuned or saved per fold."""
    preset = "tiny"
    if probe_preset:
        sections = read_preset("tiny")
        sections["finetune"]["pooling"] = "probe"
        preset = str(tmp_path / "probe.json")
        Path(preset).write_text(json.dumps(sections))
    out = tmp_path / "cv"
    command = [sys.executable, "-m", "treelens.training.cli", "crossval", "--preset", preset]
    command += ["--data", str(tiny_data), "--pretrained", str(tiny_run / "pretrain")]
    command += ["--folds", "2", "--output-dir", str(out), *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "crossval.json").read_text())
    assert list(result["systems"]) == ["model", "wide", "wide+deep", "tf-idf baseline", "rules baseline"]
    assert result["config"]["probe"] is not probe_preset
    assert result["model"].startswith(model) and model in (out / "crossval.md").read_text()
    assert not list(out.glob("fold-*/finetune")) and not list(out.glob("fold-*/predictions.npz"))
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    probabilities = [p for row in rows for p in row["probabilities"]["model"].values()]
    assert len(rows) == 10 and all(0 <= p <= 1 for p in probabilities) and len(set(probabilities)) > 8
    if flags:  # --probe scores the model that --skip-model leaves out
        refused = subprocess.run([*command, "--skip-model"], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1 and "pass one" in refused.stderr
