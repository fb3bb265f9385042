import assert from "node:assert/strict";
import { test } from "node:test";
import * as protocol from "../../src/protocol";
import { describeDaemon } from "../description";

const daemon = describeDaemon();

test("requests and notifications are the daemon's", () => {
  assert.deepEqual([...protocol.REQUESTS], daemon.requests);
  assert.deepEqual([...protocol.NOTIFICATIONS], daemon.notifications);
});

test("every method the module exports is one the daemon describes", () => {
  const methods = Object.values(protocol).filter((value) => typeof value === "string" && value.includes("/"));
  assert.deepEqual(methods.sort(), [...daemon.requests, ...daemon.notifications].sort());
});

test("error codes, engines, devices and the settings section are the daemon's", () => {
  assert.deepEqual({ ...protocol.ERROR_CODES }, daemon.errorCodes);
  assert.deepEqual([...protocol.ENGINES], daemon.engines);
  assert.deepEqual([...protocol.DEVICES], daemon.settings.properties.device.enum);
  assert.equal(protocol.SETTINGS_SECTION, daemon.settings.section);
});
