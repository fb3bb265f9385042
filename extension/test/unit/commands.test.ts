import assert from "node:assert/strict";
import { test } from "node:test";
import type { DaemonState } from "../../src/common/daemon";
import { notInstalled } from "../../src/common/problems";
import type { Pick } from "../../src/common/vscodeapi";
import type { CommandContext } from "../../src/commands/context";
import { feedbackLabels, labelPicks, sendFeedback } from "../../src/commands/feedback";
import { COMMANDS, MENU_ITEMS, showMenu } from "../../src/commands/menu";
import {
  CODEQL_CATALOG_KEY,
  configHeader,
  MAX_REASON_LINES,
  reasonCounts,
  SEMGREP_CATALOG_KEY,
  SEMGREP_SCOPE_KEY,
  suggestQuerySet,
} from "../../src/commands/querySet";
import { showTokenization, tokenizationHtml } from "../../src/commands/tokenization";
import { FolderLabels } from "../../src/labels";
import {
  CLASSIFY,
  ERROR_CODES,
  SUBMIT_FEEDBACK,
  SUGGEST_QUERY_SET,
  TOKENIZE,
  type SubmitFeedbackParams,
  type SuggestQuerySetParams,
} from "../../src/protocol";
import { FakeApi, FakeConnection, packageJson, ResponseError } from "./fakes";
import { classifyResult, querySetResult, tokenizeResult } from "./samples";

function setup(state?: DaemonState) {
  const api = new FakeApi();
  const connection = new FakeConnection({
    [CLASSIFY]: () => classifyResult(),
    [SUGGEST_QUERY_SET]: (params: SuggestQuerySetParams) => querySetResult({ engine: params.engine }),
    [SUBMIT_FEEDBACK]: () => ({ id: 7, stored: true }),
    [TOKENIZE]: () => tokenizeResult(),
  });
  const labels = new FolderLabels(api, () => undefined);
  const daemon: DaemonState = state ?? { kind: "running", connection };
  const context: CommandContext = { api, labels, daemonState: () => daemon };
  return { api, connection, labels, context };
}

