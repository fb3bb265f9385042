import assert from "node:assert/strict";
import { test } from "node:test";
import { FALLBACK_PYTHON, pythonEnvironments, resolveInterpreter, type PythonEnvironments } from "../../src/common/python";
import { FakeApi } from "./fakes";

function environments(active: string | undefined): PythonEnvironments {
  return {
    activeInterpreter: async () => active,
    onDidChangeInterpreter: () => ({ dispose: () => undefined }),
  };
}

test("the treelens.python setting beats the Python extension", async () => {
  assert.deepEqual(await resolveInterpreter("/opt/py/bin/python", environments("/venv/bin/python")), {
    command: ["/opt/py/bin/python"],
    source: "setting",
  });
});

test("without the setting, the Python extension's active environment, else python3", async () => {
  assert.deepEqual(await resolveInterpreter("", environments("/venv/bin/python")), {
    command: ["/venv/bin/python"],
    source: "python-extension",
  });
  assert.deepEqual(await resolveInterpreter("", environments(undefined)), {
    command: [FALLBACK_PYTHON],
    source: "fallback",
  });
  assert.deepEqual(await resolveInterpreter("", undefined), { command: [FALLBACK_PYTHON], source: "fallback" });
  const broken: PythonEnvironments = {
    activeInterpreter: () => Promise.reject(new Error("not ready")),
    onDidChangeInterpreter: () => ({ dispose: () => undefined }),
  };
  assert.deepEqual(await resolveInterpreter("", broken), { command: [FALLBACK_PYTHON], source: "fallback" });
});

test("the Python extension's API is read through its environments object", async () => {
  const api = new FakeApi();
  assert.equal(await pythonEnvironments(api), undefined);
  let listener: (() => unknown) | undefined;
  api.exports["ms-python.python"] = {
    environments: {
      getActiveEnvironmentPath: () => ({ path: "/venv" }),
      resolveEnvironment: async (env: { path: string }) => ({
        executable: { uri: { fsPath: `${env.path}/bin/python` } },
      }),
      onDidChangeActiveEnvironmentPath: (callback: () => unknown) => {
        listener = callback;
        return { dispose: () => undefined };
      },
    },
  };
  const envs = await pythonEnvironments(api);
  assert.ok(envs);
  assert.equal(await envs.activeInterpreter(), "/venv/bin/python");
  let changed = 0;
  envs.onDidChangeInterpreter(() => (changed += 1));
  listener?.();
  assert.equal(changed, 1);
});
