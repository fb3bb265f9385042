import assert from "node:assert/strict";
import { test } from "node:test";
import {
  basePythonCandidates,
  PATH_PYTHONS,
  pythonEnvironments,
  resolveInterpreter,
  type Interpreter,
  type PythonEnvironments,
} from "../../src/common/python";
import { FakeApi } from "./fakes";

function environments(active: string | undefined): PythonEnvironments {
  return {
    activeInterpreter: async () => active,
    onDidChangeInterpreter: () => ({ dispose: () => undefined }),
  };
}

const OWN_ENV: Interpreter = { command: ["/storage/python-envs/treelens-0.1.0-abc/bin/python", "-I"], source: "private-env" };

test("the treelens.python setting is used as it is, and Treelens' own environment is not built", async () => {
  let built = 0;
  const privateEnv = async () => {
    built += 1;
    return OWN_ENV;
  };
  assert.deepEqual(await resolveInterpreter("/opt/py/bin/python", privateEnv), {
    command: ["/opt/py/bin/python"],
    source: "setting",
  });
  assert.equal(built, 0);
});

test("without the setting, Treelens' own environment (never the person's environments)", async () => {
  assert.deepEqual(await resolveInterpreter("", async () => OWN_ENV), OWN_ENV);
});

test("the environment is built with the Python extension's interpreter first, then those on PATH", async () => {
  assert.deepEqual(await basePythonCandidates(environments("/venv/bin/python")), [["/venv/bin/python"], ...PATH_PYTHONS]);
  assert.deepEqual(await basePythonCandidates(environments(undefined)), [...PATH_PYTHONS]);
  assert.deepEqual(await basePythonCandidates(undefined), [...PATH_PYTHONS]);
  const broken: PythonEnvironments = {
    activeInterpreter: () => Promise.reject(new Error("not ready")),
    onDidChangeInterpreter: () => ({ dispose: () => undefined }),
  };
  assert.deepEqual(await basePythonCandidates(broken), [...PATH_PYTHONS]);
  assert.deepEqual(PATH_PYTHONS[0], process.platform === "win32" ? ["py", "-3"] : ["python3"]);
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
