import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { classifyChange, DAEMON_KEYS, readSettings, RESTART_KEYS } from "../../src/common/settings";
import { FakeApi, packageJson, REPO_ROOT } from "./fakes";

test("every contributed setting is read, and nothing else", () => {
  const contributed = Object.keys(packageJson().contributes.configuration.properties).sort();
  const read = [...DAEMON_KEYS, ...RESTART_KEYS].map((key) => `treelens.${key}`).sort();
  assert.deepEqual(read, contributed);
});

test("the daemon keys are the keys daemon/settings.py parses", () => {
  const source = readFileSync(path.join(REPO_ROOT, "daemon", "settings.py"), "utf8");
  const fields = source.slice(source.indexOf("_FIELDS"));
  const parsed = [...fields.matchAll(/^\s+"(\w+)": \("\w+",/gm)].map((match) => match[1]);
  assert.ok(parsed.length > 0, "no settings found in daemon/settings.py _FIELDS");
  assert.deepEqual([...parsed].sort(), [...DAEMON_KEYS].sort());
});

test("defaults come from package.json; empty paths mean the daemon's default", () => {
  const settings = readSettings(new FakeApi());
  assert.deepEqual(settings, {
    enable: true,
    python: "",
    daemon: {
      modelPath: null,
      device: "auto",
      debounceMs: 300,
      extraIgnores: [],
      thresholds: {},
      feedbackDatabase: null,
    },
  });
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
