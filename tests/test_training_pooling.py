"""``finetune --pooling segments`` (and ``segments-below``): the head reads [CLS] and the mean
of each segment (of the last layer, or of the one below); ``--pooling probe``: one linear
layer on the segment means (``probe-cls``: and the last [CLS] state), fit as a logistic
regression. The segments are the wide path's,
the export graph computes what the eager model computes, and a model trained so is loaded,
exported and run with the head it was trained with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LongformerConfig, LongformerForMaskedLM

from tests.tiny_model import export_cli, finetune_cli
from treelens.model.runtime import Classifier
from treelens.model.tree import FileEntry, ProjectTree
from treelens.training.longformer_fast import ClassifierGraph
from treelens.training.pooling import (
    CONFIG_KEY,
    SEGMENTS,
    SegmentPooledClassifier,
    load_classifier,
)
from treelens.training.wide import segment_ids, split_segments

SEP_ID = 2


def test_segments_are_the_wide_paths():
    """A token's segment is where the wide path's split puts it, [SEP] and overflow included."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids = rng.integers(3, 40, size=50)
        ids[rng.choice(50, size=rng.integers(0, 5), replace=False)] = SEP_ID
        expected = [k for k, part in enumerate(split_segments(ids.tolist(), SEP_ID, SEGMENTS)) for _ in part]
        assert segment_ids(torch.tensor(ids)[None], SEP_ID, SEGMENTS)[0].tolist() == expected


def two_layer_classifier(pooling: str) -> SegmentPooledClassifier:
    """A small random two-layer classifier with a segments head of the given pooling."""
    config = LongformerConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        attention_window=32, max_position_embeddings=1026, pad_token_id=1, bos_token_id=0,
        sep_token_id=SEP_ID, num_labels=8, type_vocab_size=1,
    )  # fmt: skip
    setattr(config, CONFIG_KEY, pooling)
    return SegmentPooledClassifier(config).eval()


@pytest.mark.parametrize("pooling", ["segments", "segments-below", "probe", "probe-cls"])
def test_export_graph_computes_what_the_eager_model_computes(pooling: str):
    """The segments head runs the whole last layer in the export graph (the [CLS]-only
    shortcut would drop the tokens it reads); segments-below reads the layer below and runs
    the last one for [CLS] alone. Either way equal to the eager model, padding included."""
    torch.manual_seed(0)
    model = two_layer_classifier(pooling)
    ids = torch.randint(5, 60, (2, 256))
    ids[:, 0] = 0
    ids[:, [150, 180, 200]] = SEP_ID
    mask = torch.ones_like(ids)
    mask[1, 190:] = 0
    with torch.no_grad():
        eager = model(input_ids=ids, attention_mask=mask).logits
        graph = ClassifierGraph(model)(ids, mask)
        facts_changed = ids.clone()
        facts_changed[0, 185:200] = 7
        moved = model(input_ids=facts_changed, attention_mask=mask).logits
    torch.testing.assert_close(graph, eager, atol=1e-5, rtol=0)
    assert not torch.allclose(moved[0], eager[0])  # the facts segment reaches the logits


@pytest.mark.parametrize(
    ("pooling", "runs_last_layer_whole"),
    [("segments", True), ("segments-below", False), ("probe", True), ("probe-cls", True)],
)
def test_only_the_segments_head_exports_the_whole_last_layer(
    pooling: str, runs_last_layer_whole: bool, tmp_path: Path
):
    """The speed segments-below is for: its graph computes the last layer for [CLS] alone
    (those pieces are called outside the layer module, so no node is scoped to it)."""
    import onnx

    from treelens.training.export import export_graph

    export_graph(ClassifierGraph(two_layer_classifier(pooling)), tmp_path / "g.onnx", 128, 1, 0)
    names = [n.name for n in onnx.load(str(tmp_path / "g.onnx")).graph.node]
    assert any("/layer.0/" in name for name in names)
    assert any("/layer.1/" in name for name in names) == runs_last_layer_whole


