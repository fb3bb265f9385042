"""Feedback over LSP: acknowledged submissions are in the SQLite file, even after kill -9."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon_client import start_daemon, uri
from tests.folders import write_files
from treelens.daemon.protocol import CLASSIFY, SUBMIT_FEEDBACK, TOKENIZE
from treelens.model.feedback import FeedbackStore
from treelens.model.labels import LABELS

pytestmark = pytest.mark.asyncio(loop_scope="module")

PERSON = {**dict.fromkeys(LABELS, 0), "mobile": 1, "frontend": 1}


async def test_feedback_survives_kill_9_and_restart(tmp_path: Path, tiny_bundle: Path) -> None:
    project = tmp_path / "project"
    write_files(project, {"main.py": "", "requirements.txt": "requests\n"})
    database = tmp_path / "data" / "feedback.sqlite3"
    options = {"modelPath": str(tiny_bundle), "feedbackDatabase": str(database), "debounceMs": 100}

    daemon = await start_daemon([project], options)
    first = await daemon.next_labels()
    assert await daemon.call(CLASSIFY, {}) == first
    write_files(project, {"AndroidManifest.xml": "<manifest/>", "app/src/main/kotlin/MainActivity.kt": ""})
    prediction = await daemon.next_labels()  # the project changed under the daemon
    assert prediction["probabilities"] != first["probabilities"] and "kotlin" in prediction["languages"]
    model_text = (await daemon.call(TOKENIZE, {}))["text"]
    answer = await daemon.call(SUBMIT_FEEDBACK, {"labels": PERSON, "comment": "an Android app"})
    assert answer == {"id": 1, "stored": True}
    await daemon.kill()  # no shutdown: only what was committed before the answer survives

    (stored,) = list(FeedbackStore(database).entries())
    assert stored.labels == PERSON
    assert stored.comment == "an Android app"
    assert stored.folder == uri(project)
    assert stored.model_text == model_text
    assert stored.prediction is not None
    assert stored.prediction.labels == prediction["labels"]
    assert stored.prediction.probabilities == prediction["probabilities"]
    assert stored.prediction.model_version == prediction["modelVersion"]
    assert "AndroidManifest.xml" in [f.path for f in stored.tree.files]
    assert stored.tree.manifests == {"AndroidManifest.xml": "<manifest/>", "requirements.txt": "requests\n"}

    restarted = await start_daemon([project], options)
    again = await restarted.call(SUBMIT_FEEDBACK, {"labels": {**PERSON, "cli": True}})
    assert again == {"id": 2, "stored": True}
    await restarted.close()
    assert [entry.id for entry in FeedbackStore(database).entries()] == [1, 2]
