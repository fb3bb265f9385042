/**
 * The decisions behind Treelens' own environment: which Python builds it, which wheel it
 * holds (and so when it is rebuilt), and what a failed build tells the person. The real
 * venv and pip runs are in test/protocol/privateEnv.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { PythonReport } from "../../src/common/preflight";
import { bundledWheel, envCommand, findBasePython, setupFailure } from "../../src/common/privateEnv";
import { noPython, startFailed, type Problem } from "../../src/common/problems";

function report(version: string): PythonReport {
  return { version, executable: "/usr/bin/python3", treelens: null, daemon: false, missing: [] };
}

/** An inspect function answering from a table, recording what it was asked. */
function machine(pythons: Record<string, PythonReport | Problem>) {
  const asked: string[] = [];
  const inspect = async (command: string[]) => {
    const name = command.join(" ");
    asked.push(name);
    return pythons[name] ?? noPython(name, "not found");
  };
  return { asked, inspect };
}

test("the first Python 3.11+ builds the environment; later candidates are not even run", async () => {
  const { asked, inspect } = machine({ "/venv/bin/python": report("3.12.1"), python3: report("3.11.2") });
  assert.deepEqual(await findBasePython([["/venv/bin/python"], ["python3"]], inspect), {
    command: ["/venv/bin/python"],
    version: "3.12.1",
  });
  assert.deepEqual(asked, ["/venv/bin/python"]);
});

test("old, missing and broken Pythons are skipped and each is named when none will do", async () => {
  const { inspect } = machine({
    "/venv/bin/python": report("3.9.18"),
    python3: report("3.10.12"),
    "py -3": startFailed("it crashed"),
  });
  const none = await findBasePython([["/venv/bin/python"], ["python3"], ["python"]], inspect);
  assert.ok("kind" in none && none.kind === "noPython");
  assert.equal(
    none.message,
    "Treelens needs Python 3.11 or newer to set up its daemon and found none " +
      "(/venv/bin/python: Python 3.9.18; python3: Python 3.10.12; python: not found). " +
      'Install Python 3.11+ or select one in the Python extension, then run "Treelens: Restart Daemon".',
  );
  const later = machine({ "py -3": startFailed("x"), python4: report("4.0.0") });
  assert.deepEqual(await findBasePython([["py", "-3"], ["python3"], ["python4"]], later.inspect), {
    command: ["python4"],
    version: "4.0.0",
  });
  const broken = await findBasePython([["py", "-3"]], inspect);
  assert.ok("kind" in broken && /\(py -3: does not run\)/.test(broken.message));
});

test("the environment's name follows the wheel's version and content: a new .vsix builds a new one", async () => {
  const folder = mkdtempSync(path.join(tmpdir(), "treelens-bundled-"));
  const missing = await bundledWheel(folder);
  assert.ok("kind" in missing && missing.kind === "setupFailed");
  assert.match(missing.message, /carries no Treelens wheel .*treelens\.python/);
  assert.deepEqual(missing.actions, ["openSettings", "showLog"]);

  const wheel = path.join(folder, "treelens-0.1.0-py3-none-any.whl");
  writeFileSync(wheel, "one build");
  writeFileSync(path.join(folder, "README.txt"), "not a wheel");
  const first = await bundledWheel(folder);
  assert.ok(!("kind" in first));
  assert.equal(first.path, wheel);
  assert.match(first.envName, /^treelens-0\.1\.0-[0-9a-f]{16}$/);
  assert.deepEqual(await bundledWheel(folder), first, "the same wheel: the same environment");
  writeFileSync(wheel, "another build of the same version");
  const rebuilt = await bundledWheel(folder);
  assert.ok(!("kind" in rebuilt));
  assert.notEqual(rebuilt.envName, first.envName);
  assert.match(rebuilt.envName, /^treelens-0\.1\.0-/);
});

test("the daemon runs isolated in its environment's Python", () => {
  assert.deepEqual(envCommand("/s/env", "linux"), ["/s/env/bin/python", "-I"]);
  assert.deepEqual(envCommand("/s/env", "win32"), [path.join("/s/env", "Scripts", "python.exe"), "-I"]);
});

const CONTEXT = { python: "python3", version: "3.11.4", storage: "/home/me/.config/Code/User/globalStorage/treelens.treelens" };

test("a failed build is one line that says what happened and what to do", () => {
  const network = setupFailure(
    "pip",
    [
      "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by " +
        "'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new " +
        "connection: [Errno -3] Temporary failure in name resolution')': /simple/onnxruntime/",
      "ERROR: Could not find a version that satisfies the requirement onnxruntime>=1.20 (from treelens) (from versions: none)",
      "ERROR: No matching distribution found for onnxruntime>=1.20",
    ].join("\n"),
    CONTEXT,
  );
  assert.equal(network.kind, "setupFailed");
  assert.equal(
    network.message,
    "Treelens could not set up its Python environment: pip could not download Treelens' packages from the package index " +
      "(Failed to establish a new connection: [Errno -3] Temporary failure in name resolution). Check the network " +
      `connection and pip's proxy and index settings, then run "Treelens: Restart Daemon".`,
  );
  assert.deepEqual(network.actions, ["showLog", "restart"]);

  const noWheel = setupFailure(
    "pip",
    "ERROR: Could not find a version that satisfies the requirement onnxruntime>=1.20 (from versions: none)\n" +
      "ERROR: No matching distribution found for onnxruntime>=1.20\n",
    CONTEXT,
  );
  assert.match(noWheel.message, /the package index has no onnxruntime>=1\.20 for Python 3\.11\.4 on this machine/);

  const diskFull = setupFailure(
    "pip",
    "Installing collected packages: onnxruntime\nERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n",
    CONTEXT,
  );
  assert.match(diskFull.message, /the disk is full \(\/home\/me\/.*treelens\.treelens\)\. Free some space, then run/);
  assert.match(setupFailure("files", "ENOSPC: no space left on device, rename", CONTEXT).message, /the disk is full/);

  const noEnsurepip = setupFailure(
    "venv",
    "The virtual environment was not created successfully because ensurepip is not\navailable.  On Debian/Ubuntu " +
      "systems, you need to install the python3-venv\npackage using the following command.\n\n    apt install python3.11-venv\n",
    CONTEXT,
  );
  assert.match(noEnsurepip.message, /"python3" \(Python 3\.11\.4\) cannot create virtual environments: ensurepip is missing/);

  const other = setupFailure("pip", "Processing ./treelens.whl\nERROR: treelens.whl is not a valid wheel filename.\n", CONTEXT);
  assert.match(other.message, /pip install failed \(ERROR: treelens\.whl is not a valid wheel filename\.\)\. The Treelens output/);
  for (const problem of [network, noWheel, diskFull, noEnsurepip, other]) {
    assert.doesNotMatch(problem.message, /\n/, "one line");
  }
});
