import assert from "node:assert/strict";
import { test } from "node:test";
import type { DaemonState, Launcher, RunningDaemon } from "../../src/common/daemon";
import { DaemonSupervisor } from "../../src/common/daemon";
import type { PythonReport } from "../../src/common/preflight";
import { notInstalled, type Problem } from "../../src/common/problems";
import { RESTART_DELAYS_MS } from "../../src/common/restart";
import { readSettings } from "../../src/common/settings";
import { FakeApi, FakeConnection } from "./fakes";

const REPORT: PythonReport = { version: "3.11.9", executable: "/venv/bin/python", treelens: "0.1.0", missing: [] };

class FakeDaemon extends FakeConnection implements RunningDaemon {
  closedListener: (() => void) | undefined;
  stopped = false;
  constructor() {
    super({});
  }
  onClosed(listener: () => void): void {
    this.closedListener = listener;
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  crash(): void {
    this.closedListener?.();
  }
}

function harness(check: PythonReport | Problem = REPORT, launchError?: Error) {
  const api = new FakeApi();
  const daemons: FakeDaemon[] = [];
  const states: DaemonState[] = [];
  const scheduled: { callback: () => void; ms: number; cancelled: boolean }[] = [];
  const launcher: Launcher = {
    check: async () => check,
    launch: async () => {
      if (launchError) {
        throw launchError;
      }
      const daemon = new FakeDaemon();
      daemons.push(daemon);
      return daemon;
    },
  };
  const supervisor = new DaemonSupervisor({
    launcher,
    settings: () => readSettings(api),
    interpreter: async () => ({ command: ["/venv/bin/python"], source: "setting" }),
    schedule: (callback, ms) => {
      const entry = { callback, ms, cancelled: false };
      scheduled.push(entry);
      return { dispose: () => (entry.cancelled = true) };
    },
    onState: (state) => states.push(state),
  });
  return { api, supervisor, daemons, states, scheduled };
}

test("a restart starts a daemon and reports starting, then running", async () => {
  const { supervisor, daemons, states } = harness();
  await supervisor.restart();
  assert.deepEqual(
    states.map((state) => state.kind),
    ["starting", "running"],
  );
  assert.equal(daemons.length, 1);
  await supervisor.restart();
  assert.equal(daemons[0].stopped, true);
  assert.equal(daemons.length, 2);
});

test("a Python without Treelens fails with the check's problem and starts nothing", async () => {
  const problem = notInstalled("/usr/bin/python3");
  const { supervisor, daemons, states } = harness(problem);
  await supervisor.restart();
  assert.equal(daemons.length, 0);
  assert.deepEqual(states.at(-1), { kind: "failed", problem });
});

test("a daemon that dies while starting is reported, not restarted", async () => {
  const { supervisor, states, scheduled } = harness(REPORT, new Error("it exited while starting"));
  await supervisor.restart();
  const last = states.at(-1);
  assert.equal(last?.kind, "failed");
  assert.match(last?.kind === "failed" ? last.problem.message : "", /did not start: it exited while starting/);
  assert.equal(scheduled.length, 0);
});

test("a crashed daemon is restarted with growing delays, then left stopped", async () => {
  const { supervisor, daemons, states, scheduled } = harness();
  await supervisor.restart();
  for (const [attempt, delay] of RESTART_DELAYS_MS.entries()) {
    daemons[attempt].crash();
    assert.deepEqual(states.at(-1), { kind: "restarting", delayMs: delay });
    assert.equal(scheduled[attempt].ms, delay);
    scheduled[attempt].callback();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(states.at(-1)?.kind, "running");
  }
  daemons.at(-1)?.crash();
  const last = states.at(-1);
  assert.equal(last?.kind, "failed");
  assert.match(last?.kind === "failed" ? last.problem.message : "", /stopped 6 times in a row/);
  assert.equal(scheduled.length, RESTART_DELAYS_MS.length);
});

test("a daemon stopped on purpose is not restarted, and a manual restart cancels a pending one", async () => {
  const { supervisor, daemons, states, scheduled } = harness();
  await supervisor.restart();
  daemons[0].crash();
  assert.equal(scheduled.length, 1);
  await supervisor.restart();
  assert.equal(scheduled[0].cancelled, true);
  await supervisor.stop();
  daemons[1].crash(); // the close that follows our own stop
  assert.equal(states.at(-1)?.kind, "running");
  assert.equal(scheduled.length, 1);
});

test("disabled: no daemon, and changed settings are sent to a running one", async () => {
  const { api, supervisor, daemons, states } = harness();
  api.settings["treelens.enable"] = false;
  await supervisor.restart();
  assert.deepEqual(states.at(-1), { kind: "disabled" });
  assert.equal(daemons.length, 0);
  api.settings["treelens.enable"] = true;
  await supervisor.restart();
  api.settings["treelens.device"] = "cpu";
  await supervisor.updateSettings();
  assert.deepEqual(daemons[0].settingsSent, [readSettings(api).daemon]);
});