test("suggest: the engine's config opens with counts and reasons, and is saved on request", async () => {
  const { api, connection, context } = setup();
  api.answers.push("Semgrep", "accept", "Save to Workspace");
  await suggestQuerySet(context);
  assert.deepEqual(connection.requests.at(-1), {
    method: SUGGEST_QUERY_SET,
    params: { folder: "file:///work/app", engine: "semgrep" },
  });
  const [doc] = api.untitled;
  assert.equal(doc.language, "yaml");
  assert.match(doc.content, /^# Treelens Semgrep query set for app\n# Kept 2 of 1,967 Semgrep rules \(1,965 left out\)\./);
  assert.match(doc.content, /# Decided on: model, languages and technologies\n/);
  assert.match(doc.content, /# Left out, by reason:\n# {7}2 {2}language java not in the project\n# {7}1 {2}technology django/);
  assert.ok(doc.content.endsWith(querySetResult().config.text));
  assert.match(api.messages("info")[0], /Kept 2 of 1,967 Semgrep rules .* Save it as treelens-semgrep\.yaml\?/);
  assert.equal(api.files.get("/work/app/treelens-semgrep.yaml"), doc.content);
  assert.deepEqual(api.opened, ["/work/app/treelens-semgrep.yaml"]);
});

test("suggest: a config format without comments is saved exactly as the daemon wrote it", async () => {
  const { api, context } = setup();
  const paths = querySetResult({
    config: { format: "semgrep-rule-paths", fileName: "rules.txt", text: "python/flask/a.yaml\n", note: "relative paths" },
  });
  const connection = new FakeConnection({ [SUGGEST_QUERY_SET]: () => paths });
  const withPaths: CommandContext = { ...context, daemonState: () => ({ kind: "running", connection }) };
  api.answers.push("semgrep", "accept", "Save to Workspace");
  await suggestQuerySet(withPaths);
  assert.equal(api.untitled[0].language, "plaintext");
  assert.match(api.untitled[0].content, /# Note: relative paths\n/);
  assert.equal(api.files.get("/work/app/rules.txt"), "python/flask/a.yaml\n");
});

test("suggest: CodeQL asks for a query pack folder once and remembers it", async () => {
  const { api, connection, context } = setup();
  api.answers.push("CodeQL", "/packs/python", undefined);
  await suggestQuerySet(context);
  assert.equal(api.folderDialogs.length, 1);
  assert.deepEqual(connection.requests.at(-1)?.params, {
    folder: "file:///work/app",
    engine: "codeql",
    catalog: "/packs/python",
  });
  api.answers.push("CodeQL", undefined);
  await suggestQuerySet(context);
  assert.equal(api.folderDialogs.length, 1);
  assert.equal((connection.requests.at(-1)?.params as SuggestQuerySetParams).catalog, "/packs/python");

  const refusing = new FakeConnection({
    [SUGGEST_QUERY_SET]: () => {
      throw new ResponseError(ERROR_CODES.querySetsUnavailable, "/packs/python: no qlpack.yml");
    },
  });
  api.answers.push("CodeQL");
  await suggestQuerySet({ ...context, daemonState: () => ({ kind: "running", connection: refusing }) });
  assert.match(api.messages("error").at(-1) ?? "", /could not suggest a CodeQL query set: \/packs\/python: no qlpack\.yml/);
  assert.equal(api.getState(CODEQL_CATALOG_KEY), undefined, "a refused folder is forgotten");
});

/** A daemon without the shared semgrep index (an installed extension): it needs a rules folder, and refuses `refused`. */
function withoutSemgrepIndex(context: CommandContext, refused: string[] = []) {
  const connection = new FakeConnection({
    [SUGGEST_QUERY_SET]: (params: SuggestQuerySetParams) => {
      if (!params.catalog) {
        throw new ResponseError(ERROR_CODES.querySetsUnavailable, "no semgrep catalog: no semgrep catalog given");
      }
      if (refused.includes(params.catalog)) {
        throw new ResponseError(ERROR_CODES.querySetsUnavailable, `no semgrep catalog: ${params.catalog}: not a semgrep rules folder`);
      }
      return querySetResult({ engine: params.engine });
    },
  });
  const installed: CommandContext = { ...context, daemonState: () => ({ kind: "running", connection }) };
  return { connection, installed };
}

test("suggest: the Semgrep path options picked are sent, remembered and offered again; cancelling sends nothing", async () => {
  const { api, connection, context } = setup();
  api.answers.push("Semgrep", ["Leave out vendored, generated and minified files"], undefined);
  await suggestQuerySet(context);
  assert.deepEqual(connection.requests.at(-1)?.params, { folder: "file:///work/app", engine: "semgrep", skipVendored: true });
  assert.deepEqual(api.getState(SEMGREP_SCOPE_KEY), ["skipVendored"]);

  api.answers.push("Semgrep", "accept", undefined);
  await suggestQuerySet(context);
  const offered = api.shown.filter((entry) => entry.kind === "multiPick").at(-1)?.items as Pick<string>[];
  assert.deepEqual(
    offered.map((item) => [item.value, item.picked]),
    [["skipVendored", true], ["scopeComponents", false]],
  );
  assert.equal((connection.requests.at(-1)?.params as SuggestQuerySetParams).skipVendored, true);

  const sent = connection.requests.length;
  api.answers.push("Semgrep", undefined);
  await suggestQuerySet(context);
  assert.equal(connection.requests.length, sent, "a cancelled pick sends no request");

  api.answers.push("Bandit", undefined);
  await suggestQuerySet(context);
  assert.equal(api.shown.filter((entry) => entry.kind === "multiPick").length, 3, "other engines are not asked");
  assert.deepEqual(connection.requests.at(-1)?.params, { folder: "file:///work/app", engine: "bandit" });
});

const catalogs = (connection: FakeConnection) =>
  connection.requests.map((request) => (request.params as SuggestQuerySetParams).catalog);

test("suggest: Semgrep with the daemon's default index asks for no folder", async () => {
  const { api, connection, context } = setup();
  api.answers.push("Semgrep", "accept", undefined);
  await suggestQuerySet(context);
  assert.deepEqual(api.folderDialogs, []);
  assert.deepEqual(catalogs(connection), [undefined]);
  assert.equal(api.getState(SEMGREP_CATALOG_KEY), undefined);
  assert.equal(api.untitled.length, 1);
});

test("suggest: Semgrep without a default index asks for a rules folder once, retries with it and remembers it", async () => {
  const { api, context } = setup();
  const { connection, installed } = withoutSemgrepIndex(context);
  api.answers.push("Semgrep", "accept", "/rules/semgrep-rules", undefined);
  await suggestQuerySet(installed);
  assert.equal(api.folderDialogs.length, 1);
  assert.match(api.folderDialogs[0], /Semgrep rules.*github\.com\/semgrep\/semgrep-rules/);
  assert.deepEqual(catalogs(connection), [undefined, "/rules/semgrep-rules"]);
  assert.deepEqual(api.messages("error"), []);
  assert.equal(api.untitled.length, 1);
  assert.equal(api.getState(SEMGREP_CATALOG_KEY), "/rules/semgrep-rules");
  assert.equal(api.getState(CODEQL_CATALOG_KEY), undefined);

  api.answers.push("Semgrep", "accept", undefined);
  await suggestQuerySet(installed);
  assert.equal(api.folderDialogs.length, 1, "the remembered folder is used without asking");
  assert.deepEqual(catalogs(connection), [undefined, "/rules/semgrep-rules", "/rules/semgrep-rules"]);
  assert.equal(api.untitled.length, 2);
});

test("suggest: cancelling the Semgrep rules folder dialog sends nothing more and shows nothing", async () => {
  const { api, context } = setup();
  const { connection, installed } = withoutSemgrepIndex(context);
  api.answers.push("Semgrep", "accept", undefined);
  await suggestQuerySet(installed);
  assert.equal(api.folderDialogs.length, 1);
  assert.deepEqual(catalogs(connection), [undefined]);
  assert.deepEqual(
    api.shown.map((entry) => entry.kind),
    ["quickPick", "multiPick"],
  );
  assert.equal(api.untitled.length, 0);
  assert.equal(api.state.has(SEMGREP_CATALOG_KEY), false);
});

test("suggest: a refused Semgrep rules folder is forgotten and the daemon's reason shown", async () => {
  const { api, context } = setup();
  const { connection, installed } = withoutSemgrepIndex(context, ["/rules/old", "/rules/empty"]);
  await api.setState(SEMGREP_CATALOG_KEY, "/rules/old");
  api.answers.push("Semgrep", "accept");
  await suggestQuerySet(installed);
  assert.deepEqual(catalogs(connection), ["/rules/old"], "a remembered folder is not retried without it");
  assert.deepEqual(api.folderDialogs, []);
  assert.match(api.messages("error")[0], /could not suggest a Semgrep query set: .*\/rules\/old: not a semgrep rules folder/);
  assert.equal(api.getState(SEMGREP_CATALOG_KEY), undefined, "a refused folder is forgotten");

  api.answers.push("Semgrep", "accept", "/rules/empty");
  await suggestQuerySet(installed);
  assert.deepEqual(catalogs(connection), ["/rules/old", undefined, "/rules/empty"], "one retry, with the chosen folder");
  assert.equal(api.folderDialogs.length, 1);
  assert.match(api.messages("error")[1], /\/rules\/empty: not a semgrep rules folder/);
  assert.equal(api.getState(SEMGREP_CATALOG_KEY), undefined);
});

test("suggest: an existing file is only overwritten when confirmed; no engine, no request", async () => {
  const { api, connection, context } = setup();
  api.files.set("/work/app/treelens-semgrep.yaml", "mine");
  api.answers.push("semgrep", "accept", "Save to Workspace", undefined);
  await suggestQuerySet(context);
  assert.equal(api.files.get("/work/app/treelens-semgrep.yaml"), "mine");
  assert.match(api.messages("warning")[0], /already exists/);
  const before = connection.requests.length;
  api.answers.push(undefined);
  await suggestQuerySet(context);
  assert.equal(connection.requests.length, before);
});

test("suggest: a daemon error is shown, not thrown", async () => {
  const { api, context } = setup();
  const failing = new FakeConnection({
    [SUGGEST_QUERY_SET]: () => {
      throw new Error("bandit is not installed");
    },
  });
  const broken: CommandContext = { ...context, daemonState: () => ({ kind: "running", connection: failing }) };
  api.answers.push("bandit");
  await suggestQuerySet(broken);
  assert.match(api.messages("error")[0], /could not suggest a Bandit query set: bandit is not installed/);
  assert.equal(api.untitled.length, 0);
});

test("reasons are grouped by count, capped", () => {
  assert.deepEqual(reasonCounts({ a: "x", b: "y", c: "x" }), [
    ["x", 2],
    ["y", 1],
  ]);
  const many = Object.fromEntries(Array.from({ length: MAX_REASON_LINES + 5 }, (_, i) => [`q${i}`, `reason ${i}`]));
  const header = configHeader(querySetResult({ reasons: many }), "app", []);
  assert.match(header, /\(labels: none\)/);
  assert.match(header, /# {7}5 {2}other reasons\n/);
  assert.ok(header.split("\n").every((line) => line === "" || line.startsWith("#")));
});

test("feedback: the predicted labels are ticked; the person's answer is sent with the comment", async () => {
  const { api, connection, labels, context } = setup();
  labels.attach(connection);
  await new Promise((resolve) => setImmediate(resolve));
  api.answers.push(["backend", "cli"], "  the CLI is in bin/ ");
  await sendFeedback(context);
  const picks = api.shown.find((entry) => entry.kind === "multiPick")?.items ?? [];
  assert.deepEqual(
    picks.filter((item) => item.picked).map((item) => item.label),
    ["backend", "has_api"],
  );
  assert.equal(picks.length, 8);
  const request = connection.requests.at(-1);
  assert.equal(request?.method, SUBMIT_FEEDBACK);
  const params = request?.params as SubmitFeedbackParams;
  assert.equal(params.folder, "file:///work/app");
  assert.equal(params.comment, "the CLI is in bin/");
  assert.deepEqual(params.labels, {
    backend: 1,
    frontend: 0,
    mobile: 0,
    has_api: 0,
    desktop: 0,
    cli: 1,
    library: 0,
    iac: 0,
  });
  assert.match(api.messages("info")[0], /feedback #7 for app stored \(backend, cli\)/);
});

test("feedback: accepting as is sends the prediction without a comment; escape cancels", async () => {
  const { api, connection, labels, context } = setup();
  labels.attach(connection); // its first classify is still on the way: feedback waits for one
  api.answers.push("accept", "");
  await sendFeedback(context);
  const sent = connection.requests.filter((request) => request.method === SUBMIT_FEEDBACK);
  assert.equal(sent.length, 1);
  const params = sent[0].params as SubmitFeedbackParams;
  assert.equal(params.comment, undefined);
  assert.equal(params.labels.backend, 1);
  assert.equal(params.labels.has_api, 1);
  assert.equal(params.labels.frontend, 0);
  api.answers.push("accept", undefined);
  await sendFeedback(context);
  assert.equal(connection.requests.filter((request) => request.method === SUBMIT_FEEDBACK).length, 1);
});

test("feedback helpers follow the result's label order", () => {
  const result = classifyResult();
  assert.deepEqual(
    labelPicks(result).map((pick) => pick.label),
    Object.keys(result.probabilities),
  );
  assert.deepEqual(Object.keys(feedbackLabels(result, [])), Object.keys(result.probabilities));
});

test("commands explain a daemon that is not running instead of failing", async () => {
  const problem = notInstalled("python3");
  const { api, context } = setup({ kind: "failed", problem });
  await sendFeedback(context);
  await suggestQuerySet(context);
  assert.deepEqual(api.messages("warning"), [problem.message, problem.message]);
  const none = setup();
  none.api.folders = [];
  await showTokenization(none.context);
  assert.match(none.api.messages("info")[0], /open a folder first/);
});

test("tokenization: a static page with every token coloured and escaped", async () => {
  const { api, connection, labels, context } = setup();
  labels.attach(connection);
  await new Promise((resolve) => setImmediate(resolve));
  await showTokenization(context);
  const [view] = api.webviews;
  assert.equal(view.title, "Treelens Tokens: app");
  assert.match(view.html, /6 tokens · not truncated/);
  assert.equal((view.html.match(/<span class="t\d"/g) ?? []).length, 6);
  assert.ok(!view.html.includes("<script>"), "token text must be escaped");
  assert.ok(view.html.includes("&#60;script&#62;"));
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(view.html)?.[1] ?? "";
  assert.match(csp, /^default-src 'none'; style-src 'nonce-[^']+';$/);
  assert.doesNotMatch(view.html, /https?:\/\//);
  const html = tokenizationHtml(tokenizeResult(), { folderName: "a&b", result: classifyResult({ truncated: true }), nonce: "n" });
  assert.match(html, /truncated to fit the model/);
  assert.match(html, /<h2>a&#38;b<\/h2>/);
});

test("the menu lists every contributed command but itself, and runs the one picked", async () => {
  const contributed = packageJson().contributes.commands.map((command) => command.command);
  assert.deepEqual(
    [...MENU_ITEMS.map((item) => item.value), COMMANDS.showMenu].sort(),
    [...contributed].sort(),
  );
  assert.deepEqual([...Object.values(COMMANDS)].sort(), [...contributed].sort());
  const api = new FakeApi();
  api.answers.push(COMMANDS.sendFeedback);
  await showMenu(api);
  assert.deepEqual(api.executed, [COMMANDS.sendFeedback]);
});
