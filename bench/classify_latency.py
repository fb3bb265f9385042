"""Benchmark: classifying one project at 512, 1,024, 2,048 and 4,096 tokens on 2 CPU threads.

Times, in the same run and on the same model texts (real projects of the data set,
rendered within each budget by the bundle's own tokenizer):

- the shipped bundle (``onnx-int8`` or ``onnx-fp32``, as its manifest says), run by
  Treelens' runtime (tokenize, pad to the bucket, ONNX Runtime, sigmoid) exactly as the
  daemon runs it;
- for an int8 bundle, ONNX fp32: the same export before quantization
  (``<run>/export/bundle-fp32``);
- PyTorch eager: the same weights in stock transformers (``<run>/finetune/model``, plus
  the wide path of ``<run>/finetune/wide.npz`` in torch when the model has one),
  tokenize + forward, the baseline the budget is stated against.

Prints median and p95 milliseconds per classification, the speed-ups against eager,
and whether they give identical labels (max |Δprob| too). Budget (DESIGN.md):
<= 100 ms median at 4,096 tokens for the shipped bundle, >= 4x faster than eager, identical
labels.
The fp32 bundle and PyTorch weights come from the training run that exported the
shipped bundle (runs/ is not committed: retrain with `treelens-train all` to get one).

    python bench/classify_latency.py [--bundle DIR] [--run-dir runs/default] [--runs 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from treelens.model.bundle import DEFAULT_BUNDLE_DIR, load_bundle
from treelens.model.dataset import default_data_files, read_many
from treelens.model.input import describe
from treelens.model.runtime import Classifier
from treelens.model.tokenizer import line_counter

LENGTHS = (512, 1024, 2048, 4096)
THREADS = 2
TEXTS_PER_LENGTH = 5
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def model_texts(classifier: Classifier, length: int, count: int) -> list[list[int]]:
    """Token ids of the largest projects rendered within ``length`` tokens (close to it)."""
    records = read_many(default_data_files(DATA_DIR))
    records.sort(key=lambda r: len(r.tree.files), reverse=True)
    counter = line_counter(classifier.tokenizer)
    chosen = []
    for record in records:
        text = describe(record.tree, max_tokens=length, count_tokens=counter).text
        ids = classifier.encode(text)
        if len(ids) > length * 0.9:
            chosen.append(ids)
        if len(chosen) == count:
            return chosen
    raise SystemExit(f"not enough projects fill {length} tokens")


def timed(
    run: Callable[[list[int]], np.ndarray], texts: list[list[int]], runs: int
) -> tuple[list[float], list]:
    """Milliseconds per call (after 2 warm-up calls per text) and each text's probabilities."""
    outputs = [run(ids) for ids in texts for _ in range(2)][::2]
    times = []
    for i in range(runs):
        ids = texts[i % len(texts)]
        start = time.perf_counter()
        run(ids)
        times.append((time.perf_counter() - start) * 1000)
    return times, outputs


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next(
        (line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor()
    )
    return {
        "cpu": model,
        "cores_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "threads_used": THREADS,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bundle", type=Path, default=DEFAULT_BUNDLE_DIR, help="the bundle (the shipped one)"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=Path("runs/default"), help="the training run that made it"
    )
    parser.add_argument("--runs", type=int, default=30, help="timed calls per engine and length")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS), help="token lengths")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()

    import onnxruntime
    import torch
    from transformers.utils import logging as transformers_logging

    from treelens.training import wide
    from treelens.training.pooling import load_classifier

    transformers_logging.set_verbosity_error()
    torch.set_num_threads(THREADS)
    fp32_dir, torch_dir = args.run_dir / "export" / "bundle-fp32", args.run_dir / "finetune" / "model"
    shipped, fp32_bundle = load_bundle(args.bundle), load_bundle(fp32_dir)
    if shipped.manifest["training"] != fp32_bundle.manifest["training"]:
        raise SystemExit(f"{fp32_dir} was not exported with {args.bundle}: different training runs")
    precision = shipped.manifest.get("precision", "int8")
    classifier = Classifier.load(args.bundle, device="cpu", threads=THREADS)
    eager = load_classifier(torch_dir).eval()
    wide_path = wide.load(torch_dir.parent)  # the wide path beside the Longformer, when it has one
    if wide_path is not None:  # its weights (one per label, numpy) as torch, once, outside the timing
        wide_path = (wide_path[0], torch.as_tensor(wide_path[1]))
    thresholds = np.array([classifier.thresholds[name] for name in classifier.labels])

    def onnx_run(classifier: Classifier) -> Callable[[list[int]], np.ndarray]:
        def run(ids: list[int]) -> np.ndarray:
            return classifier.run_ids(ids)

        return run

    def eager_run(ids: list[int]) -> np.ndarray:
        input_ids, mask = torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long)
        with torch.no_grad():
            logits = eager(input_ids=input_ids, attention_mask=mask).logits
            if wide_path is not None:
                head, weight = wide_path
                logits = wide.mix_logits(logits, head(input_ids, mask), weight)
        return torch.sigmoid(logits)[0].numpy()

    engines = {f"onnx-{precision}": onnx_run(classifier)}
    if precision != "fp32":
        engines["onnx-fp32"] = onnx_run(Classifier.load(fp32_dir, device="cpu", threads=THREADS))
    engines["pytorch-eager"] = eager_run
    onnx_engines = [name for name in engines if name.startswith("onnx-")]
    results: dict = {
        "machine": machine(),
        "bundle": str(args.bundle),
        "version": classifier.version,
        "precision": precision,
        "lengths": {},
    }
    results["machine"]["onnxruntime"], results["machine"]["torch"] = (
        onnxruntime.__version__,
        torch.__version__,
    )
    print(HEADER)
    for length in args.lengths:
        texts = model_texts(classifier, length, TEXTS_PER_LENGTH)
        row: dict = {"tokens": round(statistics.mean(len(t) for t in texts)), "engines": {}}
        outputs = {}
        for name, run in engines.items():
            times, outputs[name] = timed(run, texts, args.runs)
            row["engines"][name] = {
                "median_ms": round(statistics.median(times), 2),
                "p95_ms": round(percentile(times, 0.95), 2),
            }
        base = row["engines"]["pytorch-eager"]["median_ms"]
        for name in onnx_engines:
            row["engines"][name]["speedup_vs_eager"] = round(base / row["engines"][name]["median_ms"], 2)
        reference = np.stack(outputs["pytorch-eager"])
        for name in onnx_engines:
            got = np.stack(outputs[name])
            row["engines"][name]["max_abs_dprob_vs_eager"] = float(np.abs(got - reference).max())
            row["engines"][name]["identical_labels"] = bool(
                ((got >= thresholds) == (reference >= thresholds)).all()
            )
        results["lengths"][str(length)] = row
        print_row(length, row)
    results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results["machine"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


COLUMNS = ("tokens", "engine", "median ms", "p95 ms", "vs eager", "labels", "max dprob")
WIDTHS = (7, -14, 10, 8, 9, 7, 10)
HEADER = " ".join(f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(COLUMNS, WIDTHS, strict=True))


def print_row(length: int, row: dict) -> None:
    for name, e in row["engines"].items():
        speed = f"{e['speedup_vs_eager']:.2f}x" if "speedup_vs_eager" in e else "1.00x"
        same = {True: "same", False: "DIFFER"}.get(e.get("identical_labels"), "-")
        delta = f"{e['max_abs_dprob_vs_eager']:.1e}" if "max_abs_dprob_vs_eager" in e else "-"
        timing = f"{e['median_ms']:>10.1f} {e['p95_ms']:>8.1f}"
        print(f"{length:>7} {name:14} {timing} {speed:>9} {same:>7} {delta:>10}")


if __name__ == "__main__":
    sys.exit(main())
