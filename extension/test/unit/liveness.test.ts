import assert from "node:assert/strict";
import { test } from "node:test";
import { DaemonUnresponsiveError, Liveness, LIVENESS_BOUNDS, PROBE_METHOD, PROBE_PARAMS } from "../../src/common/liveness";
import { CLASSIFY } from "../../src/protocol";
import { FakeConnection } from "./fakes";

const BOUNDS = LIVENESS_BOUNDS;
const never = () => new Promise<never>(() => undefined);
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A Liveness whose timers run when the test says so. */
function harness(handlers: Record<string, (params: never) => unknown>) {
  const connection = new FakeConnection(handlers);
  const timers: { callback: () => void; ms: number; cancelled: boolean }[] = [];
  const deaf: number[] = [];
  const liveness = new Liveness(
    connection,
    (callback, ms) => {
      const timer = { callback, ms, cancelled: false };
      timers.push(timer);
      return { dispose: () => (timer.cancelled = true) };
    },
    (silentMs) => deaf.push(silentMs),
    BOUNDS,
  );
  /** Runs the only timer still armed and checks its delay. */
  const fire = (ms: number) => {
    const armed = timers.filter((timer) => !timer.cancelled);
    assert.equal(armed.length, 1, "one timer at a time");
    assert.equal(armed[0].ms, ms);
    armed[0].cancelled = true;
    armed[0].callback();
  };
  return { connection, liveness, timers, deaf, fire };
}

for (const [answer, handlers] of [
  ["{} (treelens/ping)", { [PROBE_METHOD]: () => ({}) }],
  ["an error (before initialize, after shutdown, a daemon without ping)", {}],
] as const) {
  test(`a daemon that answers the probe with ${answer} is asked again later and never called deaf`, async () => {
    const { connection, deaf, fire } = harness(handlers);
    for (let round = 0; round < 3; round += 1) {
      fire(BOUNDS.intervalMs);
      await tick();
    }
    assert.deepEqual(
      connection.requests,
      Array.from({ length: 3 }, () => ({ method: PROBE_METHOD, params: PROBE_PARAMS })),
    );
    assert.deepEqual(deaf, []);
  });
}

test("a probe unanswered past the bound calls the daemon deaf once and fails the requests waiting on it", async () => {
  const { connection, liveness, timers, deaf, fire } = harness({ [PROBE_METHOD]: never, [CLASSIFY]: never });
  const guarded = liveness.guard();
  const waiting = guarded.request(CLASSIFY, {});
  fire(BOUNDS.intervalMs);
  await tick();
  fire(BOUNDS.answerWithinMs);
  assert.deepEqual(deaf, [BOUNDS.answerWithinMs]);
  await assert.rejects(waiting, (error: Error) => {
    assert.ok(error instanceof DaemonUnresponsiveError);
    assert.match(error.message, /did not answer for 20 s and is being restarted; try again in a moment/);
    return true;
  });
  // later requests fail at once and never reach the deaf daemon; probing has stopped
  const sent = connection.requests.length;
  await assert.rejects(guarded.request(CLASSIFY, {}), DaemonUnresponsiveError);
  assert.equal(connection.requests.length, sent);
  assert.equal(timers.filter((timer) => !timer.cancelled).length, 0);
});

test("answers pass through, and a disposed watch probes no more", async () => {
  const { liveness, timers, deaf } = harness({ [CLASSIFY]: () => ({ folder: "f" }) });
  assert.deepEqual(await liveness.guard().request(CLASSIFY, {}), { folder: "f" });
  liveness.dispose();
  assert.equal(timers.filter((timer) => !timer.cancelled).length, 0);
  assert.deepEqual(deaf, []);
});
