"""Model bundles: a folder with the ONNX graph(s), ``tokenizer.json`` and ``manifest.json``.

The manifest names the model and its version, the label order, per-label thresholds,
the model-text input format the model was trained on, the token budget, the length
buckets and the graph serving each, the sha256 of every file, and the training-data
summary and evaluation metrics. ``load_bundle`` trusts nothing it has not checked:
a changed file, a different input format or label order is refused with a message
naming the bundle, the file, the problem and what to do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treelens.model.errors import TreelensError, UsageError
from treelens.model.input import INPUT_FORMAT, MIN_MAX_TOKENS
from treelens.model.labels import LABELS, check_thresholds

BUNDLE_FORMAT = 1
MANIFEST_FILE = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
"""The shipped manifest is 25 KB; a bigger one is not ours, and is not read into memory."""
MANIFEST_KEYS = frozenset(
    {
        # read and checked here
        "bundle_format",
        "name",
        "version",
        "labels",
        "thresholds",
        "input_format",
        "max_tokens",
        "buckets",
        "inputs",
        "outputs",
        "tokenizer",
        "files",
        # written by training/export.py for people and benches: free-form
        "created",
        "precision",
        "architecture",
        "training",
        "metrics",
        "export",
        "parity",
    }
)
"""Every key a manifest may have: an unknown one means another tool or a hand edit wrote it."""
BUCKET_KEYS = frozenset({"length", "graph"})
FILE_ENTRY_KEYS = frozenset({"sha256", "bytes"})
MAX_TOKENS_LIMIT = 1 << 16
"""The largest token budget a manifest may claim (the shipped model takes 4,096): the
runtime probes every graph at its longest bucket at load, so an absurd claim would
otherwise cost gigabytes before the graph could refuse it."""
GRAPH_INPUTS = ("input_ids", "attention_mask")
GRAPH_OUTPUTS = ("logits",)
DEFAULT_BUNDLE_DIR = Path(__file__).resolve().parent / "assets" / "default"
RETRAIN = "retrain and install one with `treelens-train all --install` or point modelPath at a good bundle"


class BundleError(TreelensError):
    """A model bundle that cannot be used; the message names the bundle, file and problem,
    and what to do (usually RETRAIN)."""


def no_model_message(error: TreelensError) -> str:
    """What a person reads when no model can serve: why the load failed (a BundleError, or a
    UsageError for a device this machine lacks), which already says what to do."""
    return f"Treelens has no usable model: {error}"


@dataclass(frozen=True)
class Bucket:
    """Texts of up to ``length`` tokens are padded to ``length`` and run by ``graph``."""

    length: int
    graph: str


@dataclass(frozen=True)
class Bundle:
    """A verified bundle."""

    path: Path
    name: str
    version: str
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    input_format: int
    max_tokens: int
    buckets: tuple[Bucket, ...]
    tokenizer: str
    manifest: dict[str, Any] = field(repr=False)

    def file(self, name: str) -> Path:
        return self.path / name

    def bucket_for(self, length: int) -> Bucket:
        """The smallest bucket that holds ``length`` tokens (the largest when none does)."""
        for bucket in self.buckets:
            if length <= bucket.length:
                return bucket
        return self.buckets[-1]


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_entries(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The manifest's ``files`` section: sha256 and size of each named file."""
    return {
        name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        for name in names
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST_FILE).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _fail(path: Path, what: str, problem: str, todo: str = RETRAIN) -> BundleError:
    return BundleError(f"model bundle {path}: {what}: {problem}; {todo}")


