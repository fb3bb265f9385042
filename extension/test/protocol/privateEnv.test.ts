/**
 * Treelens' own environment built for real: `python3 -m venv` and pip, with a small
 * stand-in wheel named treelens (it has the `treelens.daemon` module the start-up check
 * looks for) installed offline, and pip pointed at an index nobody answers for the
 * failure. The decisions themselves, and the messages for pip's other failures (taken
 * from real pip output), are unit-tested in test/unit/privateEnv.test.ts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { devNull, tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { checkPython, isProblem } from "../../src/common/preflight";
import { ENVS_FOLDER, ensurePrivateEnv, PROGRESS_TITLE, type PrivateEnvOptions } from "../../src/common/privateEnv";

const BASE_PYTHON = "python3";
const WHEEL_SCRIPT = `
import sys, zipfile
out, version, *requires = sys.argv[1:]
info = f"treelens-{version}.dist-info"
files = {
    "treelens/daemon/__init__.py": "",
    f"{info}/METADATA": "Metadata-Version: 2.1\\nName: treelens\\nVersion: " + version + "\\n"
    + "".join(f"Requires-Dist: {name}\\n" for name in requires),
    f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: treelens-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
files[f"{info}/RECORD"] = "".join(f"{name},,\\n" for name in files) + f"{info}/RECORD,,\\n"
with zipfile.ZipFile(f"{out}/treelens-{version}-py3-none-any.whl", "w") as wheel:
    for name, text in files.items():
        wheel.writestr(name, text)
`;

function pythonVersion(): number[] | undefined {
  try {
    return execFileSync(BASE_PYTHON, ["-c", "import sys; print(*sys.version_info[:2])"], { encoding: "utf8" })
      .trim()
      .split(" ")
      .map(Number);
  } catch {
    return undefined;
  }
}

const version = pythonVersion();
const skip = !version || version[0] < 3 || (version[0] === 3 && version[1] < 11) ? "needs python3 >= 3.11 on PATH" : false;

/** A storage folder, a bundled folder with a stand-in wheel, and options that keep pip offline. */
function setup(wheelVersion = "0.0.1", requires: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const root = mkdtempSync(path.join(tmpdir(), "treelens-private-env-"));
  const storage = path.join(root, "storage");
  const bundled = path.join(root, "bundled");
  const empty = path.join(root, "no-packages");
  for (const folder of [storage, bundled, empty]) {
    mkdirSync(folder);
  }
  const progress: string[] = [];
  const options: PrivateEnvOptions = {
    storage,
    bundled,
    basePythons: async () => [["/nonexistent/python3"], [BASE_PYTHON]],
    progress: (title, task) => {
      progress.push(title);
      return task((message) => progress.push(`  ${message}`));
    },
    env: { PIP_CONFIG_FILE: devNull, PIP_NO_INDEX: "1", PIP_FIND_LINKS: empty, ...env },
  };
  const wheel = (next: string, nextRequires: string[] = []) => {
    rmSync(bundled, { recursive: true, force: true });
    mkdirSync(bundled);
    execFileSync(BASE_PYTHON, ["-c", WHEEL_SCRIPT, bundled, next, ...nextRequires]);
  };
  wheel(wheelVersion, requires);
  const envs = () => readdirSync(path.join(storage, ENVS_FOLDER)).sort();
  return { root, storage, options, progress, wheel, envs };
}

test("the environment is built once, reused, rebuilt when its Python is gone, and replaced by a new wheel's", { skip }, async (t) => {
  const { root, options, progress, wheel, envs } = setup();
  t.after(() => rmSync(root, { recursive: true, force: true }));

  const first = await ensurePrivateEnv(options);
  assert.ok(!isProblem(first), isProblem(first) ? first.message : "");
  assert.equal(first.source, "private-env");
  assert.equal(first.command[1], "-I");
  assert.equal(progress[0], PROGRESS_TITLE);
  assert.ok(progress.includes("  installing Treelens and its packages from the package index"), progress.join("\n"));
  const report = await checkPython(first.command);
  assert.ok(!isProblem(report) && report.treelens === "0.0.1");
  const [built] = envs();
  assert.match(built, /^treelens-0\.0\.1-[0-9a-f]{16}$/);

  progress.length = 0;
  assert.deepEqual(await ensurePrivateEnv(options), first, "the same wheel: the environment is reused");
  assert.deepEqual(progress, [], "and nothing is built");

  rmSync(first.command[0]); // its Python is gone (say, the base Python was uninstalled)
  assert.deepEqual(await ensurePrivateEnv(options), first);
  assert.equal(progress[0], PROGRESS_TITLE, "a broken environment is built again");
  assert.ok(existsSync(first.command[0]));

  const target = readlinkSync(first.command[0]);
  rmSync(first.command[0]);
  writeFileSync(first.command[0], "#!/bin/sh\necho 'Fatal Python error: the machine is too busy' >&2\nexit 3\n", { mode: 0o755 });
  progress.length = 0;
  const failing = await ensurePrivateEnv(options);
  assert.ok(isProblem(failing) && failing.kind === "startFailed" && /too busy/.test(failing.message));
  assert.deepEqual(progress, [], "a Python that runs but fails is reported, not rebuilt");
  rmSync(first.command[0]);
  symlinkSync(target, first.command[0]);

  wheel("0.0.2"); // the extension was upgraded
  const upgraded = await ensurePrivateEnv(options);
  assert.ok(!isProblem(upgraded));
  const upgradedReport = await checkPython(upgraded.command);
  assert.ok(!isProblem(upgradedReport) && upgradedReport.treelens === "0.0.2");
  assert.deepEqual(
    envs().map((name) => name.split("-")[1]),
    ["0.0.2"],
    "the old environment is removed",
  );
});

test("an index that cannot be reached is a network problem, and leaves no half-built environment", { skip }, async (t) => {
  const port = await closedPort();
  const { root, options, envs } = setup("0.0.1", ["treelens-test-missing-package"], {
    PIP_INDEX_URL: `http://127.0.0.1:${port}/simple`,
    PIP_RETRIES: "1",
    PIP_TIMEOUT: "5",
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  delete options.env?.PIP_NO_INDEX; // pip asks the index, which refuses the connection
  const result = await ensurePrivateEnv(options);
  assert.ok(isProblem(result));
  assert.match(result.message, /pip could not download Treelens' packages from the package index \(Failed to establish a new connection: \[Errno 111\] Connection refused\)\. Check the network/);
  assert.deepEqual(envs(), []);
});

test("without any Python 3.11+ nothing is built and each candidate is named", async (t) => {
  const { root, storage, options } = setup();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  options.basePythons = async () => [["/nonexistent/python3"], ["/nonexistent/python"]];
  const result = await ensurePrivateEnv(options);
  assert.ok(isProblem(result) && result.kind === "noPython");
  assert.match(result.message, /found none \(\/nonexistent\/python3: not found; \/nonexistent\/python: not found\)/);
  assert.ok(!existsSync(path.join(storage, ENVS_FOLDER)), "nothing written");
});

/** A loopback port nothing listens on: connections to it are refused at once. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 9));
    });
  });
}
