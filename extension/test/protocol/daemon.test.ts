/**
 * The extension's side of the protocol against the real daemon: `.venv/bin/python -P -m
 * treelens.daemon` over stdio on a copy of the sample workspace, spoken to with the same
 * JSON-RPC library the language client uses. Every method the extension calls is called, with the
 * settings payload the extension sends, and the shapes it relies on are checked.
 */
import assert from "node:assert/strict";
import { execFileSync, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import {
  DidChangeConfigurationNotification,
  ErrorCodes,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  ShutdownRequest,
  type ProtocolConnection,
} from "vscode-languageserver-protocol/node";
import { settingsPayload } from "../../src/common/settings";
import {
  CLASSIFY,
  ENGINES,
  ERROR_CODES,
  LABELS_CHANGED,
  PING,
  SUBMIT_FEEDBACK,
  SUGGEST_QUERY_SET,
  TOKENIZE,
  type ClassifyResult,
  type DaemonSettings,
  type SubmitFeedbackResult,
  type SuggestQuerySetResult,
  type TokenizeResult,
} from "../../src/protocol";
import {
  cliClassify,
  FIXTURES,
  initializeParams,
  sampleWorkspace,
  spawnDaemon,
  testBundle,
  testDaemonSettings,
  VENV_PYTHON,
  withTimeout as withDaemonTimeout,
} from "../support";

/** A small CodeQL query pack: CodeQL has no default catalog. */
const CODEQL_PACK = path.join(FIXTURES, "codeql-pack");

const REQUEST_TIMEOUT_MS = 120_000;

let daemon: ChildProcess;
let connection: ProtocolConnection;
let workspace: string;
let folderUri: string;
let bundle: string | undefined;
let settings: DaemonSettings;
let stderr = "";
const labelsChanged: ClassifyResult[] = [];

function withTimeout<T>(promise: Promise<T>, what: string, ms = REQUEST_TIMEOUT_MS): Promise<T> {
  return withDaemonTimeout(promise, what, ms, () => stderr);
}

function request<R>(method: string, params: object): Promise<R> {
  return withTimeout(connection.sendRequest<R>(method, params), method);
}

/** The shapes status.ts, labels.ts and the commands read from a classify result. */
function assertClassifyResult(result: ClassifyResult, folder: string | undefined): void {
  if (folder !== undefined) {
    assert.equal(decodeURIComponent(result.folder).replace(/\/$/, ""), decodeURIComponent(folder));
  }
  const labels = Object.keys(result.probabilities);
  assert.ok(labels.length > 0, "probabilities must name the model's labels");
  assert.deepEqual(Object.keys(result.thresholds), labels);
  for (const label of labels) {
    const p = result.probabilities[label];
    assert.ok(typeof p === "number" && p >= 0 && p <= 1, `${label}: ${p}`);
    assert.equal(result.labels.includes(label), p >= result.thresholds[label], `${label} vs its threshold`);
    const band = p >= result.thresholds[label] / 2 && p < result.thresholds[label];
    assert.equal(result.uncertain.includes(label), band, `${label} uncertain from half its threshold`);
  }
  assert.equal(result.noProjectFiles, false);
  assert.deepEqual(
    result.labels,
    labels.filter((label) => result.labels.includes(label)),
    "labels come in model order",
  );
  assert.ok(Number.isInteger(result.tokenCount) && result.tokenCount > 0);
  assert.equal(typeof result.truncated, "boolean");
  assert.equal(typeof result.modelVersion, "string");
  assert.ok(result.modelVersion.length > 0);
  assert.ok(Array.isArray(result.languages) && result.languages.every((item) => typeof item === "string"));
  assert.ok(Array.isArray(result.technologies) && result.technologies.every((item) => typeof item === "string"));
  assert.ok(typeof result.elapsedMs === "number" && result.elapsedMs >= 0);
}

before(async () => {
  assert.ok(existsSync(VENV_PYTHON), `${VENV_PYTHON} is missing: run \`make setup-dev\` first`);
  bundle = testBundle();
  workspace = sampleWorkspace("treelens-protocol-");
  folderUri = pathToFileURL(workspace).href;
  settings = testDaemonSettings(workspace, bundle);
  ({ child: daemon, connection } = spawnDaemon(workspace, (text) => {
    stderr += text;
  }));
  connection.onNotification("window/showMessage", (params: { message: string }) => {
    stderr += `showMessage: ${params.message}\n`;
  });
  connection.onNotification(LABELS_CHANGED, (result: ClassifyResult) => {
    labelsChanged.push(result);
  });
  const init = await withTimeout(
    connection.sendRequest(InitializeRequest.type, initializeParams(folderUri, settings)),
    "initialize",
  );
  assert.ok(init.capabilities, "initialize answers with the server's capabilities");
  await connection.sendNotification(InitializedNotification.type, {});
});

after(async () => {
  if (daemon.exitCode === null) {
    await withTimeout(connection.sendRequest(ShutdownRequest.type), "shutdown", 15_000);
    await connection.sendNotification(ExitNotification.type);
    await withTimeout(
      new Promise((resolve) => daemon.once("exit", resolve)),
      "exit",
      15_000,
    ).catch(() => daemon.kill());
  }
  connection.dispose();
  rmSync(path.dirname(workspace), { recursive: true, force: true });
});

test("classify answers with the result the status bar shows, the CLI's labels", async () => {
  const result = await request<ClassifyResult>(CLASSIFY, { folder: folderUri });
  assertClassifyResult(result, folderUri);
  assert.ok(result.languages.includes("python"), `languages: ${result.languages}`);
  const cli = cliClassify(workspace, bundle);
  assert.deepEqual(result.labels, cli.labels);
  for (const [label, p] of Object.entries(cli.probabilities)) {
    assert.ok(Math.abs(result.probabilities[label] - p) < 1e-4, `${label}: daemon ${result.probabilities[label]}, CLI ${p}`);
  }
  // no folder: the first workspace folder
  const first = await request<ClassifyResult>(CLASSIFY, {});
  assert.deepEqual(first.probabilities, result.probabilities);
});

test("ping, the liveness probe, answers with an empty object", async () => {
  assert.deepEqual(await request(PING, {}), {});
});

test("a file change sends labelsChanged with the same shape", async () => {
  const before = await request<ClassifyResult>(CLASSIFY, { folder: folderUri });
  const seen = labelsChanged.length;
  mkdirSync(path.join(workspace, "web", "src"), { recursive: true });
  writeFileSync(
    path.join(workspace, "web", "package.json"),
    JSON.stringify({ name: "web", dependencies: { react: "^18.0.0", "react-dom": "^18.0.0", vite: "^5.0.0" } }),
  );
  writeFileSync(path.join(workspace, "web", "src", "App.tsx"), "export const App = () => null;\n");
  appendFileSync(path.join(workspace, "requirements.txt"), "django==5.0\n");
  const deadline = Date.now() + 60_000;
  while (labelsChanged.length === seen && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(labelsChanged.length > seen, `no labelsChanged within 60 s; daemon log:\n${stderr}`);
  const changed = labelsChanged.at(-1)!;
  assertClassifyResult(changed, folderUri);
  assert.notDeepEqual(changed.probabilities, before.probabilities);
  assert.ok(changed.tokenCount > before.tokenCount);
});

test("suggestQuerySet answers for every engine the extension offers", async () => {
  for (const engine of ENGINES) {
    const catalog = engine === "codeql" ? { catalog: CODEQL_PACK } : {};
    const result = await request<SuggestQuerySetResult>(SUGGEST_QUERY_SET, { folder: folderUri, engine, ...catalog });
    assert.equal(result.engine, engine);
    assert.ok(Array.isArray(result.selected) && result.selected.every((item) => typeof item === "string"));
    assert.ok(Number.isInteger(result.totalCount) && Number.isInteger(result.excludedCount));
    assert.equal(result.selected.length + result.excludedCount, result.totalCount, engine);
    assert.equal(typeof result.config.fileName, "string");
    assert.equal(path.basename(result.config.fileName), result.config.fileName, "a plain file name");
    assert.ok(result.config.text.length > 0, `${engine}: empty config`);
    const reasons = Object.values(result.reasons);
    assert.equal(reasons.length, result.excludedCount);
    assert.ok(reasons.every((reason) => typeof reason === "string" && reason.length > 0));
  }
});

test("tokenize answers with the model text token by token", async () => {
  const result = await request<TokenizeResult>(TOKENIZE, { folder: folderUri });
  assert.equal(typeof result.text, "string");
  assert.ok(result.text.includes("requirements.txt"));
  assert.equal(result.tokenCount, result.tokens.length);
  assert.ok(result.tokens.every((token) => Number.isInteger(token.id) && typeof token.text === "string"));
  const joined = result.tokens.map((token) => token.text).join("");
  assert.ok(joined.includes(result.text.slice(0, 200)), "the tokens spell the model text");
});

test("submitFeedback stores the person's labels, and they are in the database", async () => {
  const result = await request<ClassifyResult>(CLASSIFY, { folder: folderUri });
  const labels = Object.fromEntries(Object.keys(result.probabilities).map((label, i) => [label, i % 2 === 0 ? 1 : 0]));
  const answer = await request<SubmitFeedbackResult>(SUBMIT_FEEDBACK, { folder: folderUri, labels, comment: "protocol test" });
  assert.equal(answer.stored, true);
  assert.ok(Number.isInteger(answer.id));
  const row = execFileSync(
    VENV_PYTHON,
    [
      "-c",
      "import json, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); " +
        "print(json.dumps(c.execute('select labels, comment from feedback where id = ?', (int(sys.argv[2]),)).fetchone()))",
      settings.feedbackDatabase!,
      String(answer.id),
    ],
    { encoding: "utf8" },
  );
  const [storedLabels, comment] = JSON.parse(row) as [string, string];
  assert.deepEqual(JSON.parse(storedLabels), labels);
  assert.equal(comment, "protocol test");
});

test("changed settings take effect without a restart", async () => {
  const result = await request<ClassifyResult>(CLASSIFY, { folder: folderUri });
  // raise the surest label's threshold above its probability and lower the least sure one's below it
  const ranked = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
  const [surest, surestP] = ranked[0];
  const [leastSure, leastP] = ranked[ranked.length - 1];
  const thresholds = { [surest]: (surestP + 1) / 2, [leastSure]: leastP / 2 };
  await connection.sendNotification(DidChangeConfigurationNotification.type, {
    settings: settingsPayload({ ...settings, thresholds }),
  });
  const deadline = Date.now() + 30_000;
  let now = await request<ClassifyResult>(CLASSIFY, { folder: folderUri });
  while (now.thresholds[surest] !== thresholds[surest] && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    now = await request<ClassifyResult>(CLASSIFY, { folder: folderUri });
  }
  assert.equal(now.thresholds[surest], thresholds[surest], `daemon log:\n${stderr}`);
  assert.equal(now.thresholds[leastSure], thresholds[leastSure]);
  assert.ok(!now.labels.includes(surest), `${surest} is above its new threshold`);
  assert.ok(now.labels.includes(leastSure), `${leastSure} is below its new threshold`);
  assertClassifyResult(now, folderUri);
  await connection.sendNotification(DidChangeConfigurationNotification.type, { settings: settingsPayload(settings) });
});

test("bad requests get an error a person can act on, and the daemon lives on", async () => {
  const gone = pathToFileURL(path.join(path.dirname(workspace), "no-such-folder")).href;
  await assert.rejects(request(CLASSIFY, { folder: gone }), (error: { code: number; message: string }) => {
    assert.ok(
      error.code === ERROR_CODES.folderUnavailable || error.code === ErrorCodes.InvalidParams,
      `code ${error.code}: ${error.message}`,
    );
    assert.ok(error.message.length > 10);
    return true;
  });
  await assert.rejects(request(SUGGEST_QUERY_SET, { folder: folderUri, engine: "nessus" }), /engine/i);
  await assert.rejects(request(SUBMIT_FEEDBACK, { folder: folderUri, labels: { not_a_label: 1 } }), /label/i);
  const still = await request<ClassifyResult>(CLASSIFY, { folder: folderUri });
  assertClassifyResult(still, folderUri);
});
