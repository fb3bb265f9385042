import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyChange, DAEMON_KEYS, readSettings, RESTART_KEYS } from "../../src/common/settings";
import { describeDaemon } from "../description";
import { FakeApi, packageJson } from "./fakes";

const daemon = describeDaemon().settings.properties;

/** What VS Code reads from a contributed setting rather than validates with. */
const PRESENTATION = new Set(["default", "description", "markdownDescription", "enumDescriptions", "scope", "order"]);

/** A setting's JSON schema without its default and presentation: type, enum, limits, items. */
function validation(schema: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(schema).filter(([keyword]) => !PRESENTATION.has(keyword)));
}

test("every contributed setting is read, and nothing else", () => {
  const contributed = Object.keys(packageJson().contributes.configuration.properties).sort();
  const read = [...DAEMON_KEYS, ...RESTART_KEYS].map((key) => `treelens.${key}`).sort();
  assert.deepEqual(read, contributed);
});

test("the daemon keys are the keys the daemon describes", () => {
  assert.deepEqual([...DAEMON_KEYS].sort(), Object.keys(daemon).sort());
});

test("package.json's defaults, as read, are the daemon's; empty paths mean the daemon's default", () => {
  const settings = readSettings(new FakeApi());
  const defaults = Object.fromEntries(Object.entries(daemon).map(([key, schema]) => [key, schema.default]));
  assert.deepEqual(settings, { enable: true, python: "", daemon: defaults });
});

test("package.json limits each daemon setting as the daemon does (type, enum, minimum, maximum, items)", () => {
  const contributed = packageJson().contributes.configuration.properties;
  for (const key of DAEMON_KEYS) {
    assert.deepEqual(validation(contributed[`treelens.${key}`]), validation(daemon[key]), key);
  }
});

test("set values are passed through, paths trimmed", () => {
  const api = new FakeApi();
  api.settings = {
    "treelens.python": " /opt/venv/bin/python ",
    "treelens.modelPath": "/models/tiny ",
    "treelens.device": "cpu",
    "treelens.debounceMs": 50,
    "treelens.extraIgnores": ["vendor/"],
    "treelens.thresholds": { has_api: 0.4 },
    "treelens.feedbackDatabase": "/tmp/feedback.sqlite3",
  };
  const settings = readSettings(api);
  assert.equal(settings.python, "/opt/venv/bin/python");
  assert.deepEqual(settings.daemon, {
    modelPath: "/models/tiny",
    device: "cpu",
    debounceMs: 50,
    extraIgnores: ["vendor/"],
    thresholds: { has_api: 0.4 },
    feedbackDatabase: "/tmp/feedback.sqlite3",
  });
});

test("python and enable restart the daemon; daemon keys are sent; others are ignored", () => {
  const change = (...keys: string[]) => ({ affectsConfiguration: (section: string) => keys.includes(section) });
  assert.equal(classifyChange(change("treelens.python")), "restart");
  assert.equal(classifyChange(change("treelens.enable")), "restart");
  assert.equal(classifyChange(change("treelens.thresholds", "treelens.python")), "restart");
  for (const key of DAEMON_KEYS) {
    assert.equal(classifyChange(change(`treelens.${key}`)), "daemon", key);
  }
  assert.equal(classifyChange(change("editor.fontSize")), "none");
  assert.equal(classifyChange(change("python.defaultInterpreterPath")), "none");
});
