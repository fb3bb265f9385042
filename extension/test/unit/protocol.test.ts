import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as protocol from "../../src/protocol";
import { REPO_ROOT } from "./fakes";

/** NAME = "value" and NAME = 123 assignments at the top level of daemon/protocol.py. */
function pythonConstants(source: string): Map<string, string | number> {
  const constants = new Map<string, string | number>();
  for (const match of source.matchAll(/^([A-Z_]+)(?::[^=\n]+)? = (?:"([^"]*)"|(\d+))$/gm)) {
    constants.set(match[1], match[2] ?? Number(match[3]));
  }
  return constants;
}

function pythonTuple(source: string, name: string, constants: Map<string, string | number>): string[] {
  const match = new RegExp(`^${name}(?::[^=\\n]+)? = \\(([^)]*)\\)`, "m").exec(source);
  assert.ok(match, `${name} not found in daemon/protocol.py`);
  return match[1]
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item) => {
      const value = constants.get(item);
      assert.equal(typeof value, "string", `${name} lists ${item}, which is not a string constant`);
      return value as string;
    });
}

const source = readFileSync(path.join(REPO_ROOT, "daemon", "protocol.py"), "utf8");
const constants = pythonConstants(source);

test("request and notification names match daemon/protocol.py", () => {
  assert.deepEqual([...protocol.REQUESTS], pythonTuple(source, "REQUESTS", constants));
  assert.deepEqual([...protocol.NOTIFICATIONS], pythonTuple(source, "NOTIFICATIONS", constants));
});

test("each method constant has the daemon's name and value", () => {
  const methods = [...protocol.REQUESTS, ...protocol.NOTIFICATIONS];
  const exported = Object.entries(protocol).filter(([, value]) => methods.includes(value as never));
  assert.equal(exported.length, methods.length);
  for (const [name, value] of exported) {
    assert.equal(constants.get(name), value, `${name}`);
  }
});

test("error codes and the settings section match daemon/protocol.py", () => {
  const block = /^ERROR_CODES[^{]*\{([^}]*)\}/m.exec(source);
  assert.ok(block, "ERROR_CODES not found in daemon/protocol.py");
  const pythonCodes = Object.fromEntries(
    [...block[1].matchAll(/"(\w+)": (\w+)/g)].map(([, key, constant]) => [key, constants.get(constant)]),
  );
  assert.deepEqual(pythonCodes, { ...protocol.ERROR_CODES });
  assert.equal(constants.get("SETTINGS_SECTION"), protocol.SETTINGS_SECTION);
});
