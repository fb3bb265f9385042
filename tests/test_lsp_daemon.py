"""The daemon end to end over stdio: two workspace folders, the tiny model bundle, real
file-system changes. One daemon serves the whole module (start-up costs seconds)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.daemon_client import Daemon, start_daemon, uri
from tests.folders import make_git_repo, write_files
from tests.shared_data import DATA_DIR
from tests.test_runtime import RESULT_KEYS as RUNTIME_KEYS
from treelens.daemon.protocol import CLASSIFY, CLASSIFY_TREE, SUGGEST_QUERY_SET, TOKENIZE
from treelens.model.labels import LABELS

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEBOUNCE_MS = 100
QUIET_S = 1.5
"""How long 'nothing happens' is watched for: 15 debounce periods."""
RESULT_KEYS = RUNTIME_KEYS | {"folder", "elapsedMs"}
"""The daemon's classify result: the runtime's, and which folder it is of and how long it took."""
WEB = {
    ".gitignore": "generated/\n*.log\n",
    "package.json": '{"dependencies": {"express": "^4.19.0"}}',
    "src/server.js": "",
    "src/routes/users.js": "",
}
APP = {"main.py": "", "README.md": "# app\n"}
ANDROID = {
    "AndroidManifest.xml": "<manifest/>",
    "build.gradle.kts": 'dependencies { implementation("androidx.core:core-ktx:1.13.1") }',
    "app/src/main/kotlin/MainActivity.kt": "",
    "app/src/main/kotlin/ui/HomeScreen.kt": "",
}


class Workspace:
    """The module's daemon and folders."""

    def __init__(self, daemon: Daemon, web: Path, app: Path, options: dict[str, Any]) -> None:
        self.daemon, self.web, self.app, self.options = daemon, web, app, options
        self.first: dict[str, dict[str, Any]] = {}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ws(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> AsyncIterator[Workspace]:
    root = tmp_path_factory.mktemp("lsp")
    web, app = root / "web", root / "app"
    write_files(web, WEB)
    make_git_repo(web)
    write_files(app, APP)
    options = {
        "modelPath": str(tiny_bundle),
        "debounceMs": DEBOUNCE_MS,
        "feedbackDatabase": str(root / "feedback.sqlite3"),
    }
    daemon = await start_daemon([web, app], options)
    workspace = Workspace(daemon, web, app, options)
    for _ in range(2):
        first = await daemon.next_labels()
        workspace.first[first["folder"]] = first
    yield workspace
    await daemon.close()


def _quiet(daemon: Daemon) -> None:
    while not daemon.labels.empty():
        daemon.labels.get_nowait()


async def _nothing_for(daemon: Daemon, seconds: float) -> None:
    await asyncio.sleep(seconds)
    assert daemon.labels.empty(), f"unexpected labelsChanged: {daemon.labels.get_nowait()}"


async def test_initialize_reports_progress_and_first_labels(ws: Workspace) -> None:
    assert set(ws.first) == {uri(ws.web), uri(ws.app)}
    for result in ws.first.values():
        assert set(result) == RESULT_KEYS
        assert set(result["probabilities"]) == set(LABELS)
        assert all(label in LABELS for label in result["labels"])
    titles = [reports[0].title for reports in ws.daemon.progress_reports.values()]
    assert "Treelens: loading the model" in titles
    assert {"Treelens: scanning web", "Treelens: scanning app"} <= set(titles)
    for reports in ws.daemon.progress_reports.values():
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)
        assert reports[-1].message.startswith("model ") or reports[-1].message.endswith(" files")


async def test_classify_answers_per_folder(ws: Workspace) -> None:
    default = await ws.daemon.call(CLASSIFY, {})
    assert default["folder"] == uri(ws.web)  # omitted folder: the first one
    app = await ws.daemon.call(CLASSIFY, {"folder": uri(ws.app)})
    assert app["folder"] == uri(ws.app)
    assert "python" in app["languages"]
    assert "express" in default["technologies"]
    assert app["probabilities"] == ws.first[uri(ws.app)]["probabilities"]


async def test_tokenize_returns_the_tokens_of_the_model_text(ws: Workspace) -> None:
    answer = await ws.daemon.call(TOKENIZE, {"folder": uri(ws.web)})
    tokens = answer["tokens"]
    assert answer["text"].startswith("# tree\n") and "server.js" in answer["text"]
    assert tokens[0]["text"] == "[CLS]" and tokens[-1]["text"] == "[SEP]"
    assert answer["tokenCount"] == len(tokens)
    assert "".join(t["text"] for t in tokens if t["text"] not in ("[CLS]", "[SEP]")) == answer["text"]


