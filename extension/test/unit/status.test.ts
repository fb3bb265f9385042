import assert from "node:assert/strict";
import { test } from "node:test";
import { COMMANDS } from "../../src/commands/menu";
import { noModel, notInstalled } from "../../src/common/problems";
import { escapeMarkdown, labelsText, StatusBar, statusView } from "../../src/status";
import { FakeApi, FakeConnection, folder } from "./fakes";
import { classifyResult } from "./samples";

const running = { kind: "running" as const, connection: new FakeConnection({}) };
const app = folder("app");

test("labels read as the icon and the labels joined by a dot", () => {
  assert.equal(labelsText(classifyResult()), "$(shield) backend · has_api");
  assert.equal(labelsText(classifyResult({ labels: [] })), "$(shield) no labels");
});

test("uncertain labels end in a question mark, in the status bar and the tooltip", () => {
  const result = classifyResult({ uncertain: ["library"] });
  assert.equal(labelsText(result), "$(shield) backend · has_api · library?");
  assert.equal(labelsText(classifyResult({ labels: [], uncertain: ["cli"] })), "$(shield) cli?");
  const { tooltip } = statusView(running, app, { kind: "result", result });
  assert.match(tooltip, /\| library\? \| 0\.200 \| 0\.500 \| uncertain \|/);
});

test("a folder with nothing to go on says so instead of showing labels", () => {
  const result = classifyResult({ labels: [], uncertain: [], noProjectFiles: true, probabilities: {} });
  const view = statusView(running, app, { kind: "result", result });
  assert.equal(view.text, "$(shield) no project files");
  assert.match(view.tooltip, /No project files found/);
  assert.doesNotMatch(view.tooltip, /\| label \| probability/);
});

test("a spinner until the first result, then the labels", () => {
  for (const view of [
    statusView({ kind: "starting" }, app, undefined),
    statusView(running, app, undefined),
    statusView(running, app, { kind: "pending" }),
  ]) {
    assert.match(view.text, /^\$\(sync~spin\) Treelens$/);
    assert.equal(view.severity, undefined);
  }
  const view = statusView(running, app, { kind: "result", result: classifyResult() });
  assert.equal(view.text, "$(shield) backend · has_api");
  assert.equal(view.visible, true);
});

test("the tooltip has every label's probability and what the model saw", () => {
  const result = classifyResult({ truncated: true });
  const { tooltip } = statusView(running, app, { kind: "result", result });
  for (const [label, probability] of Object.entries(result.probabilities)) {
    assert.ok(tooltip.includes(`${escapeMarkdown(label)}`), label);
    assert.ok(tooltip.includes(`| ${probability.toFixed(3)} |`), `${label} ${probability}`);
  }
  assert.match(tooltip, /\| \*\*backend\*\* \| 0\.930 \| 0\.500 \| \$\(check\) \|/);
  assert.match(tooltip, /\| frontend \| 0\.040 \| 0\.500 \| {2}\|/);
  assert.match(tooltip, /Tokens: 1,234 \(truncated/);
  assert.match(tooltip, /Model: treelens\\-default\\-1\\\.0\\\.0/);
  assert.match(tooltip, /Languages: python, c\\\+\\\+/);
  assert.match(tooltip, /Technologies: flask, docker/);
  assert.match(tooltip, /classified in 42 ms/);
});

test("problems show in the status bar with their short text", () => {
  const failed = statusView({ kind: "failed", problem: notInstalled("python3") }, app, undefined);
  assert.equal(failed.text, "$(error) Treelens: not installed");
  assert.equal(failed.severity, "error");
  assert.match(failed.tooltip, /Treelens is not installed in "python3"/);
  const model = statusView(running, app, { kind: "error", message: "m", problem: noModel("bundle missing") });
  assert.equal(model.text, "$(warning) Treelens: no model");
  const other = statusView(running, app, { kind: "error", message: "folder is gone" });
  assert.equal(other.text, "$(warning) Treelens: error");
  assert.match(other.tooltip, /folder is gone/);
  const crashed = statusView({ kind: "restarting", delayMs: 4000, reason: "crashed" }, app, undefined);
  assert.match(crashed.tooltip, /stopped unexpectedly; restarting it in 4 s/);
  const deaf = statusView({ kind: "restarting", delayMs: 1000, reason: "unresponsive" }, app, undefined);
  assert.match(deaf.tooltip, /stopped answering; restarting it in 1 s/);
  assert.equal(statusView({ kind: "disabled" }, app, undefined).visible, false);
  assert.equal(statusView(running, undefined, undefined).text, "$(shield) Treelens");
});

test("the status bar item renders the view and opens the command menu", () => {
  const api = new FakeApi();
  const bar = new StatusBar(api);
  const [item] = api.statusItems;
  assert.equal(item.command, COMMANDS.showMenu);
  bar.render(statusView(running, app, { kind: "result", result: classifyResult() }));
  assert.equal(item.text, "$(shield) backend · has_api");
  assert.equal(item.visible, true);
  bar.render(statusView({ kind: "disabled" }, app, undefined));
  assert.equal(item.visible, false);
});
