"""`treelens-train export`: the ONNX graph, parity checks, int8 quantization and the bundle.

transformers' Longformer does not trace into a trustworthy graph (its strided chunking
exports wrong numbers and its shape branches are baked in at the traced length), so the
graph is ``training.longformer_fast.ClassifierGraph``: the same weights through blocked
attention, dynamic in batch and length. A traced graph is only trusted where it was
checked, so every length bucket the runtime pads to is checked against stock
transformers eager on the validation texts (each padded to the bucket, as the runtime
pads it): max |Δprob| <= 1e-4 for fp32, <= 0.01 for its dynamic int8 quantization,
and identical labels after thresholds (except where PyTorch's own probability is within
that tolerance of the threshold: counted as borderline). Any miss stops the export
with the bucket, the graph and the text that failed: a graph that disagrees with its
weights never ships.

Output: ``bundle/`` (what ships, in ``--precision``: int8 by default; ``--install`` copies it
to model/assets/default) and ``bundle-fp32/`` (the same model in fp32, for the latency
benchmark). ``--precision fp32`` ships the graph unquantized, for a model whose int8 graph
misses the parity tolerance (a probe reading [CLS], README "The model").
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from treelens.model.bundle import (
    BUNDLE_FORMAT,
    GRAPH_INPUTS,
    MANIFEST_FILE,
    BundleError,
    file_entries,
    load_bundle,
    write_manifest,
)
from treelens.model.dataset import Record
from treelens.model.errors import UsageError
from treelens.model.input import INPUT_FORMAT
from treelens.model.labels import LABELS
from treelens.model.runtime import Classifier
from treelens.model.tokenizer import PAD, SEP, encode_batch, fit_ids, line_counter, load_tokenizer
from treelens.training import modeling, wide
from treelens.training.longformer_fast import ClassifierGraph
from treelens.training.metrics import multilabel_metrics
from treelens.training.options import StageError, prepare_output_dir, to_json
from treelens.training.pooling import load_classifier
from treelens.training.run_layout import (
    ALL_RESULTS_FILE,
    DATA_SUMMARY_FILE,
    MODEL_DIR,
    THRESHOLDS_FILE,
    TOKENIZER_FILE,
)
from treelens.training.stage_configs import ExportConfig
from treelens.training.texts import labelled_splits, load_records, render

log = logging.getLogger(__name__)

OPSET = 17
FP32_TOLERANCE = 1e-4
INT8_TOLERANCE = 0.01


class ParityError(StageError):
    """An exported graph disagrees with the PyTorch model it came from."""


def export_graph(model: torch.nn.Module, path: Path, length: int, pad_id: int, cls_id: int) -> None:
    """Trace ``model`` (ClassifierGraph, or it inside WideAndDeep) once (2 texts of ``length``
    tokens, one half padding) with a dynamic batch and length."""
    input_ids = torch.full((2, length), pad_id, dtype=torch.long)
    mask = torch.zeros((2, length), dtype=torch.long)
    input_ids[:, 0], input_ids[0, 1:], input_ids[1, 1 : length // 2] = cls_id, 5, 6
    mask[0], mask[1, : length // 2] = 1, 1
    axes = {0: "batch", 1: "length"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape arithmetic; the parity checks decide
        torch.onnx.export(
            model,
            (input_ids, mask),
            str(path),
            input_names=list(GRAPH_INPUTS),
            output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(str(path))


def cls_path_nodes(graph_path: Path) -> list[str]:
    """MatMuls that compute the [CLS] row of the classifier: kept in fp32.

    They run on one token (or, for the last layer's global keys and values, feed the
    [CLS] attention directly), so int8 saves nothing there and only adds error.
    ClassifierGraph runs every layer but the last as a module (scope "/layer.N/"); the
    last layer's pieces are called one by one (no "/layer." scope), so a one-layer model
    keeps every MatMul in fp32 (so does a segments-below head, which reads the layer
    below). With the segments head every layer is a module and only the head stays in
    fp32. Global queries only ever see [CLS]. The head's Linear on one row per text is a
    Gemm, which the quantizer first turns into a MatMul named ``<Gemm>_MatMul``: kept in
    fp32 by that name (the probe's head, whose weights are the regression's divided by each
    feature's spread: a probe reading [CLS] too lost 0.16 of a probability to it on a tiny
    model). If the exporter names nodes differently this finds none and the export stops,
    rather than quantizing blind.
    """
    nodes = onnx.load(str(graph_path)).graph.node
    names = [n.name for n in nodes if n.op_type == "MatMul"]
    found = [n for n in names if "/layer." not in n or "query_global" in n]
    if not found:
        raise StageError(
            f"{graph_path}: cannot tell the [CLS] path from its node names; check export.cls_path_nodes"
        )
    return found + [f"{n.name}_MatMul" for n in nodes if n.op_type == "Gemm"]


def quantize(fp32: Path, int8: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights, per output channel (activations are
    quantized at run time); the [CLS] path and the embedding tables stay in fp32.

    Quantizing the embedding tables too saves 5 MB but doubles the error (max |dprob|
    0.010 vs 0.005 on the shipped model's validation texts), past the parity tolerance,
    and buys no speed: a lookup costs the same in either precision.
    """
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)  # the quantizer logs every node it skips on the root logger
    try:
        quantize_dynamic(
            fp32,
            int8,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=cls_path_nodes(fp32),
        )
    finally:
        logging.root.setLevel(level)


