"""Tampered and broken model bundles, and runtime limits: each is refused with one clear
error (BundleError or ValueError) by the runtime, the CLI, ``python -m treelens.daemon --check`` and
the daemon; nothing crashes, hangs or answers NaN as a probability.

The bundles are real: copies of the tiny bundle whose ONNX graph is edited with ``onnx``
and whose manifest's sha256 entries are rewritten, as an attacker who can write the
bundle folder would do.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pygls.exceptions import JsonRpcException

from tests.daemon_client import REPO, start_daemon
from tests.folders import write_files
from treelens.daemon.protocol import CLASSIFY_TREE, MODEL_UNAVAILABLE
from treelens.model.bundle import MAX_MANIFEST_BYTES, BundleError, file_entries, load_bundle
from treelens.model.runtime import MAX_THREADS, Classifier
from treelens.model.tree import ProjectTree

FILES = {"manage.py": "", "requirements.txt": "django\n", "blog/views.py": ""}
SHORT_TREE = "manage.py\nblog/views.py\n"
NAN_BELOW_TOKENS = 300
"""The input-dependent graph gives NaN for texts shorter than this (the load probe runs the
longest bucket, 512 tokens, so it loads; a short project then comes out NaN)."""

GraphEdit = Callable[[onnx.ModelProto], None]


# building tampered bundles ------------------------------------------------------------------


def copy_bundle(tiny_bundle: Path, target: Path) -> Path:
    shutil.copytree(tiny_bundle, target)
    return target


def read_manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def write_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def reseal(bundle: Path) -> None:
    """Record the files' new sha256 in the manifest (the manifest itself is not signed)."""
    manifest = read_manifest(bundle)
    manifest["files"] = file_entries(bundle, sorted(manifest["files"]))
    write_manifest(bundle, manifest)


def edit_graph(bundle: Path, edit: GraphEdit) -> Path:
    """Apply ``edit`` to the bundle's graph, save it and reseal the manifest."""
    (graph,) = bundle.glob("*.onnx")
    model = onnx.load(graph)
    edit(model)
    onnx.save(model, graph)
    reseal(bundle)
    return bundle


def _reroute_logits(model: onnx.ModelProto) -> str:
    """Rename the node output ``logits`` to ``raw_logits``, so new nodes can produce ``logits``."""
    for node in model.graph.node:
        node.output[:] = ["raw_logits" if name == "logits" else name for name in node.output]
    return "raw_logits"


def times_constant(value: float) -> GraphEdit:
    """logits = raw_logits * value (NaN or infinity: every output broken)."""

    def edit(model: onnx.ModelProto) -> None:
        raw = _reroute_logits(model)
        model.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), "poison"))
        model.graph.node.append(helper.make_node("Mul", [raw, "poison"], ["logits"]))

    return edit


def nan_for_short_texts(model: onnx.ModelProto) -> None:
    """logits = raw_logits * sqrt(tokens - NAN_BELOW_TOKENS): NaN only for short texts."""
    raw = _reroute_logits(model)
    model.graph.initializer.append(
        numpy_helper.from_array(np.array(NAN_BELOW_TOKENS, np.float32), "nan_below")
    )
    model.graph.node.extend(
        [
            helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["mask_f"], ["tokens"], keepdims=1),
            helper.make_node("Sub", ["tokens", "nan_below"], ["spare"]),
            helper.make_node("Sqrt", ["spare"], ["factor"]),
            helper.make_node("Mul", [raw, "factor"], ["logits"]),
        ]
    )


def seven_logits(model: onnx.ModelProto) -> None:
    """logits = raw_logits[:, :7]: one label short of the manifest's eight."""
    raw = _reroute_logits(model)
    for name, value in (("s0", 0), ("s7", 7), ("s1", 1)):
        model.graph.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
    model.graph.node.append(helper.make_node("Slice", [raw, "s0", "s7", "s1"], ["logits"]))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 7


@pytest.fixture
def nan_bundle(tiny_bundle: Path, tmp_path: Path) -> Path:
    return edit_graph(copy_bundle(tiny_bundle, tmp_path / "nan"), times_constant(float("nan")))


