"""Export checks: a tampered graph fails the parity check loudly; blocked attention and the
export graph compute what transformers computes; install verifies before it replaces."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper
from transformers import LongformerConfig, LongformerForMaskedLM, LongformerForSequenceClassification
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

from treelens.model.bundle import BundleError, file_entries, load_bundle
from treelens.model.dataset import read_many
from treelens.model.tokenizer import SEP, load_tokenizer
from treelens.training import wide
from treelens.training.export import (
    FP32_TOLERANCE,
    ParityError,
    check_gate,
    check_parity,
    install,
    parity_samples,
    torch_probabilities,
)
from treelens.training.longformer_fast import ClassifierGraph, blocked_attention, fast_longformer
from treelens.training.options import StageError
from treelens.training.texts import labelled_splits


@pytest.fixture(scope="module")
def reference(tiny_run):
    """PyTorch probabilities of a few real texts at both buckets of the tiny model."""
    model = LongformerForSequenceClassification.from_pretrained(tiny_run / "finetune" / "model").eval()
    tokenizer = load_tokenizer(tiny_run / "finetune" / "tokenizer.json")
    text = (tiny_run / "finetune" / "tokenizer.json").read_text()[
        :4000
    ]  # any text: a long one, cut per bucket
    ids = [tokenizer.encode(text).ids, tokenizer.encode("src/main.py\nsetup.py\n").ids]
    samples = {n: parity_samples(ids, n, tokenizer.token_to_id(SEP), 8) for n in (256, 512)}
    wide_path = wide.load(tiny_run / "finetune")  # the tiny preset mixes in the wide path
    assert wide_path is not None
    return {n: (s, torch_probabilities(model, s, wide_path)) for n, s in samples.items()}


def rebundle(folder) -> None:
    """Record the current files' sha256 in the manifest (a well-formed bundle, bad graph)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = file_entries(folder, sorted(manifest["files"]))
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_untouched_graph_passes(tiny_run, reference):
    report = check_parity(tiny_run / "export" / "bundle-fp32", reference, FP32_TOLERANCE, threads=1)
    assert set(report) == {"256", "512"} and all(
        r["max_abs_dprob"] <= FP32_TOLERANCE for r in report.values()
    )


def test_tampered_graph_fails_parity(tiny_run, reference, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_run / "export" / "bundle-fp32", bundle)
    graph_path = bundle / "model-fp32.onnx"
    graph = onnx.load(graph_path)
    weight = next(t for t in graph.graph.initializer if "classifier.out_proj.weight" in t.name)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(graph, graph_path)
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(bundle)  # the runtime would refuse it anyway...
    rebundle(bundle)  # ...so make the hashes match: only the parity check stands between it and users
    with pytest.raises(ParityError, match=r"model-fp32\.onnx: at length 256, .*do not ship it"):
        check_parity(bundle, reference, FP32_TOLERANCE, threads=1)


def test_install_verifies_and_replaces(tiny_bundle, tmp_path):
    target = tmp_path / "assets" / "default"
    target.mkdir(parents=True)
    (target / "old.onnx").write_text("old")
    install(tiny_bundle, target)
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in tiny_bundle.iterdir())
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "tokenizer.json").write_text("{}")
    with pytest.raises(BundleError):
        install(broken, target)
    assert load_bundle(target)  # the installed bundle is untouched


@pytest.fixture(scope="module")
def small_longformer():
    config = LongformerConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        attention_window=32, max_position_embeddings=1026, pad_token_id=1, bos_token_id=0, num_labels=8,
        type_vocab_size=1,
    )  # fmt: skip
    torch.manual_seed(0)
    return LongformerForSequenceClassification(config).eval(), LongformerForMaskedLM(config).eval()