def parity_samples(ids: list[list[int]], length: int, sep_id: int, limit: int) -> list[list[int]]:
    """Texts for one bucket: those that fit, and longer ones cut to it (ending in [SEP])."""
    fitting = [x for x in ids if len(x) <= length]
    cut = [fit_ids(x, length, sep_id) for x in ids if len(x) > length]
    return (fitting + cut)[:limit]


def torch_probabilities(
    model: torch.nn.Module, ids: list[list[int]], wide_path: tuple[wide.WideHead, float] | None
) -> np.ndarray:
    """The reference: PyTorch eager on each unpadded text (mixed with the wide path's logits
    when the model has one)."""
    rows = []
    with torch.no_grad():
        for x in ids:
            logits = model(
                input_ids=torch.tensor([x]), attention_mask=torch.ones(1, len(x), dtype=torch.long)
            ).logits[0]
            rows.append(logits.numpy())
    logits = np.stack(rows)
    if wide_path is not None:
        head, weight = wide_path
        logits = wide.mix_logits(logits, wide.head_logits(head, ids), weight)
    return wide.sigmoid(logits)


def check_parity(
    bundle_dir: Path,
    reference: dict[int, tuple[list[list[int]], np.ndarray]],
    tolerance: float,
    threads: int | None,
) -> dict:
    """Run the bundle at every bucket on the reference texts; raise ParityError on a miss.

    A miss is a probability further than ``tolerance`` from PyTorch's, or a label that
    differs although PyTorch's probability is further than ``tolerance`` from its
    threshold. A flip closer than that is within the quantization error of a coin-toss
    decision: it is counted (``borderline_flips``), not failed.
    """
    classifier = Classifier.load(bundle_dir, device="cpu", threads=threads)
    thresholds = np.array([classifier.thresholds[name] for name in LABELS])
    report = {}
    for length, (ids, expected) in sorted(reference.items()):
        bucket = classifier.bundle.bucket_for(length)
        if bucket.length != length:
            raise ParityError(f"{bundle_dir}: no bucket of length {length}")
        got = np.stack([classifier.run_ids(x, pad_to=length) for x in ids])
        delta = np.abs(got - expected)
        worst = np.unravel_index(int(delta.argmax()), delta.shape)
        differ = (got >= thresholds) != (expected >= thresholds)
        borderline = differ & (np.abs(expected - thresholds) <= tolerance)
        flips = np.argwhere(differ & ~borderline)
        report[str(length)] = {
            "samples": len(ids),
            "max_abs_dprob": float(delta.max()),
            "label_flips": len(flips),
            "borderline_flips": int(borderline.sum()),
        }
        if delta.max() > tolerance or len(flips):
            i, j = flips[0] if len(flips) else worst
            raise ParityError(
                f"{bundle_dir / bucket.graph}: at length {length}, text {i} ({len(ids[i])} tokens), "
                f"label {LABELS[j]}: ONNX {got[i, j]:.6f} vs PyTorch {expected[i, j]:.6f} (max |dprob| "
                f"{delta.max():.2e}, tolerance {tolerance:g}, {len(flips)} label flip(s)); the graph does "
                "not match its weights at this length: do not ship it"
            )
    return report


