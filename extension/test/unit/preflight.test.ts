import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { checkPython, isProblem, judge } from "../../src/common/preflight";
import { REPO_ROOT } from "./fakes";

const VENV_PYTHON = path.join(REPO_ROOT, ".venv", "bin", "python");

test("a Python that does not exist is reported as such", async () => {
  const result = await checkPython(["/nonexistent/bin/python3"]);
  assert.ok(isProblem(result));
  assert.equal(result.kind, "noPython");
  assert.match(result.message, /could not run Python "\/nonexistent\/bin\/python3" \(not found\)/);
  assert.match(result.message, /treelens\.python/);
});

test("the project's environment passes the check", { skip: !existsSync(VENV_PYTHON) && "no .venv" }, async () => {
  const result = await checkPython([VENV_PYTHON]);
  assert.ok(!isProblem(result), isProblem(result) ? result.message : "");
  assert.match(result.version, /^3\.1\d/);
  assert.equal(typeof result.treelens, "string");
  assert.equal(result.daemon, true, "the treelens.daemon module the extension starts");
  assert.deepEqual(result.missing, []);
});

test("a Python without Treelens is reported with how to install it", async () => {
  // -I ignores user site-packages and PYTHONPATH; -S leaves out site-packages too,
  // so no treelens can be found whatever the machine has installed.
  const result = await checkPython(["python3", "-I", "-S"]);
  assert.ok(isProblem(result));
  assert.equal(result.kind, "notInstalled");
  assert.match(result.message, /Treelens is not installed in "python3"/);
  assert.match(result.message, /-m pip install/);
});

test("a Python that fails to run the check is reported with its error", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "treelens-preflight-"));
  const fake = path.join(dir, "python");
  writeFileSync(fake, "#!/bin/sh\necho 'fatal: broken interpreter' >&2\nexit 3\n", { mode: 0o755 });
  const result = await checkPython([fake]);
  assert.ok(isProblem(result));
  assert.equal(result.kind, "startFailed");
  assert.match(result.message, /fatal: broken interpreter/);
});

test("old Pythons, old Treelenses and missing runtime packages are told apart", () => {
  const line = (report: object) =>
    JSON.stringify({ version: "3.11.4", executable: "/p", treelens: "0.1.0", daemon: true, missing: [], ...report });
  const old = judge("/p", line({ version: "3.9.18" }));
  assert.ok(isProblem(old) && old.kind === "oldPython" && /3\.9\.18/.test(old.message));
  const missing = judge("/p", line({ missing: ["onnxruntime", "pygls"] }));
  assert.ok(isProblem(missing) && missing.kind === "missingPackages" && /onnxruntime, pygls/.test(missing.message));
  const beforeRename = judge("/p", line({ treelens: "0.0.9", daemon: false }));
  assert.ok(isProblem(beforeRename) && beforeRename.kind === "notInstalled");
  assert.match(beforeRename.message, /The Treelens 0\.0\.9 in "\/p" has no treelens\.daemon module/);
  const garbage = judge("/p", "Traceback...");
  assert.ok(isProblem(garbage) && garbage.kind === "startFailed");
  assert.ok(!isProblem(judge("/p", `warning on stdout\n${line({})}`)));
});