@pytest.mark.parametrize(("length", "padding"), [(64, 0), (128, 40), (512, 100)])
def test_blocked_attention_computes_what_transformers_computes(small_longformer, length, padding):
    classifier, mlm = small_longformer
    ids = torch.randint(5, 60, (2, length))
    ids[:, 0] = 0
    mask = torch.ones(2, length, dtype=torch.long)
    mask[1, length - padding :] = 0
    kept = length - padding
    with torch.no_grad():
        stock = classifier(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        stock_mlm = mlm(input_ids=ids, attention_mask=mask).logits
        with fast_longformer():
            fast = classifier(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            fast_mlm = mlm(input_ids=ids, attention_mask=mask).logits
        graph = torch.cat([ClassifierGraph(classifier)(ids[i : i + 1], mask[i : i + 1]) for i in range(2)])
        batched = ClassifierGraph(classifier)(ids, mask)
    torch.testing.assert_close(fast.logits, stock.logits, atol=1e-6, rtol=0)
    for layer_stock, layer_fast in zip(stock.hidden_states, fast.hidden_states, strict=True):
        torch.testing.assert_close(layer_fast[1, :kept], layer_stock[1, :kept], atol=1e-5, rtol=0)
    torch.testing.assert_close(fast_mlm[:, :kept], stock_mlm[:, :kept], atol=1e-5, rtol=0)
    torch.testing.assert_close(graph, stock.logits, atol=1e-6, rtol=0)
    torch.testing.assert_close(batched, stock.logits, atol=1e-6, rtol=0)
    assert LongformerSelfAttention.forward is not blocked_attention  # restored after the block


def test_blocked_attention_trains_under_bf16_autocast(small_longformer):
    """The GPU path: under bf16 autocast the scores are bf16 while the hidden states stay
    float32; masking with float32's lowest value overflowed bf16 and stopped every GPU run.
    CPU autocast takes the same route."""
    classifier, mlm = small_longformer
    ids = torch.randint(5, 60, (2, 128))
    mask = torch.ones(2, 128, dtype=torch.long)
    mask[1, 90:] = 0
    with fast_longformer(), torch.autocast("cpu", dtype=torch.bfloat16):
        loss = mlm(input_ids=ids, attention_mask=mask, labels=ids).loss
        logits = classifier(input_ids=ids, attention_mask=mask).logits
    assert torch.isfinite(loss) and torch.isfinite(logits).all()


def _bundle_with_thresholds(source: Path, target: Path, value: float) -> Path:
    """A copy of a bundle whose every threshold is ``value`` (the manifest is not hashed)."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["thresholds"] = dict.fromkeys(manifest["thresholds"], value)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_install_gate_refuses_a_worse_bundle_unless_forced(tiny_bundle, tiny_data, tmp_path, caplog):
    """A bundle that predicts nothing (macro-F1 0) may not replace one that predicts every
    label (macro-F1 > 0 on the held-out records); --force installs it with a warning; a
    better or equal candidate, or an empty target, installs."""
    records = labelled_splits(read_many([tiny_data]))["test"]
    nothing = _bundle_with_thresholds(tiny_bundle, tmp_path / "nothing", 0.9999)
    everything = _bundle_with_thresholds(tiny_bundle, tmp_path / "everything", 0.0001)
    with pytest.raises(StageError) as refused:
        check_gate(nothing, everything, records, force=False, threads=1)
    message = str(refused.value)
    assert "scores macro-F1 0.0000" in message and "below the installed bundle's" in message
    assert "--force" in message and f"{len(records)} held-out" in message
    with caplog.at_level(logging.WARNING):
        forced = check_gate(nothing, everything, records, force=True, threads=1)
    assert forced["candidate"] == 0.0 < forced["installed"]
    assert "WARNING: --force" in caplog.text
    assert check_gate(everything, nothing, records, force=False, threads=1)["candidate"] > 0
    assert check_gate(everything, everything, records, force=False, threads=1) is not None
    assert check_gate(nothing, tmp_path / "not-there", records, force=False, threads=1) is None


def test_install_gate_judges_an_older_format_bundle_by_its_recorded_score(tiny_bundle, tiny_data, tmp_path):
    """An installed bundle of another input format cannot run here; its manifest's test
    macro-F1 on as many records still bars a worse candidate. Without a matching record
    (another split, another count) there is nothing to compare with."""
    records = labelled_splits(read_many([tiny_data]))["test"]
    nothing = _bundle_with_thresholds(tiny_bundle, tmp_path / "nothing", 0.9999)
    older = _bundle_with_thresholds(tiny_bundle, tmp_path / "older", 0.5)
    manifest = json.loads((older / "manifest.json").read_text())
    manifest["input_format"] -= 1
    manifest["metrics"] = {"split": "test", "samples": len(records), "systems": {"model": {"macro_f1": 0.5}}}
    (older / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StageError, match=r"below the installed bundle's 0\.5000"):
        check_gate(nothing, older, records, force=False, threads=1)
    manifest["metrics"]["samples"] = len(records) + 1
    (older / "manifest.json").write_text(json.dumps(manifest))
    assert check_gate(nothing, older, records, force=False, threads=1) is None
