"""The ONNX runtime on the tiny bundle: classify, buckets, thresholds, cache, tokenize."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from tests.shared_data import labelled_records
from treelens.model.labels import LABELS
from treelens.model.runtime import CACHE_SIZE, Classifier, choose_providers
from treelens.model.tokenizer import SEP, encode_batch
from treelens.model.tree import ProjectTree

RESULT_KEYS = {
    "labels",
    "uncertain",
    "noProjectFiles",
    "probabilities",
    "thresholds",
    "tokenCount",
    "truncated",
    "modelVersion",
    "languages",
    "technologies",
}


@pytest.fixture(scope="module")
def classifier(tiny_bundle):
    return Classifier.load(tiny_bundle, device="cpu", threads=1)


def some_trees(n: int) -> list[ProjectTree]:
    records = sorted(labelled_records().values(), key=lambda r: r["id"])[:n]
    return [ProjectTree.from_record(r) for r in records]


def test_classify_a_project(classifier, tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    result = classifier.classify(ProjectTree.from_record(labelled_records()["AdamSzL/compose-weather-app"]))
    assert classifier.version == manifest["version"] == result.model_version
    assert classifier.labels == LABELS and classifier.max_tokens == 512
    assert set(result.probabilities) == set(LABELS)
    assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())
    assert result.labels == [n for n in LABELS if result.probabilities[n] >= result.thresholds[n]]
    assert 0 < result.token_count <= classifier.max_tokens - 2
    assert "kotlin" in result.languages
    payload = result.to_json()
    assert set(payload) == RESULT_KEYS
    json.dumps(payload)  # plain JSON types only


def test_many_equal_one_by_one(classifier):
    """A project's answer never depends on the projects classified with it (int8 scales
    are computed per input tensor, so the runtime never batches)."""
    trees = some_trees(5)
    texts = [classifier.describe(t) for t in trees]
    seen = []
    together = classifier.classify_texts(texts, progress=seen.append)
    assert sum(seen) == 5
    fresh = Classifier.load(classifier.bundle.path, device="cpu", threads=1)
    for text, many_result in zip(reversed(texts), reversed(together), strict=True):
        alone = fresh.classify_text(text)
        assert alone.probabilities == many_result.probabilities
        assert alone.labels == many_result.labels


def test_padding_to_a_larger_bucket_does_not_change_the_answer(classifier):
    tree = ProjectTree.from_paths(["manage.py", "shop/views.py", "shop/urls.py", "requirements.txt"])
    ids = classifier.encode(classifier.describe(tree).text)
    assert len(ids) <= 256
    small = classifier.run_ids(ids, pad_to=256)
    large = classifier.run_ids(ids, pad_to=512)
    assert classifier.bundle.bucket_for(len(ids)).length == 256
    np.testing.assert_allclose(small, large, atol=1e-4)


def test_cache_by_model_text(classifier):
    text = classifier.describe(ProjectTree.from_paths(["cache_probe/main.go", "go.mod"]))
    before = len(classifier._cache)
    first = classifier.classify_text(text)
    second = classifier.classify_text(text)
    assert len(classifier._cache) == before + 1
    assert first.probabilities == second.probabilities


def test_threshold_overrides(classifier):
    text = classifier.describe(some_trees(1)[0])
    everything = classifier.classify_text(text, thresholds=dict.fromkeys(LABELS, 0.0001))
    nothing = classifier.classify_text(text, thresholds=dict.fromkeys(LABELS, 0.9999))
    assert everything.labels == list(LABELS) and nothing.labels == []
    assert everything.thresholds["cli"] == 0.0001
    with pytest.raises(ValueError, match="unknown label 'gui'"):
        classifier.classify_text(text, thresholds={"gui": 0.5})
    with pytest.raises(ValueError, match="between 0 and 1"):
        classifier.classify_text(text, thresholds={"cli": 1.5})


def test_tokenize_shows_every_token(classifier):
    text = classifier.describe(some_trees(1)[0]).text
    tokens = classifier.tokenize(text)
    assert tokens[0] == (0, "[CLS]") and tokens[-1] == (2, "[SEP]")
    assert [token_id for token_id, _piece in tokens] == classifier.encode(text)  # what the model reads
    assert [piece for _id, piece in tokens].count("[SEP]") == 3  # text, project, facts
    assert "".join(piece for _id, piece in tokens if piece not in ("[CLS]", "[SEP]")) == text
    assert len(tokens) == classifier.describe(some_trees(1)[0]).token_count + 4


def test_special_tokens_in_names_are_plain_text(classifier):
    """A file named [SEP] or [CLS] is read as text: the model still sees three segments."""
    tree = ProjectTree.from_paths(["[SEP]/[CLS].py", "src/[SEP]", "main.py"], name="[SEP]")
    ids = classifier.encode(classifier.describe(tree).text)
    sep_id, cls_id = classifier.tokenizer.token_to_id(SEP), classifier.tokenizer.token_to_id("[CLS]")
    assert ids.count(sep_id) == 3 and ids.count(cls_id) == 1


def test_one_call_with_more_texts_than_the_cache_holds(classifier):
    """Every text of a call gets its row even when the call holds more distinct texts than
    the result cache (an evaluation of a whole data set): rows are not read back from it."""
    texts = [f"# tree\nsrc/module_{i}.py\n" for i in range(CACHE_SIZE + 8)]
    rows = classifier.probabilities(texts)
    assert rows.shape == (len(texts), len(LABELS))
    np.testing.assert_allclose(rows[0], classifier.run_ids(classifier.encode(texts[0])), atol=1e-6)


def test_training_and_runtime_cut_a_long_text_alike(classifier):
    """A text longer than the budget (not made by describe) is cut the same way by the
    training stages (encode_batch) and the runtime: to max_tokens, still ending in [SEP]."""
    text = "".join(f"src/module_{i}/handler_{i}.py\n" for i in range(2000))
    runtime = classifier.encode(text)
    (training,) = encode_batch(classifier.tokenizer, [text], classifier.max_tokens)
    sep_id = classifier.tokenizer.token_to_id(SEP)
    assert len(runtime) == classifier.max_tokens and runtime[-1] == sep_id
    assert training == runtime
    assert [token_id for token_id, _piece in classifier.tokenize(text)] == runtime  # the view cuts alike


def test_providers():
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    assert choose_providers("auto")[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            choose_providers("cuda")
    with pytest.raises(ValueError, match="device must be one of"):
        choose_providers("tpu")