def _require(manifest: dict, key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = manifest.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _fail(path, MANIFEST_FILE, f"'{key}' is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def load_bundle(path: Path | str) -> Bundle:
    """Read and verify a bundle: manifest fields, input format, labels, every file's sha256."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise _fail(path, "folder", "does not exist or is not a folder")
    manifest = _read_manifest(path)
    unknown = sorted(set(manifest) - MANIFEST_KEYS)
    if unknown:
        raise _fail(
            path, MANIFEST_FILE, f"unknown key(s) {unknown!s:.200}; a bundle has only {sorted(MANIFEST_KEYS)}"
        )

    bundle_format = _require(manifest, "bundle_format", int, path)
    if bundle_format != BUNDLE_FORMAT:
        raise _fail(
            path, MANIFEST_FILE, f"bundle format {bundle_format}, this Treelens reads {BUNDLE_FORMAT}"
        )
    input_format = _require(manifest, "input_format", int, path)
    if input_format != INPUT_FORMAT:
        raise _fail(
            path,
            MANIFEST_FILE,
            f"the model was trained on model-text input format {input_format}, this Treelens renders "
            f"format {INPUT_FORMAT}",
        )
    labels = tuple(_require(manifest, "labels", list, path))
    if labels != LABELS:
        raise _fail(
            path, MANIFEST_FILE, f"label order {list(labels)} differs from this Treelens's {list(LABELS)}"
        )
    try:
        thresholds = check_thresholds(_require(manifest, "thresholds", dict, path), every_label=True)
    except UsageError as error:
        raise _fail(
            path, MANIFEST_FILE, f"'thresholds' must give every label a number between 0 and 1 ({error})"
        ) from None
    max_tokens = _require(manifest, "max_tokens", int, path)
    if not MIN_MAX_TOKENS <= max_tokens <= MAX_TOKENS_LIMIT:
        raise _fail(
            path, MANIFEST_FILE, f"max_tokens {max_tokens} is not from {MIN_MAX_TOKENS} to {MAX_TOKENS_LIMIT}"
        )
    buckets = _buckets(_require(manifest, "buckets", list, path), path)
    if buckets[-1].length != max_tokens:
        raise _fail(path, MANIFEST_FILE, f"largest bucket {buckets[-1].length} != max_tokens {max_tokens}")
    tokenizer = _require(manifest, "tokenizer", str, path)
    inputs = tuple(_require(manifest, "inputs", list, path))
    if inputs != GRAPH_INPUTS:
        raise _fail(
            path, MANIFEST_FILE, f"graph inputs {list(inputs)}, this Treelens feeds {list(GRAPH_INPUTS)}"
        )
    outputs = tuple(_require(manifest, "outputs", list, path))
    if outputs != GRAPH_OUTPUTS:
        raise _fail(
            path, MANIFEST_FILE, f"graph outputs {list(outputs)}, this Treelens reads {list(GRAPH_OUTPUTS)}"
        )
    _verify_files(path, _require(manifest, "files", dict, path), {tokenizer, *(b.graph for b in buckets)})
    return Bundle(
        path=path,
        name=_require(manifest, "name", str, path),
        version=_require(manifest, "version", str, path),
        labels=labels,
        thresholds=thresholds,
        input_format=input_format,
        max_tokens=max_tokens,
        buckets=buckets,
        tokenizer=tokenizer,
        manifest=manifest,
    )


def _read_manifest(path: Path) -> dict[str, Any]:
    """manifest.json as a JSON object, read only when it is of a sane size and depth."""
    manifest_path = path / MANIFEST_FILE
    try:
        with open(manifest_path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise _fail(path, MANIFEST_FILE, "missing (not a model bundle)") from None
    except OSError as error:
        raise _fail(path, MANIFEST_FILE, f"cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise _fail(path, MANIFEST_FILE, f"larger than {MAX_MANIFEST_BYTES} bytes (not a Treelens manifest)")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(path, MANIFEST_FILE, f"cannot be read as JSON ({error})") from None
    except RecursionError:
        raise _fail(path, MANIFEST_FILE, "cannot be read as JSON (nested too deeply)") from None
    if not isinstance(manifest, dict):
        raise _fail(path, MANIFEST_FILE, "is not a JSON object")
    return manifest


def _buckets(items: list, path: Path) -> tuple[Bucket, ...]:
    buckets = []
    for item in items:
        if not (
            isinstance(item, dict)
            and set(item) == BUCKET_KEYS
            and type(item["length"]) is int
            and item["length"] > 0
            and isinstance(item["graph"], str)
        ):
            raise _fail(
                path, MANIFEST_FILE, f"bucket {item!r:.80} must be {{'length': positive int, 'graph': file}}"
            )
        buckets.append(Bucket(item["length"], item["graph"]))
    if not buckets or [b.length for b in buckets] != sorted({b.length for b in buckets}):
        raise _fail(path, MANIFEST_FILE, "'buckets' must be non-empty with increasing lengths")
    return tuple(buckets)


def _verify_files(path: Path, files: dict, needed: set[str]) -> None:
    """Every needed file is listed, and every listed file exists with its recorded sha256."""
    unlisted = sorted(needed - set(files))
    if unlisted:
        raise _fail(path, MANIFEST_FILE, f"'files' does not list {unlisted}")
    for name, entry in files.items():
        if "/" in name or "\\" in name or name.startswith("."):
            raise _fail(path, MANIFEST_FILE, f"file name {name!r} must be a plain name inside the bundle")
        target = path / name
        if not target.is_file():
            raise _fail(path, name, "listed in manifest.json but missing")
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(expected, str):
            raise _fail(path, MANIFEST_FILE, f"no sha256 recorded for {name}")
        unknown = sorted(str(key) for key in set(entry) - FILE_ENTRY_KEYS)
        if unknown:
            raise _fail(
                path,
                MANIFEST_FILE,
                f"files entry {name!r:.80} has unknown key(s) {unknown!r:.200}; an entry has only "
                f"{sorted(FILE_ENTRY_KEYS)}",
            )
        actual = sha256_file(target)
        if actual != expected:
            raise _fail(
                path,
                name,
                f"sha256 {actual[:16]}… does not match the manifest's {expected[:16]}… "
                "(changed or corrupted)",
                "reinstall the bundle (it must be byte for byte what was exported)",
            )
