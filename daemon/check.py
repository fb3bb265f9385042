"""``python -m treelens.daemon --check``: can this installation classify? (for the extension and for people)

Loads the model exactly as the daemon would, classifies a folder (the current one by
default) and prints one line; exit status 0 when healthy, 2 when there is no usable
model (missing, tampered, or broken: e.g. it outputs NaN on this folder), 1 when the
folder cannot be read. A bug is not reported as either: it shows its traceback (exit 1).

It imports neither the language server nor onnxruntime until it needs the runtime, so it
answers fast and stays usable when the LSP stack is what is broken.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from treelens.daemon.scan import ScanError, scan
from treelens.model.bundle import BundleError, no_model_message
from treelens.model.errors import UsageError

EXIT_OK = 0
EXIT_FOLDER = 1
EXIT_NO_MODEL = 2


def run_check(folder: Path, model_path: Path | None, device: str, as_json: bool) -> int:
    """Load the model, classify ``folder``, print the result; returns the exit status."""
    from treelens.model.runtime import Classifier  # onnxruntime: imported only when needed

    start = time.perf_counter()
    try:
        classifier = Classifier.load(model_path, device=device)
    except (BundleError, UsageError) as error:  # the bundle, or a device this machine lacks
        print(f"treelens daemon check failed: {no_model_message(error)}", file=sys.stderr)
        return EXIT_NO_MODEL
    loaded = time.perf_counter()
    try:
        result = scan(folder)
    except ScanError as error:
        print(f"treelens daemon check failed: cannot read {folder}: {error}", file=sys.stderr)
        return EXIT_FOLDER
    try:
        classification = classifier.classify(result.tree)
    except BundleError as error:  # a model that breaks on this folder's text (e.g. outputs NaN)
        print(f"treelens daemon check failed: {no_model_message(error)}", file=sys.stderr)
        return EXIT_NO_MODEL
    done = time.perf_counter()
    report = {
        **classification.to_json(),
        "folder": str(result.root),
        "files": len(result.tree.files),
        "modelPath": str(classifier.bundle.path),
        "device": classifier.providers[0],
        "loadMs": round((loaded - start) * 1000, 1),
        "elapsedMs": round((done - loaded) * 1000, 1),
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"treelens daemon OK: model {classifier.version} ({report['modelPath']}, {report['device']}, "
            f"loaded in {report['loadMs']:.0f} ms); {report['folder']}: {report['files']} files -> "
            f"{', '.join(classification.labels) or 'no label'} in {report['elapsedMs']:.0f} ms"
        )
    return EXIT_OK