@pytest.mark.parametrize("pooling", ["segments", "probe", "probe-cls"])
def test_int8_keeps_the_head_in_fp32(pooling: str, tmp_path: Path):
    """The head's Linear exports as a Gemm, which the quantizer turns into a MatMul before
    it quantizes: the head stays fp32 all the same (the probe's head, whose weights are the
    regression's divided by each feature's spread, is the one int8 hurts most)."""
    import onnx

    from treelens.training.export import export_graph, quantize

    export_graph(ClassifierGraph(two_layer_classifier(pooling)), tmp_path / "g.onnx", 128, 1, 0)
    quantize(tmp_path / "g.onnx", tmp_path / "q.onnx")
    nodes = onnx.load(str(tmp_path / "q.onnx")).graph.node
    quantized = [n.name for n in nodes if n.op_type == "MatMulInteger"]
    assert any("/layer.0/" in name for name in quantized)
    assert not [name for name in quantized if "classifier" in name]


def test_unknown_node_names_stop_the_export_even_with_a_gemm_head(tmp_path: Path):
    """The head's Gemm is always found by name, so it must not count as having found the
    [CLS] path: a graph whose MatMuls are all scoped to layers still stops the export."""
    import onnx
    from onnx import TensorProto, helper

    from treelens.training.export import cls_path_nodes
    from treelens.training.options import StageError

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="/deep/layer.0/renamed/MatMul"),
            helper.make_node("Gemm", ["h", "w"], ["y"], name="/deep/classifier/out_proj/Gemm"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "g.onnx"))
    with pytest.raises(StageError, match="cannot tell the \\[CLS\\] path"):
        cls_path_nodes(tmp_path / "g.onnx")


