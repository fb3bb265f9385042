import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff, SerialRestarter } from "../../src/common/restart";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

test("restarts run one at a time and a burst while one runs gives one more", async () => {
  const gates: { resolve: () => void }[] = [];
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  const restarter = new SerialRestarter(async () => {
    runs += 1;
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    const gate = deferred();
    gates.push(gate);
    await gate.promise;
    running -= 1;
  });
  const first = restarter.restart();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(runs, 1);
  const burst = [restarter.restart(), restarter.restart(), restarter.restart()];
  assert.equal(burst[0], burst[1]);
  assert.equal(burst[1], burst[2]);
  gates[0].resolve();
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(runs, 2);
  gates[1].resolve();
  await Promise.all(burst);
  assert.equal(runs, 2);
  assert.equal(maxRunning, 1);
});

test("a failed restart does not block the next one", async () => {
  let calls = 0;
  const restarter = new SerialRestarter(async () => {
    calls += 1;
    if (calls === 1) {
      throw new Error("boom");
    }
  });
  await assert.rejects(restarter.restart(), /boom/);
  await restarter.restart();
  assert.equal(calls, 2);
});

test("back-off grows, gives up, and starts over after a stable run", () => {
  let now = 0;
  const backoff = new Backoff([10, 20, 40], 1_000, () => now);
  backoff.started();
  assert.equal(backoff.nextDelay(), 10);
  now += 100;
  backoff.started();
  assert.equal(backoff.nextDelay(), 20);
  assert.equal(backoff.nextDelay(), 40);
  assert.equal(backoff.nextDelay(), undefined);
  assert.equal(backoff.crashes, 3);
  now += 5_000; // the last start was long ago: the daemon had been running fine
  assert.equal(backoff.nextDelay(), 10);
  backoff.reset();
  backoff.started();
  assert.equal(backoff.nextDelay(), 10);
});