def write_bundle(
    folder: Path, graphs: dict[int, Path], tokenizer: Path, meta: dict, precision: str, version: str | None
) -> dict:
    """Copy graphs and tokenizer into ``folder`` and write manifest.json with their sha256;
    returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[Path, str] = {}
    for path in graphs.values():
        if path not in names:
            names[path] = f"model-{precision}.onnx" if len(set(graphs.values())) == 1 else f"{path.stem}.onnx"
            shutil.copyfile(path, folder / names[path])
    shutil.copyfile(tokenizer, folder / TOKENIZER_FILE)
    files = sorted({*names.values(), TOKENIZER_FILE})
    entries = file_entries(folder, files)
    graph_hash = "".join(entries[n]["sha256"] for n in sorted(names.values()))
    stamp = dt.datetime.now(dt.UTC)
    manifest = {
        "bundle_format": BUNDLE_FORMAT,
        "name": meta["name"],
        "version": version or f"{stamp:%Y.%m.%d}-{graph_hash[:8]}",
        "created": stamp.isoformat(timespec="seconds"),
        "precision": precision,
        "labels": list(LABELS),
        "thresholds": meta["thresholds"],
        "input_format": INPUT_FORMAT,
        "max_tokens": max(graphs),
        "buckets": [{"length": n, "graph": names[p]} for n, p in sorted(graphs.items())],
        "inputs": list(GRAPH_INPUTS),
        "outputs": ["logits"],
        "tokenizer": TOKENIZER_FILE,
        "files": entries,
        **{k: v for k, v in meta.items() if k not in ("name", "thresholds")},
    }
    write_manifest(folder, manifest)
    return manifest


def held_out_macro_f1(bundle_dir: Path, records: list[Record], threads: int | None) -> float:
    """Macro-F1 of a bundle, run as the daemon runs it, on labelled records."""
    classifier = Classifier.load(bundle_dir, device="cpu", threads=threads)
    results = classifier.classify_texts([classifier.describe(r.tree) for r in records])
    predicted = [[int(name in result.labels) for name in LABELS] for result in results]
    return multilabel_metrics(np.array([r.labels for r in records]), np.array(predicted))["macro_f1"]


def recorded_macro_f1(target: Path, records: list[Record]) -> float | None:
    """The test macro-F1 an installed bundle's manifest records, when it was measured on the
    test split with as many records as ``records`` (the split is fixed by record id), else None.

    A bundle of an older input format cannot run in this Treelens, but the score it recorded
    on the same held-out records still bars a worse successor.
    """
    try:
        metrics = json.loads((target / MANIFEST_FILE).read_text())["metrics"]
        if metrics["split"] == "test" and metrics["samples"] == len(records):
            return float(metrics["systems"]["model"]["macro_f1"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def check_gate(
    candidate: Path, target: Path, records: list[Record], force: bool, threads: int | None
) -> dict | None:
    """Refuse to replace a bundle that scores higher macro-F1 on the same held-out records.

    Retraining on feedback must never make the shipped answers worse unnoticed. The installed
    bundle is run on the records; one this Treelens cannot run (another input format) is
    judged by the score its manifest records on them. Returns both scores (None when
    nothing is installed to compare with); raises StageError when the candidate is lower,
    unless ``force``, which installs with a warning.
    """
    if not records:
        raise StageError("no held-out (test split) records to compare the bundles on; add labelled data")
    try:
        load_bundle(target)
        installed, source = held_out_macro_f1(target, records, threads), "run"
    except BundleError as error:
        recorded = recorded_macro_f1(target, records)
        if recorded is None:
            log.info(
                "export: nothing usable installed at %s (%s); installing without a comparison", target, error
            )
            return None
        log.info(
            "export: the installed bundle cannot run here (%s); comparing with the test macro-F1 its "
            "manifest records on the same %d records",
            error, len(records),
        )  # fmt: skip
        installed, source = recorded, "manifest"
    scores = {
        "candidate": held_out_macro_f1(candidate, records, threads),
        "installed": installed,
        "installed_from": source,
        "records": len(records),
    }
    drop = scores["installed"] - scores["candidate"]
    log.info(
        "export: held-out macro-F1 on %d records: candidate %.4f, installed %.4f",
        len(records), scores["candidate"], scores["installed"],
    )  # fmt: skip
    if drop > 0:
        what = (
            f"the new bundle scores macro-F1 {scores['candidate']:.4f} on the {len(records)} held-out test "
            f"records, {drop:.4f} below the installed bundle's {scores['installed']:.4f} ({target})"
        )
        if not force:
            raise StageError(f"{what}; not installed. Pass --force to install it anyway")
        log.warning("export: WARNING: --force: installing although %s", what)
    return scores


def install(bundle_dir: Path, target: Path) -> None:
    """Replace ``target`` with a verified copy of ``bundle_dir``."""
    load_bundle(bundle_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the installed bundle is read by everyone
    try:
        for item in bundle_dir.iterdir():
            shutil.copyfile(item, staging / item.name)
        load_bundle(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("export: installed %s -> %s", bundle_dir, target)


def run(config: ExportConfig) -> Path:
    """Export, check, quantize (``--precision int8``), bundle; returns the bundle folder."""
    prepare_output_dir(config.output_dir, config.overwrite_output_dir)
    if config.threads:
        torch.set_num_threads(config.threads)
    tokenizer_path = config.model / TOKENIZER_FILE
    tokenizer = load_tokenizer(tokenizer_path)
    pad_id, sep_id = tokenizer.token_to_id(PAD), tokenizer.token_to_id(SEP)
    model = load_classifier(config.model / MODEL_DIR).eval()
    max_tokens = modeling.max_tokens_of(model.config)
    window = modeling.window_of(model)
    buckets = sorted(set(config.buckets))
    if buckets[-1] != max_tokens or any(b % window for b in buckets):
        raise UsageError(
            f"--buckets {buckets}: the largest must be the model's max_tokens {max_tokens} and each a "
            f"multiple of its attention window {window}"
        )
    thresholds = json.loads((config.model / THRESHOLDS_FILE).read_text())
    wide_path = wide.load(config.model)

    # reference probabilities: PyTorch eager on the validation texts, per bucket
    splits = labelled_splits(load_records(config.data, config.data_dir))
    texts = render([r.tree for r in splits["validation"]], max_tokens, line_counter(tokenizer))
    ids = encode_batch(tokenizer, texts, max_tokens)
    limit = config.max_eval_samples or config.max_parity_samples
    reference = {}
    for length in buckets:
        samples = parity_samples(ids, length, sep_id, limit)
        reference[length] = (samples, torch_probabilities(model, samples, wide_path))

    # one fp32 graph serves every bucket (and its int8 quantization, when that ships)
    work = config.output_dir / "graphs"
    work.mkdir(exist_ok=True)
    fp32_path = work / "model-fp32.onnx"
    graph: torch.nn.Module = ClassifierGraph(model)
    if wide_path is not None:
        graph = wide.WideAndDeep(graph, *wide_path).eval()
    export_graph(graph, fp32_path, buckets[0], pad_id, model.config.bos_token_id)

    # bundles, each checked at every bucket before anything is installed
    summary_path = config.model / DATA_SUMMARY_FILE
    meta = {
        "name": config.name,
        "thresholds": thresholds,
        "architecture": {
            **model.config.to_diff_dict(),
            "wide_weight": dict(zip(LABELS, wide_path[1].tolist(), strict=True)) if wide_path else 0.0,
        },
        "training": {
            "data": json.loads(summary_path.read_text()) if summary_path.is_file() else {},
            "finetune_results": _read_json(config.model / ALL_RESULTS_FILE),
        },
        "metrics": _read_json(config.metrics) if config.metrics else {},
        "export": to_json(config),
    }
    fp32_dir, bundle_dir = config.output_dir / "bundle-fp32", config.output_dir / "bundle"
    fp32_graphs = dict.fromkeys(buckets, fp32_path)
    write_bundle(fp32_dir, fp32_graphs, tokenizer_path, meta, "fp32", config.version)
    parity = {"fp32": check_parity(fp32_dir, reference, FP32_TOLERANCE, config.threads)}
    log.info("export: fp32 parity %s", parity["fp32"])
    meta["parity"] = dict(parity)
    if config.precision == "int8":
        int8_path = work / "model-int8.onnx"
        quantize(fp32_path, int8_path)
        manifest = write_bundle(
            bundle_dir, dict.fromkeys(buckets, int8_path), tokenizer_path, meta, "int8", config.version
        )
        parity["int8"] = check_parity(bundle_dir, reference, INT8_TOLERANCE, config.threads)
        log.info("export: int8 parity %s", parity["int8"])
        # the figures are known only once the bundle ran: only its manifest is written again
        write_manifest(bundle_dir, {**manifest, "parity": parity})
    else:
        write_bundle(bundle_dir, fp32_graphs, tokenizer_path, meta, "fp32", config.version)
    size = sum(p.stat().st_size for p in bundle_dir.iterdir())
    log.info("export: bundle %s (%s, %.1f MB)", bundle_dir, config.precision, size / 1e6)
    if config.install:
        check_gate(bundle_dir, config.install_dir, splits["test"], config.force, config.threads)
        install(bundle_dir, config.install_dir)
    return bundle_dir


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