@pytest.fixture(scope="module")
def segments_run(tiny_run: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finetune with --pooling segments, then its export (parity checks included)."""
    out = tmp_path_factory.mktemp("segments")
    done = finetune_cli(tiny_run, tiny_data, out / "finetune", "--pooling", "segments")
    assert done.returncode == 0, done.stderr[-3000:]
    done = export_cli(tiny_data, out / "finetune", out / "export")
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_finetune_saves_the_pooling_and_loaders_honour_it(segments_run: Path):
    config = json.loads((segments_run / "finetune" / "model" / "config.json").read_text())
    assert config[CONFIG_KEY] == "segments"
    assert isinstance(load_classifier(segments_run / "finetune" / "model"), SegmentPooledClassifier)


def test_resuming_with_another_pooling_is_refused(segments_run: Path, tiny_run: Path, tiny_data: Path):
    """The checkpoint holds a segments head: resuming it as [CLS] would load the wrong weights."""
    done = finetune_cli(tiny_run, tiny_data, segments_run / "finetune", "--pooling", "cls")
    assert done.returncode != 0
    assert "was written with --pooling segments, not cls" in done.stderr
    assert "--overwrite-output-dir" in done.stderr


def test_exported_bundle_classifies(segments_run: Path):
    classifier = Classifier.load(segments_run / "export" / "bundle", device="cpu", threads=1)
    tree = ProjectTree([FileEntry("app/main.py", 10, "file"), FileEntry("setup.py", 5, "file")], {})
    result = classifier.classify(tree)
    assert set(result.probabilities) == set(classifier.labels)


def test_segments_below_exports_a_cls_only_last_layer(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    """A tiny finetune with --pooling segments-below and the summary loss, exported through
    the CLI (parity checks against the eager model included): the graph computes the last
    layer for [CLS] alone (its pieces outside a layer module, as for the stock head), which
    is the speed this pooling is for, and the bundle classifies."""
    import onnx

    done = finetune_cli(
        tiny_run, tiny_data, tmp_path / "finetune", "--pooling", "segments-below", "--summary-weight", "1.0"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    model = load_classifier(tmp_path / "finetune" / "model")
    assert (
        isinstance(model, SegmentPooledClassifier) and getattr(model.config, CONFIG_KEY) == "segments-below"
    )
    done = export_cli(tiny_data, tmp_path / "finetune", tmp_path / "export")
    assert done.returncode == 0, done.stderr[-3000:]
    names = [n.name for n in onnx.load(str(tmp_path / "export" / "bundle" / "model-int8.onnx")).graph.node]
    last = f"/layer.{model.config.num_hidden_layers - 1}/"
    assert not any(last in name for name in names)
    classifier = Classifier.load(tmp_path / "export" / "bundle", device="cpu", threads=1)
    result = classifier.classify(ProjectTree([FileEntry("app/main.py", 10, "file")], {}))
    assert set(result.probabilities) == set(classifier.labels)


@pytest.mark.parametrize("pooling", ["probe", "probe-cls"])
def test_the_probe_head_computes_the_fitted_regression(pooling: str):
    """``fit_head`` folds the scaler into the regressions: the classifier's own logits give
    the probabilities scikit-learn's pipeline gives on the same features; a label with no
    positive record gets a constant, near-zero probability. ``probe-cls`` reads the last
    [CLS] state after the segment means."""
    from treelens.training import modeling, probe

    torch.manual_seed(0)
    model = two_layer_classifier(pooling)
    rng = np.random.default_rng(0)
    ids = [
        [0, *rng.integers(5, 60, size=int(n)).tolist(), SEP_ID, 9, SEP_ID] for n in rng.integers(20, 200, 40)
    ]
    y = rng.integers(0, 2, size=(40, 8)).astype(np.float32)
    y[:, 7] = 0
    ctx = modeling.setup_run("cpu", 1)
    oof = probe.fit_head(model, ids, y, 1, 0, ctx)
    x = probe.head_features(model, ids, 1, ctx)
    reads_cls = pooling == "probe-cls"
    assert x.shape == (40, (SEGMENTS + reads_cls) * 32)
    if reads_cls:
        first = torch.tensor([ids[0]])
        with torch.no_grad():
            states = model.longformer(
                input_ids=first,
                attention_mask=torch.ones_like(first),
                global_attention_mask=(torch.arange(first.shape[1]) == 0).long()[None],
            ).last_hidden_state
        np.testing.assert_allclose(x[0, -32:], states[0, 0].numpy(), atol=1e-5)
    fitted, _ = probe.fit(x, y, 0)
    own = modeling.predict(model, ids, 1, 8, ctx)
    np.testing.assert_allclose(own, fitted.predict_proba(x), atol=1e-4)
    assert oof.shape == y.shape and not np.allclose(oof, own)  # out of fold: not the final fit's
    assert own[:, 7].max() < 1e-6


@pytest.fixture(scope="module", params=["probe", "probe-cls"])
def probe_run(
    request: pytest.FixtureRequest, tiny_run: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny finetune with --pooling probe (and probe-cls), then its export (parity checks
    included; probe-cls in fp32, as the default preset ships it)."""
    out = tmp_path_factory.mktemp(request.param)
    done = finetune_cli(tiny_run, tiny_data, out / "finetune", "--pooling", request.param)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"--pooling {request.param}: fitting the head on the frozen states of 7 texts" in done.stderr
    precision = ["--precision", "fp32"] if request.param == "probe-cls" else []
    done = export_cli(tiny_data, out / "finetune", out / "export", *precision)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def pooling_of_run(run: Path) -> str:
    return json.loads((run / "finetune" / "model" / "config.json").read_text())[CONFIG_KEY]


def test_finetune_probe_is_the_probe_crossval_fits(probe_run: Path, tiny_run: Path, tiny_data: Path):
    """What crossval scores for a probe preset (the frozen pretrained model's features, the
    probe fit on training + validation records) is the model finetune saves: the same
    probabilities on the held-out test records. The pretrained weights stay as they were."""
    from treelens.model.tokenizer import PAD, encode_batch, line_counter, load_tokenizer
    from treelens.training import modeling, probe
    from treelens.training.texts import labelled_splits, load_records, render

    splits = labelled_splits(load_records([tiny_data], tiny_data.parent))
    tokenizer = load_tokenizer(tiny_run / "pretrain" / "tokenizer.json")
    pad = tokenizer.token_to_id(PAD)

    def ids(records: list) -> list[list[int]]:
        return encode_batch(tokenizer, render([r.tree for r in records], 512, line_counter(tokenizer)), 512)

    fit_on, test = ids(splits["train"] + splits["validation"]), ids(splits["test"])
    ctx = modeling.setup_run("cpu", 1)
    pooling = pooling_of_run(probe_run)
    x = probe.frozen_features(tiny_run / "pretrain" / "model", fit_on + test, pad, ctx, pooling)
    y = np.array([r.labels for r in splits["train"] + splits["validation"]], dtype=np.float32)
    expected = probe.fold_probabilities(x, y, list(range(len(fit_on))), list(range(len(fit_on), len(x))), 0)
    model = load_classifier(probe_run / "finetune" / "model")
    assert getattr(model.config, CONFIG_KEY) == pooling
    np.testing.assert_allclose(modeling.predict(model, test, pad, 4, ctx), expected["model/test"], atol=1e-4)
    pretrained = LongformerForMaskedLM.from_pretrained(tiny_run / "pretrain" / "model").longformer
    torch.testing.assert_close(model.longformer.state_dict(), pretrained.state_dict())


def test_probe_finetune_runs_again_in_its_folder(probe_run: Path, tiny_run: Path, tiny_data: Path):
    """A probe keeps no checkpoint: the same command again (``all`` after the install gate
    refused, say) fits it again instead of refusing the non-empty folder."""
    pooling = pooling_of_run(probe_run)
    done = finetune_cli(tiny_run, tiny_data, probe_run / "finetune", "--pooling", pooling)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the probe (out of fold)" in done.stderr


def test_probe_bundle_classifies(probe_run: Path):
    """The bundle runs; ``--precision fp32`` (probe-cls here) ships the graph unquantized: the
    fp32 bundle's graph, checked to 1e-4, with no int8 parity to report."""
    classifier = Classifier.load(probe_run / "export" / "bundle", device="cpu", threads=1)
    result = classifier.classify(ProjectTree([FileEntry("app/main.py", 10, "file")], {}))
    assert set(result.probabilities) == set(classifier.labels)
    manifest = classifier.bundle.manifest
    if pooling_of_run(probe_run) == "probe":
        assert manifest["precision"] == "int8" and set(manifest["parity"]) == {"fp32", "int8"}
        return
    assert manifest["precision"] == "fp32" and set(manifest["parity"]) == {"fp32"}
    shipped = (probe_run / "export" / "bundle" / "model-fp32.onnx").read_bytes()
    assert shipped == (probe_run / "export" / "bundle-fp32" / "model-fp32.onnx").read_bytes()
    assert not (probe_run / "export" / "graphs" / "model-int8.onnx").exists()


@pytest.mark.parametrize(
    "flag", [["--head-epochs", "1"], ["--distill-weight", "0.5"], ["--summary-weight", "1"]]
)
def test_probe_refuses_options_that_train_the_longformer(
    tiny_run: Path, tiny_data: Path, tmp_path: Path, flag
):
    done = finetune_cli(tiny_run, tiny_data, tmp_path / "finetune", "--pooling", "probe", *flag)
    assert done.returncode != 0
    assert flag[0] in done.stderr and "pooling" in done.stderr


def test_probe_mix_takes_thresholds_from_its_own_out_of_fold_probabilities(
    probe_run: Path, tiny_run: Path, tiny_data: Path
):
    """The probe with the wide path: the saved thresholds are tuned on the mix of both paths'
    out-of-fold probabilities over the training + validation records, not the wide path's."""
    from treelens.model.tokenizer import PAD, encode_batch, line_counter, load_tokenizer
    from treelens.training import modeling, probe, wide
    from treelens.training.metrics import tune_thresholds
    from treelens.training.stage_configs import parse_label_weights
    from treelens.training.texts import labelled_splits, load_records, render

    splits = labelled_splits(load_records([tiny_data], tiny_data.parent))
    records = splits["train"] + splits["validation"]
    tokenizer = load_tokenizer(tiny_run / "pretrain" / "tokenizer.json")
    ids = encode_batch(tokenizer, render([r.tree for r in records], 512, line_counter(tokenizer)), 512)
    y = np.array([r.labels for r in records], dtype=np.float32)
    x = probe.frozen_features(
        tiny_run / "pretrain" / "model",
        ids,
        tokenizer.token_to_id(PAD),
        modeling.setup_run("cpu", 1),
        pooling_of_run(probe_run),
    )
    _, probe_oof = probe.fit(x, y, seed=0)
    wide_oof = wide.WidePath(tokenizer, seed=0).fit_out_of_fold(ids, y)
    config = json.loads((probe_run / "finetune" / "all_results.json").read_text())["history"]["config"]
    weights = wide.label_weights(config["wide_weight"], parse_label_weights(config["label_wide_weight"]))
    mixed = wide.mix(wide.to_logits(probe_oof), wide_oof, weights)
    saved = json.loads((probe_run / "finetune" / "thresholds.json").read_text())
    assert saved == pytest.approx(tune_thresholds(y, mixed), abs=1e-6)
    assert saved != pytest.approx(tune_thresholds(y, wide.sigmoid(wide_oof)), abs=1e-6)
