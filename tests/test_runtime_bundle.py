"""Bundle verification: a changed, incomplete or mismatched bundle is refused, clearly;
and the runtime never imports torch or transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from treelens.model.bundle import BundleError, load_bundle
from treelens.model.runtime import Classifier


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


def edit_manifest(bundle: Path, **changes) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_a_good_bundle_loads(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    assert [b.length for b in bundle.buckets] == [256, 512]
    assert bundle.bucket_for(10).length == 256 and bundle.bucket_for(300).length == 512
    assert bundle.manifest["precision"] == "int8"


def test_changed_graph_is_refused(bundle_copy):
    graph = next(bundle_copy.glob("*.onnx"))
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{graph.name}: sha256 .* does not match") as error:
        Classifier.load(bundle_copy)
    assert str(bundle_copy) in str(error.value) and "reinstall" in str(error.value)


def test_changed_tokenizer_is_refused(bundle_copy):
    tokenizer = bundle_copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNKNOWN]"', 1))
    with pytest.raises(BundleError, match=r"tokenizer\.json: sha256"):
        load_bundle(bundle_copy)


def test_other_input_format_is_refused(bundle_copy):
    edit_manifest(bundle_copy, input_format=99)
    with pytest.raises(
        BundleError, match=r"manifest\.json: the model was trained on model-text input format 99"
    ):
        load_bundle(bundle_copy)


def test_other_label_order_is_refused(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    edit_manifest(bundle_copy, labels=list(reversed(manifest["labels"])))
    with pytest.raises(BundleError, match="label order"):
        load_bundle(bundle_copy)


def test_other_graph_inputs_are_refused(bundle_copy):
    edit_manifest(bundle_copy, inputs=["input_ids", "attention_mask", "global_attention_mask"])
    with pytest.raises(BundleError, match="graph inputs"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "manifest.json").unlink(), "manifest.json: missing"),
        (lambda b: (b / "manifest.json").write_text("{not json"), "manifest.json: cannot be read as JSON"),
        (lambda b: (b / "tokenizer.json").unlink(), "tokenizer.json: listed in manifest.json but missing"),
        (lambda b: edit_manifest(b, thresholds={"backend": 0.5}), "'thresholds' must give every label"),
        (lambda b: edit_manifest(b, max_tokens=4096), "largest bucket 512 != max_tokens 4096"),
        (lambda b: edit_manifest(b, files={}), "'files' does not list"),
        (lambda b: edit_manifest(b, version=None), "'version' is missing"),
    ],
)
def test_broken_bundles_are_refused(bundle_copy, damage, message):
    damage(bundle_copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(BundleError, match="does not exist or is not a folder"):
        Classifier.load(tmp_path / "nowhere")


def test_runtime_runs_without_torch_or_transformers(tiny_bundle):
    """Import the runtime and classify with torch and transformers made unimportable."""
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "optimum"):
                    raise ImportError(f"{{name}} is blocked in this test")
        sys.meta_path.insert(0, Block())
        from treelens.model.runtime import Classifier
        from treelens.model.tree import ProjectTree
        classifier = Classifier.load({str(tiny_bundle)!r}, device="cpu", threads=1)
        tree = ProjectTree.from_paths(["manage.py", "app/views.py", "requirements.txt"])
        result = classifier.classify(tree)
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules)
        print(sorted(result.probabilities))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "backend" in done.stdout
