import assert from "node:assert/strict";
import { test } from "node:test";
import type { DaemonState, Launcher, RunningDaemon } from "../../src/common/daemon";
import { DaemonSupervisor } from "../../src/common/daemon";
import { PROBE_METHOD } from "../../src/common/liveness";
import type { PythonReport } from "../../src/common/preflight";
import { noBasePython, notInstalled, type Problem } from "../../src/common/problems";
import type { Interpreter } from "../../src/common/python";
import { RESTART_DELAYS_MS } from "../../src/common/restart";
import { readSettings } from "../../src/common/settings";
import { FakeApi, FakeConnection } from "./fakes";

const REPORT: PythonReport = {
  version: "3.11.9",
  executable: "/venv/bin/python",
  treelens: "0.1.0",
  daemon: true,
  missing: [],
};

/** Liveness bounds of the harness: probe timers are told apart from restart delays by them. */
const PROBE_EVERY_MS = 5;
const ANSWER_WITHIN_MS = 7;

class FakeDaemon extends FakeConnection implements RunningDaemon {
  closedListener: (() => void) | undefined;
  stopped = false;
  /** A deaf daemon never answers anything, the probe included. */
  constructor(deaf = false) {
    super(deaf ? { [PROBE_METHOD]: () => new Promise(() => undefined) } : {});
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

function harness(
  check: PythonReport | Problem = REPORT,
  launchError?: Error,
  deaf = false,
  interpreter: () => Promise<Interpreter | Problem> = async () => ({ command: ["/venv/bin/python"], source: "setting" }),
) {
  const api = new FakeApi();
  const daemons: FakeDaemon[] = [];
  const states: DaemonState[] = [];
  const scheduled: { callback: () => void; ms: number; cancelled: boolean }[] = [];
  const probes: { callback: () => void; ms: number; cancelled: boolean }[] = [];
  const checked: Interpreter[] = [];
  const launcher: Launcher = {
    check: async (used) => {
      checked.push(used);
      return check;
    },
    launch: async () => {
      if (launchError) {
        throw launchError;
      }
      const daemon = new FakeDaemon(deaf);
      daemons.push(daemon);
      return daemon;
    },
  };
  const supervisor = new DaemonSupervisor({
    launcher,
    settings: () => readSettings(api),
    interpreter,
    schedule: (callback, ms) => {
      const entry = { callback, ms, cancelled: false };
      (ms === PROBE_EVERY_MS || ms === ANSWER_WITHIN_MS ? probes : scheduled).push(entry);
      return { dispose: () => (entry.cancelled = true) };
    },
    onState: (state) => states.push(state),
    liveness: { intervalMs: PROBE_EVERY_MS, answerWithinMs: ANSWER_WITHIN_MS },
  });
  /** Lets the current daemon's probe go unanswered past the bound. */
  const silence = async () => {
    const armed = () => probes.filter((entry) => !entry.cancelled);
    assert.deepEqual(
      armed().map((entry) => entry.ms),
      [PROBE_EVERY_MS],
    );
    const probe = armed()[0];
    probe.cancelled = true; // it has run
    probe.callback();
    await new Promise((resolve) => setImmediate(resolve));
    const deadline = armed().find((entry) => entry.ms === ANSWER_WITHIN_MS);
    assert.ok(deadline, "the probe arms its deadline");
    deadline.cancelled = true;
    deadline.callback();
  };
  return { api, supervisor, daemons, states, scheduled, silence, checked };
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

test("no Python to build Treelens' environment with fails with that problem and checks nothing", async () => {
  const problem = noBasePython(["python3: not found"]);
  const { supervisor, daemons, states, checked } = harness(REPORT, undefined, false, async () => problem);
  await supervisor.restart();
  assert.deepEqual(checked, []);
  assert.equal(daemons.length, 0);
  assert.deepEqual(states.at(-1), { kind: "failed", problem });
});

test("a daemon stopped while its environment is being built is not started afterwards", async () => {
  let built: (interpreter: Interpreter) => void = () => undefined;
  const building = new Promise<Interpreter>((resolve) => (built = resolve));
  const { supervisor, daemons, states, checked } = harness(REPORT, undefined, false, () => building);
  const starting = supervisor.restart();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(states.at(-1)?.kind, "starting");
  await supervisor.stop();
  built({ command: ["/env/bin/python", "-I"], source: "private-env" });
  await starting;
  assert.deepEqual(checked, []);
  assert.equal(daemons.length, 0);
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
    assert.deepEqual(states.at(-1), { kind: "restarting", delayMs: delay, reason: "crashed" });
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

test("a deaf daemon is stopped and restarted with growing delays, the person told on the first restart only", async () => {
  const { supervisor, daemons, states, scheduled, silence } = harness(REPORT, undefined, true);
  await supervisor.restart();
  for (const [attempt, delay] of RESTART_DELAYS_MS.entries()) {
    await silence();
    assert.equal(daemons[attempt].stopped, true, "the deaf daemon is stopped (client.ts kills it)");
    const last = states.at(-1);
    assert.ok(last?.kind === "restarting", `state ${last?.kind}`);
    assert.equal(last.reason, "unresponsive");
    assert.equal(last.delayMs, delay);
    if (attempt === 0) {
      assert.match(last.notice?.message ?? "", /did not answer for \d+ s, so Treelens restarted it/);
      assert.equal(last.notice?.severity, "warning");
    } else {
      assert.equal(last.notice, undefined, `restart ${attempt + 1} tells nobody`);
    }
    scheduled[attempt].callback();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(states.at(-1)?.kind, "running");
    assert.equal(daemons.length, attempt + 2);
  }
  await silence();
  const last = states.at(-1);
  assert.equal(last?.kind, "failed");
  assert.match(last?.kind === "failed" ? last.problem.message : "", /stopped answering 6 times in a row/);
  assert.equal(daemons.at(-1)?.stopped, true);
  assert.equal(scheduled.length, RESTART_DELAYS_MS.length);
  // a restart the person asks for starts a new run: a new deafness is news again
  await supervisor.restart();
  await silence();
  const again = states.at(-1);
  assert.ok(again?.kind === "restarting" && again.notice !== undefined);
});

test("a running daemon's requests go through its liveness watch; stopping it ends the probes", async () => {
  const { supervisor, daemons, states } = harness();
  await supervisor.restart();
  const running = states.at(-1);
  assert.ok(running?.kind === "running");
  await assert.rejects(running.connection.request("treelens/classify", {}), /no handler/);
  assert.deepEqual(
    daemons[0].requests.map((entry) => entry.method),
    ["treelens/classify"],
  );
  await supervisor.stop();
  assert.equal(daemons[0].stopped, true);
});
