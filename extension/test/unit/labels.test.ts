import assert from "node:assert/strict";
import { test } from "node:test";
import type { Problem } from "../../src/common/problems";
import { folderKey, FolderLabels } from "../../src/labels";
import { CLASSIFY, ERROR_CODES, LABELS_CHANGED, type ClassifyParams } from "../../src/protocol";
import { FakeApi, FakeConnection, folder, ResponseError } from "./fakes";
import { classifyResult } from "./samples";

const settle = () => new Promise((resolve) => setImmediate(resolve));

function setup() {
  const api = new FakeApi();
  const web = folder("web");
  api.folders = [folder("app"), web];
  const problems: Problem[] = [];
  const labels = new FolderLabels(api, (problem) => problems.push(problem));
  const connection = new FakeConnection({
    [CLASSIFY]: (params: ClassifyParams) =>
      classifyResult({ folder: params.folder, labels: params.folder?.endsWith("web") ? ["frontend"] : ["backend"] }),
  });
  return { api, web, labels, connection, problems };
}

test("attaching a daemon classifies the active folder; editor switches classify the new one", async () => {
  const { api, web, labels, connection } = setup();
  let changes = 0;
  labels.onDidChange(() => (changes += 1));
  labels.attach(connection);
  await settle();
  assert.deepEqual(connection.requests, [{ method: CLASSIFY, params: { folder: "file:///work/app" } }]);
  assert.deepEqual(labels.latest(api.folders[0])?.labels, ["backend"]);
  assert.ok(changes >= 2);

  api.activeFolder = web;
  assert.equal(labels.activeFolder(), web);
  assert.equal(labels.state(web), undefined);
  labels.ensureActive();
  assert.deepEqual(labels.state(web), { kind: "pending" });
  await settle();
  assert.deepEqual(labels.latest(web)?.labels, ["frontend"]);
  labels.ensureActive(); // known folder: no new request
  assert.equal(connection.requests.length, 2);
});

test("labelsChanged replaces a folder's result, whatever the URI escaping", async () => {
  const { api, labels, connection } = setup();
  api.folders = [{ uri: "file:///work/my%20app", name: "my app", path: "/work/my app" }];
  labels.attach(connection);
  await settle();
  connection.notify(LABELS_CHANGED, classifyResult({ folder: "file:///work/my app/", labels: ["cli"] }));
  assert.deepEqual(labels.latest(api.folders[0])?.labels, ["cli"]);
  assert.equal(folderKey("file:///work/my%20app/"), folderKey("file:///work/my app"));
});

test("a missing model becomes the folder's error and a problem; other errors only the folder's", async () => {
  const { api, labels, problems } = setup();
  const failing = new FakeConnection({
    [CLASSIFY]: () => {
      throw new ResponseError(ERROR_CODES.modelUnavailable, "no model bundle at /x: build one");
    },
  });
  labels.attach(failing);
  await settle();
  const state = labels.state(api.folders[0]);
  assert.equal(state?.kind, "error");
  assert.equal(problems.length, 1);
  assert.equal(problems[0].kind, "noModel");
  assert.match(problems[0].message, /no model bundle at \/x: build one/);

  const gone = new FakeConnection({
    [CLASSIFY]: () => {
      throw new ResponseError(ERROR_CODES.folderUnavailable, "folder is gone");
    },
  });
  labels.attach(gone);
  await settle();
  assert.deepEqual(labels.state(api.folders[0]), { kind: "error", message: "folder is gone", problem: undefined });
  assert.equal(problems.length, 1);
});

test("detaching drops old results and notifications of the old daemon", async () => {
  const { api, labels, connection } = setup();
  labels.attach(connection);
  await settle();
  labels.attach(undefined);
  assert.equal(labels.state(api.folders[0]), undefined);
  connection.notify(LABELS_CHANGED, classifyResult());
  assert.equal(labels.state(api.folders[0]), undefined);
  assert.equal((await labels.refresh(api.folders[0])).kind, "error");
});