@pytest.fixture
def short_nan_bundle(tiny_bundle: Path, tmp_path: Path) -> Path:
    return edit_graph(copy_bundle(tiny_bundle, tmp_path / "short-nan"), nan_for_short_texts)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_files(tmp_path / "project", FILES)
    return tmp_path / "project"


def treelens(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI; the time-out only proves it does not hang."""
    return subprocess.run(
        [sys.executable, "-m", "treelens.daemon.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def daemon_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "treelens.daemon", "--check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], says: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr


# NaN and infinite outputs ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_model_that_outputs_nan_or_infinity_is_refused_at_load(tiny_bundle, tmp_path, value):
    bundle = edit_graph(copy_bundle(tiny_bundle, tmp_path / "broken"), times_constant(value))
    with pytest.raises(BundleError, match=r"model-int8\.onnx: .*not a finite number") as error:
        Classifier.load(bundle, device="cpu", threads=1)
    assert str(bundle) in str(error.value)


def test_a_model_that_outputs_nan_on_some_input_is_refused_on_that_input(short_nan_bundle):
    classifier = Classifier.load(short_nan_bundle, device="cpu", threads=1)  # the probe passes
    with pytest.raises(BundleError, match=r"not a finite number"):
        classifier.probabilities(["manage.py\n"])
    with pytest.raises(BundleError, match=r"not a finite number"):  # nothing cached
        classifier.probabilities(["manage.py\n"])


def test_cli_refuses_nan_models_in_one_line(nan_bundle, short_nan_bundle, project):
    for bundle in (nan_bundle, short_nan_bundle):
        done = treelens("classify", str(project), "--model", str(bundle), "--json", "--threads", "1")
        assert_one_line_error(done, "not a finite number")


def test_check_reports_a_nan_model_as_broken(nan_bundle, short_nan_bundle, project):
    for bundle in (nan_bundle, short_nan_bundle):
        done = daemon_check("--model-path", str(bundle), "--folder", str(project), "--device", "cpu")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "not a finite number" in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""


@pytest.mark.asyncio
async def test_daemon_answers_an_error_never_nan(nan_bundle, short_nan_bundle, tiny_bundle, project):
    options = {"modelPath": str(nan_bundle), "feedbackDatabase": str(project.parent / "f.sqlite3")}
    daemon = await start_daemon([project], options)
    try:
        with pytest.raises(JsonRpcException) as refused:
            await daemon.call(CLASSIFY_TREE, {"tree": SHORT_TREE})
        assert refused.value.code == MODEL_UNAVAILABLE and "not a finite number" in refused.value.message
        daemon.settings({**options, "modelPath": str(short_nan_bundle)})
        with pytest.raises(JsonRpcException) as failed:
            await daemon.call(CLASSIFY_TREE, {"tree": SHORT_TREE})
        assert failed.value.code == MODEL_UNAVAILABLE and "not a finite number" in failed.value.message
        daemon.settings({**options, "modelPath": str(tiny_bundle)})
        answer = await daemon.call(CLASSIFY_TREE, {"tree": SHORT_TREE})
        assert all(0.0 <= p <= 1.0 for p in answer["probabilities"].values())
    finally:
        await daemon.close()


# limits checked against the graph --------------------------------------------------------------


def test_max_tokens_beyond_the_graphs_positions_is_refused_at_load(tiny_bundle, tmp_path):
    bundle = copy_bundle(tiny_bundle, tmp_path / "long")
    manifest = read_manifest(bundle)
    manifest["max_tokens"] = manifest["buckets"][-1]["length"] = 1024  # the graph has 512 positions
    write_manifest(bundle, manifest)
    with pytest.raises(BundleError, match=r"model-int8\.onnx: cannot take 1024 tokens"):
        Classifier.load(bundle, device="cpu", threads=1)


def test_a_graph_with_another_output_width_is_refused_at_load(tiny_bundle, tmp_path):
    bundle = edit_graph(copy_bundle(tiny_bundle, tmp_path / "seven"), seven_logits)
    with pytest.raises(BundleError, match=r"model-int8\.onnx: .*7 logits.*8 labels"):
        Classifier.load(bundle, device="cpu", threads=1)


# tampered manifests -----------------------------------------------------------------------------


def _set(key: str, value) -> Callable[[dict], None]:
    return lambda manifest: manifest.update({key: value})


def _set_bucket(key: str, value) -> Callable[[dict], None]:
    return lambda manifest: manifest["buckets"][0].update({key: value})


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_set("surprise", 1), "unknown key(s) ['surprise']"),
        (_set_bucket("length", True), "bucket"),
        (_set_bucket("extra", 1), "bucket"),
        (lambda m: m.update(max_tokens=128, buckets=[{"length": 128, "graph": "model-int8.onnx"}]), "128"),
        (lambda m: m.update(buckets=[{"length": -5, "graph": "model-int8.onnx"}, *m["buckets"]]), "-5"),
        (
            lambda m: m.update(max_tokens=10**9, buckets=[{"length": 10**9, "graph": "model-int8.onnx"}]),
            "10000",
        ),
        (_set("outputs", ["logits", "extra"]), "graph outputs"),
    ],
    ids=[
        "unknown-key",
        "bool-length",
        "bucket-key",
        "small-budget",
        "negative-bucket",
        "huge-budget",
        "outputs",
    ],
)
def test_tampered_manifest_values_are_refused(tiny_bundle, tmp_path, damage, says):
    bundle = copy_bundle(tiny_bundle, tmp_path / "tampered")
    manifest = read_manifest(bundle)
    damage(manifest)
    write_manifest(bundle, manifest)
    with pytest.raises(BundleError, match=r"manifest\.json: ") as error:
        load_bundle(bundle)
    assert says in str(error.value)


def test_a_deeply_nested_manifest_is_one_clear_error(tiny_bundle, tmp_path, project):
    bundle = copy_bundle(tiny_bundle, tmp_path / "deep")
    (bundle / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError, match="nested too deeply"):
        load_bundle(bundle)
    assert_one_line_error(treelens("classify", str(project), "--model", str(bundle)), "nested too deeply")


def test_a_huge_manifest_is_refused_before_it_is_read(tiny_bundle, tmp_path):
    bundle = copy_bundle(tiny_bundle, tmp_path / "huge")
    with open(bundle / "manifest.json", "ab") as handle:
        handle.truncate(MAX_MANIFEST_BYTES * 64)  # sparse: no disk, but far too big
    with pytest.raises(BundleError, match="larger than"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda g: g.write_bytes(g.read_bytes()[:1000]), "onnxruntime cannot load it"),
        (lambda g: g.write_bytes(b"\x00garbage" * 100), "onnxruntime cannot load it"),
    ],
    ids=["truncated", "garbage"],
)
def test_truncated_or_garbage_graphs_are_refused(tiny_bundle, tmp_path, damage, says):
    bundle = copy_bundle(tiny_bundle, tmp_path / "graph")
    damage(next(bundle.glob("*.onnx")))
    reseal(bundle)
    with pytest.raises(BundleError, match=says):
        Classifier.load(bundle, device="cpu", threads=1)


# runtime limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [0, -1, MAX_THREADS + 1, 100_000])
def test_thread_counts_outside_the_limit_are_refused(tiny_bundle, threads):
    with pytest.raises(ValueError, match=rf"threads must be a whole number from 1 to {MAX_THREADS}"):
        Classifier.load(tiny_bundle, device="cpu", threads=threads)


def test_cli_refuses_a_huge_thread_count_in_one_line(tiny_bundle, project):
    done = treelens("classify", str(project), "--model", str(tiny_bundle), "--threads", "100000")
    assert_one_line_error(done, f"from 1 to {MAX_THREADS}")


def test_a_replaced_model_is_released(tiny_bundle):
    """The daemon loads a new Classifier on every model setting change: the old one's
    tokenizer and token-count memo must go with it (a registry kept them: 2 MB a reload)."""
    classifier = Classifier.load(tiny_bundle, device="cpu", threads=1)
    classifier.describe(ProjectTree.from_paths(list(FILES)))
    counter = weakref.ref(classifier._counter)
    del classifier
    gc.collect()
    assert counter() is None