async def test_classify_tree_takes_paths_lists_and_records(ws: Workspace) -> None:
    text = await ws.daemon.call(CLASSIFY_TREE, {"tree": "main.py\nlib/util.py\n"})
    listed = await ws.daemon.call(CLASSIFY_TREE, {"tree": ["main.py", "lib/util.py"]})
    record = {"files": [["main.py", 10, "file"], ["lib/util.py", 20, "file"]], "manifests": {}}
    from_record = await ws.daemon.call(CLASSIFY_TREE, {"tree": record})
    assert set(text) == RESULT_KEYS - {"folder"}
    assert text["probabilities"] == listed["probabilities"] == from_record["probabilities"]
    assert text["languages"] == ["python"]


async def test_new_android_sources_send_labels_changed(ws: Workspace) -> None:
    _quiet(ws.daemon)
    before = await ws.daemon.call(CLASSIFY, {"folder": uri(ws.app)})
    write_files(ws.app, ANDROID)
    changed = await ws.daemon.next_labels(ws.app)
    assert changed["probabilities"] != before["probabilities"]
    assert "kotlin" in changed["languages"]
    assert await ws.daemon.call(CLASSIFY, {"folder": uri(ws.app)}) == changed
    tokens = await ws.daemon.call(TOKENIZE, {"folder": uri(ws.app)})
    assert "AndroidManifest.xml" in tokens["text"]

    for rel in ANDROID:
        (ws.app / rel).unlink()
    shutil.rmtree(ws.app / "app")
    back = await ws.daemon.next_labels(ws.app)
    assert back["probabilities"] == before["probabilities"]  # same tree, same text, same answer
    await _nothing_for(ws.daemon, QUIET_S)


async def test_ignored_paths_trigger_no_work(ws: Workspace) -> None:
    _quiet(ws.daemon)
    mark = len(ws.daemon.log)
    # each of these would change the model text if it were not ignored
    write_files(
        ws.web,
        {
            "node_modules/react-native/AndroidManifest.xml": "",
            "generated/AndroidManifest.xml": "",
            "generated/Main.kt": "",
            "android-build.log": "",
            "build/outputs/Main.kt": "",
            ".venv/lib/site.py": "",
            ".git/hooks/extra.kt": "",
        },
    )
    (ws.web / "generated" / "Main.kt").rename(ws.web / "generated" / "Other.kt")
    shutil.rmtree(ws.web / "node_modules")
    await _nothing_for(ws.daemon, QUIET_S)
    applied = [line for line in ws.daemon.log[mark:] if "web: " in line and "applied" in line]
    assert applied == [], "ignored paths reached the tree update"

    write_files(ws.web, {"src/Main.kt": ""})  # the watcher is alive: a real change gets through
    changed = await ws.daemon.next_labels(ws.web)
    assert "kotlin" in changed["languages"]
    (ws.web / "src" / "Main.kt").unlink()
    await ws.daemon.next_labels(ws.web)


async def test_a_change_that_leaves_the_model_text_alone_is_not_classified(ws: Workspace) -> None:
    _quiet(ws.daemon)
    mark = len(ws.daemon.log)
    write_files(ws.app, {"assets/logo.png": "", "assets/icon.svg": ""})  # noise: not in the model text
    async with asyncio.timeout(30):
        while not any("app: refreshed in" in line for line in ws.daemon.log[mark:]):
            await asyncio.sleep(0.05)
    refreshed = [line for line in ws.daemon.log[mark:] if "app: refreshed in" in line]
    assert refreshed[-1].endswith("same model text")
    await _nothing_for(ws.daemon, QUIET_S)
    shutil.rmtree(ws.app / "assets")


async def test_gitignore_change_rescans(ws: Workspace) -> None:
    _quiet(ws.daemon)
    before = await ws.daemon.call(CLASSIFY, {"folder": uri(ws.web)})
    write_files(ws.web, {"tools/codegen/Generator.kt": ""})  # untracked: .gitignore decides
    await ws.daemon.next_labels(ws.web)
    gitignore = ws.web / ".gitignore"
    original = gitignore.read_text()
    gitignore.write_text(original + "tools/\n")
    await ws.daemon.next_labels(ws.web)
    tokens = await ws.daemon.call(TOKENIZE, {"folder": uri(ws.web)})
    assert "Generator.kt" not in tokens["text"] and "server.js" in tokens["text"]
    assert (await ws.daemon.call(CLASSIFY, {"folder": uri(ws.web)}))["probabilities"] == before[
        "probabilities"
    ]
    gitignore.write_text(original)
    await ws.daemon.next_labels(ws.web)
    shutil.rmtree(ws.web / "tools")
    back = await ws.daemon.next_labels(ws.web)
    assert back["probabilities"] == before["probabilities"]


