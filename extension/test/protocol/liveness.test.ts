/**
 * The extension's liveness watch against a real daemon made deaf: `.venv/bin/python -P -m
 * treelens.daemon` is started by the extension's own DaemonSupervisor (through a launcher that speaks
 * JSON-RPC over stdio as vscode-languageclient does, and kills what does not stop), then
 * frozen with SIGSTOP: alive, silent, never closing. The supervisor must notice, fail the
 * request waiting on it, kill it and start a new daemon that answers, telling the person once.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import {
  DidChangeConfigurationNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  ShutdownRequest,
} from "vscode-languageserver-protocol/node";
import { DaemonSupervisor, type DaemonState, type Launcher, type RunningDaemon } from "../../src/common/daemon";
import { DaemonUnresponsiveError } from "../../src/common/liveness";
import { checkPython } from "../../src/common/preflight";
import type { Settings } from "../../src/common/settings";
import { settingsPayload } from "../../src/common/settings";
import { CLASSIFY, type ClassifyResult, type DaemonSettings } from "../../src/protocol";
import {
  initializeParams,
  sampleWorkspace,
  spawnDaemon,
  testBundle,
  testDaemonSettings,
  VENV_PYTHON,
  withTimeout as withDaemonTimeout,
} from "../support";

/** Short bounds so the test is quick; a healthy daemon answers a probe in milliseconds. */
const LIVENESS = { intervalMs: 300, answerWithinMs: 3_000 };
/** Anti-hang limits only: each wait normally ends in a few seconds. */
const WAIT_MS = 60_000;
const STOP_MS = 2_000;

const children: ChildProcess[] = [];
const states: DaemonState[] = [];
let workspace: string;
let folderUri: string;
let stderr = "";
let supervisor: DaemonSupervisor;

function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  return withDaemonTimeout(promise, what, ms, () => stderr);
}

/** Resolves with the first state (already reached or to come) that `wanted` accepts. */
function stateWhere(wanted: (state: DaemonState, index: number) => boolean, what: string): Promise<DaemonState> {
  return withTimeout(
    new Promise<DaemonState>((resolve) => {
      const poll = () => {
        const index = states.findIndex(wanted);
        if (index >= 0) {
          resolve(states[index]);
        } else {
          setTimeout(poll, 50);
        }
      };
      poll();
    }),
    what,
  );
}

/** What client.ts does with vscode-languageclient, on the bare protocol: start, speak, stop or kill. */
function launch(settings: DaemonSettings): Promise<RunningDaemon> {
  const { child, connection } = spawnDaemon(workspace, (text) => {
    stderr += text;
  });
  children.push(child);
  connection.onNotification("window/showMessage", () => undefined);
  let stopping = false;
  let closed: (() => void) | undefined;
  child.once("exit", () => {
    if (!stopping) {
      closed?.();
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return withTimeout(
    connection.sendRequest(InitializeRequest.type, initializeParams(folderUri, settings)),
    "initialize",
  ).then(async () => {
    await connection.sendNotification(InitializedNotification.type, {});
    return {
      request: (method, params) => connection.sendRequest(method, params),
      onNotification: (method, handler) => connection.onNotification(method, handler),
      sendSettings: (next) =>
        connection.sendNotification(DidChangeConfigurationNotification.type, { settings: settingsPayload(next) }),
      onClosed: (listener) => {
        closed = listener;
      },
      stop: async () => {
        stopping = true;
        try {
          await withTimeout(connection.sendRequest(ShutdownRequest.type), "shutdown", STOP_MS);
          await connection.sendNotification(ExitNotification.type);
          await withTimeout(exited, "exit", STOP_MS);
        } catch {
          child.kill("SIGKILL"); // as vscode-languageclient kills a server that does not stop
          await exited;
        } finally {
          connection.dispose();
        }
      },
    };
  });
}

before(() => {
  const bundle = testBundle();
  workspace = sampleWorkspace("treelens-liveness-");
  folderUri = pathToFileURL(workspace).href;
  const settings: Settings = {
    enable: true,
    python: VENV_PYTHON,
    daemon: testDaemonSettings(workspace, bundle),
  };
  const launcher: Launcher = {
    check: (interpreter) => checkPython(interpreter.command),
    launch: (_interpreter, daemonSettings) => launch(daemonSettings),
  };
  supervisor = new DaemonSupervisor({
    launcher,
    settings: () => settings,
    interpreter: async () => ({ command: [VENV_PYTHON], source: "setting" }),
    schedule: (callback, ms) => {
      const timer = setTimeout(callback, ms);
      return { dispose: () => clearTimeout(timer) };
    },
    onState: (state) => states.push(state),
    liveness: LIVENESS,
  });
});

after(async () => {
  await supervisor.stop();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
    }
  }
  rmSync(path.dirname(workspace), { recursive: true, force: true });
});

function classify(state: DaemonState): Promise<ClassifyResult> {
  assert.ok(state.kind === "running", `the daemon is ${state.kind}`);
  return state.connection.request<ClassifyResult>(CLASSIFY, { folder: folderUri });
}

test("a daemon frozen with SIGSTOP is noticed, killed and replaced by one that answers; the person is told once", async () => {
  await withTimeout(supervisor.restart(), "start");
  const first = await classify(supervisor.state);
  // the real daemon answers the probe: many probe rounds pass without a restart
  await new Promise((resolve) => setTimeout(resolve, LIVENESS.intervalMs * 5));
  assert.deepEqual(
    states.map((state) => state.kind),
    ["starting", "running"],
    `a healthy daemon was called deaf; daemon log:\n${stderr}`,
  );
  const deaf = children[0];
  assert.ok(deaf.kill("SIGSTOP"));

  // the request waiting on the frozen daemon fails with words, it does not hang
  await withTimeout(
    assert.rejects(classify(supervisor.state), (error: Error) => {
      assert.ok(error instanceof DaemonUnresponsiveError, String(error));
      assert.match(error.message, /did not answer for 3 s and is being restarted; try again in a moment/);
      return true;
    }),
    "the request waiting on the frozen daemon",
  );
  const restarting = await stateWhere((state) => state.kind === "restarting", "restarting");
  assert.ok(restarting.kind === "restarting");
  assert.equal(restarting.reason, "unresponsive");
  assert.match(restarting.notice?.message ?? "", /did not answer for 3 s, so Treelens restarted it/);

  // a new daemon answers, the frozen one is gone
  const running = await stateWhere((state, index) => state.kind === "running" && index > 1, "running again");
  assert.equal(children.length, 2, "one new daemon");
  assert.notEqual(children[1].pid, deaf.pid);
  assert.equal(deaf.signalCode, "SIGKILL", "the frozen daemon is killed");
  const again = await withTimeout(classify(running), "classify on the new daemon");
  assert.deepEqual(again.labels, first.labels);
  assert.deepEqual(again.probabilities, first.probabilities);
  assert.equal(states.filter((state) => state.kind === "restarting" && state.notice).length, 1, "told once");
  assert.equal(supervisor.state.kind, "running");
});