async def test_thresholds_setting_changes_labels_of_every_folder(ws: Workspace) -> None:
    _quiet(ws.daemon)
    assert all(result["labels"] for result in ws.first.values())  # so a threshold near 1 changes them
    ws.daemon.settings({**ws.options, "thresholds": dict.fromkeys(LABELS, 0.999)})
    seen = {}
    for _ in range(2):
        result = await ws.daemon.next_labels()
        seen[result["folder"]] = result
    assert set(seen) == {uri(ws.web), uri(ws.app)}
    assert all(result["labels"] == [] and result["thresholds"]["cli"] == 0.999 for result in seen.values())
    ws.daemon.settings(ws.options)
    for _ in range(2):
        result = await ws.daemon.next_labels()
        assert result["labels"] == ws.first[result["folder"]]["labels"]


async def test_extra_ignores_setting_rescans(ws: Workspace) -> None:
    _quiet(ws.daemon)
    ws.daemon.settings({**ws.options, "extraIgnores": ["*.py"]})
    await ws.daemon.next_labels(ws.app)
    tokens = await ws.daemon.call(TOKENIZE, {"folder": uri(ws.app)})
    assert "main.py" not in tokens["text"]
    write_files(ws.app, {"more.py": ""})  # an extra-ignored path triggers nothing
    await _nothing_for(ws.daemon, QUIET_S)
    (ws.app / "more.py").unlink()
    ws.daemon.settings(ws.options)
    back = await ws.daemon.next_labels(ws.app)
    assert back["probabilities"] == ws.first[uri(ws.app)]["probabilities"]


async def test_bad_settings_warn_and_keep_defaults(ws: Workspace) -> None:
    ws.daemon.messages.clear()
    ws.daemon.settings({**ws.options, "device": "gpu", "debounceMs": "fast", "thresholds": {"web": 2}})
    async with asyncio.timeout(10):
        while not ws.daemon.messages:
            await asyncio.sleep(0.05)
    message = ws.daemon.messages[0]
    assert message.type == types.MessageType.Warning
    assert "treelens.device" in message.message and "treelens.debounceMs" in message.message
    assert "treelens.thresholds" in message.message
    result = await ws.daemon.call(CLASSIFY, {})
    assert result["thresholds"] == ws.first[uri(ws.web)]["thresholds"]
    ws.daemon.settings(ws.options)


async def test_workspace_folders_can_come_and_go(ws: Workspace, tmp_path: Path) -> None:
    third = tmp_path / "third"
    write_files(third, {"cmd/tool/main.go": "", "go.mod": "module example.com/tool\n"})
    folder = types.WorkspaceFolder(uri(third), "third")
    added = types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])
    ws.daemon.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=added))
    result = await ws.daemon.call(CLASSIFY, {"folder": uri(third)})
    assert result["folder"] == uri(third) and "go" in result["languages"]
    removed = types.WorkspaceFoldersChangeEvent(added=[], removed=[folder])
    ws.daemon.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=removed))
    with pytest.raises(JsonRpcException) as error:
        await ws.daemon.call(CLASSIFY, {"folder": uri(third)})
    assert error.value.code == types.ErrorCodes.InvalidParams
    assert "unknown workspace folder" in error.value.message


async def test_a_folder_with_nothing_to_go_on_gets_no_labels(ws: Workspace, tmp_path: Path) -> None:
    """An empty folder, and one whose only files are ignored or noise, answer 'no project
    files' with no labels and no probabilities, not a guess; a file added later is classified."""
    empty, ignored = tmp_path / "empty", tmp_path / "ignored"
    empty.mkdir()
    write_files(ignored, {".gitignore": "*.log\n", "debug.log": "x", "docs/guide.md": "# guide\n"})
    make_git_repo(ignored)
    for folder in (empty, ignored):
        added = types.WorkspaceFoldersChangeEvent(
            added=[types.WorkspaceFolder(uri(folder), folder.name)], removed=[]
        )
        ws.daemon.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=added))
        result = await ws.daemon.call(CLASSIFY, {"folder": uri(folder)})
        assert result["noProjectFiles"] is True, folder.name
        assert result["labels"] == result["uncertain"] == [] and result["probabilities"] == {}
    write_files(empty, {"main.py": ""})
    for _ in range(50):
        result = await ws.daemon.call(CLASSIFY, {"folder": uri(empty)})
        if not result["noProjectFiles"]:
            break
        await asyncio.sleep(0.1)
    assert result["noProjectFiles"] is False and set(result["probabilities"]) == set(LABELS)
    for folder in (empty, ignored):
        removed = types.WorkspaceFoldersChangeEvent(
            added=[], removed=[types.WorkspaceFolder(uri(folder), folder.name)]
        )
        ws.daemon.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=removed))
    _quiet(ws.daemon)


async def test_suggest_query_set_carries_the_scope_asked_for(ws: Workspace, tmp_path: Path) -> None:
    """skipVendored and scopeComponents give the config `treelens suggest --skip-vendored
    --scope-components` writes: vendored folders excluded; off by default; not a boolean: an error."""
    site = tmp_path / "site"
    write_files(site, {
        "web/package.json": '{"name": "web"}\n',
        "web/src/app.js": "eval(code)\n",
        "web/public/assets/plugins/jquery/jquery.js": "eval(code)\n",
    })  # fmt: skip
    index = tmp_path / "index.jsonl"
    index.write_text('{"id": "eval", "path": "javascript/eval.yaml", "languages": ["javascript"]}\n')
    added = types.WorkspaceFoldersChangeEvent(added=[types.WorkspaceFolder(uri(site), site.name)], removed=[])
    ws.daemon.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=added))
    asked = {"folder": uri(site), "engine": "semgrep", "catalog": str(index)}
    plain = await ws.daemon.call(SUGGEST_QUERY_SET, asked)
    assert plain["config"]["args"] == ["--config", "javascript/eval.yaml"]
    skipping = await ws.daemon.call(
        SUGGEST_QUERY_SET, {**asked, "skipVendored": True, "scopeComponents": True}
    )
    assert skipping["config"]["args"] == [
        "--config",
        "javascript/eval.yaml",
        "--exclude",
        "/web/public/assets/plugins/",
    ]
    assert skipping["selected"] == plain["selected"]
    with pytest.raises(JsonRpcException) as error:
        await ws.daemon.call(SUGGEST_QUERY_SET, {**asked, "skipVendored": "yes"})
    assert error.value.code == types.ErrorCodes.InvalidParams and "'skipVendored'" in error.value.message


async def test_suggest_query_set_reads_the_words_of_the_files_as_they_are(
    ws: Workspace, tmp_path: Path
) -> None:
    """With a rules folder, a rule whose patterns name a word no file holds cannot match and
    is left out, the word in its reason; the files are read at each request, so once the
    file holds the word the rule is back."""
    site = tmp_path / "words-site"
    write_files(site, {"package.json": '{"name": "site"}\n', "app.js": "eval(req.query.code)\n"})
    rules = tmp_path / "rules" / "javascript"
    rules.mkdir(parents=True)
    (rules / "audit.yaml").write_text(
        "rules:\n"
        "  - {id: eval-call, languages: [javascript], severity: INFO, message: m, pattern: eval($X)}\n"
        "  - {id: dynamic-require, languages: [javascript], severity: INFO, message: m,\n"
        "     pattern: require($X)}\n"
    )
    added = types.WorkspaceFoldersChangeEvent(added=[types.WorkspaceFolder(uri(site), site.name)], removed=[])
    ws.daemon.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event=added))
    asked = {"folder": uri(site), "engine": "semgrep", "catalog": str(tmp_path / "rules")}
    result = await ws.daemon.call(SUGGEST_QUERY_SET, asked)
    assert result["selected"] == ["javascript.eval-call"]
    assert result["reasons"]["javascript.dynamic-require"].startswith("cannot match: no javascript")
    (site / "app.js").write_text("eval(req.query.code)\nrequire(req.query.name)\n")
    result = await ws.daemon.call(SUGGEST_QUERY_SET, asked)
    assert result["selected"] == ["javascript.eval-call", "javascript.dynamic-require"]


async def test_suggest_query_set_from_the_model_and_the_project(ws: Workspace) -> None:
    index = DATA_DIR / "semgrep-rules-index.jsonl"
    if not index.is_file():
        pytest.skip(f"shared semgrep index not found at {index}")
    result = await ws.daemon.call(SUGGEST_QUERY_SET, {"folder": uri(ws.web), "engine": "semgrep"})
    assert result["engine"] == "semgrep"
    assert result["totalCount"] == sum(1 for line in index.open() if line.strip())
    assert result["excludedCount"] == len(result["reasons"]) > 0
    assert len(result["selected"]) + result["excludedCount"] == result["totalCount"]
    assert any("javascript" in rule or "express" in rule for rule in result["selected"])
    assert result["basis"].startswith("model")
    assert result["config"]
