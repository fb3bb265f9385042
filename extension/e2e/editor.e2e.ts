/**
 * The real-editor end-to-end test (recipe: ../shared/docs/real-editor-e2e.md): the built
 * treelens.vsix installed into code-server, Debian's Chromium driven by playwright-core,
 * on a copy of the sample workspace. The editor starts as a new user's would: only a
 * Python 3.11+ on PATH, no Treelens in it or anywhere else it can see, no treelens.python
 * setting. The extension builds its own environment from the wheel in the .vsix (the
 * progress notification is checked) and the daemon runs from there.
 *
 * It checks that the status bar shows the labels `treelens classify --json` computes for
 * the workspace, runs "Suggest SAST Query Set" and "Send Feedback" through the command
 * palette, checks what they wrote (the saved config, the feedback row), and leaves
 * screenshots and logs in .e2e/artifacts/. Everything code-server writes stays in a scratch
 * folder. A failure in the set-up names the step that broke.
 *
 * Run: `make test-e2e` (installs the tools with extension/e2e/install-tools.sh first).
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { DAEMON_ARGS } from "../src/common/python";
import { cliClassify, REPO_ROOT, sampleWorkspace, testBundle, VENV_PYTHON } from "../test/support";

const TOOLS = process.env.TREELENS_E2E_TOOLS ?? path.join(homedir(), ".cache", "treelens-e2e");
const NODE_BIN = path.join(TOOLS, "node_modules", ".bin");
const CODE_SERVER = path.join(TOOLS, "code-server", "node_modules", ".bin", "code-server");
const CHROMIUM = process.env.TREELENS_E2E_CHROMIUM ?? "/usr/bin/chromium";
const VSIX = path.join(REPO_ROOT, "treelens.vsix");
const OUT = path.join(REPO_ROOT, ".e2e", "artifacts");
/** The project's data folder beside the checkout, where the semgrep rule index lives. */
const SHARED_DATA = process.env.TREELENS_DATA_DIR ?? path.join(REPO_ROOT, "..", "shared", "data");
/** Building Treelens' environment (venv, pip from the package index) comes before the first labels. */
const LABELS_TIMEOUT_MS = 300_000;
const STEP_TIMEOUT_MS = 60_000;

let scratch: string;
let workspace: string;
let bundle: string | undefined;
let expectedLabels: string[];
/** The status bar's text for the CLI's answer: the labels, then the uncertain ones with `?`. */
let expectedStatus: string;
let feedbackDatabase: string;
let server: ChildProcess | undefined;
let browser: BrowserContext | undefined;
let page: Page;
/** Whether `page` holds the workbench yet (a failed step before that has no screenshot). */
let pageOpen = false;
/** Where the extension keeps its own environments: code-server's global storage for Treelens. */
let envsFolder: string;
const started = Date.now();

/**
 * HOME and the XDG folders point into the scratch folder: code-server writes nothing outside.
 * PATH holds Node 24, a `python3` that is the machine's plain Python (the base interpreter of
 * the project's .venv, without Treelens) and the system folders: no .venv, no pyenv shims.
 */
function contained(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [NODE_BIN, ...editorPath()].join(":"),
    // the semgrep rule index the Semgrep query set is chosen from (not part of the wheel)
    TREELENS_DATA_DIR: SHARED_DATA,
    HOME: path.join(scratch, "home"),
    XDG_CONFIG_HOME: path.join(scratch, "home", ".config"),
    XDG_DATA_HOME: path.join(scratch, "home", ".local", "share"),
    XDG_CACHE_HOME: path.join(scratch, "home", ".cache"),
    TMPDIR: path.join(scratch, "tmp"),
  };
  for (const name of ["VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYENV_VERSION"]) {
    delete env[name];
  }
  return env;
}

/** Runs one set-up step; a failure says which step broke (with a screenshot once the page is up). */
async function step<T>(name: string, run: () => T | Promise<T>): Promise<T> {
  const begun = Date.now();
  try {
    const result = await run();
    process.stderr.write(`e2e step "${name}": ${((Date.now() - begun) / 1000).toFixed(1)} s\n`);
    return result;
  } catch (error) {
    const shot = pageOpen ? await screenshot(`failed-${name.replace(/\W+/g, "-")}.png`).catch(() => "") : "";
    throw new Error(`e2e step "${name}" failed: ${error instanceof Error ? error.message : String(error)}${shot ? ` (screenshot ${shot})` : ""}`, {
      cause: error,
    });
  }
}

/** The folders besides Node 24's where the editor finds programs, Pythons among them. */
function editorPath(): string[] {
  return [path.join(scratch, "bin"), "/usr/local/bin", "/usr/bin", "/bin"];
}

/** The plain Python to offer the editor: the interpreter the project's .venv was made from. */
function basePython(): string {
  return execFileSync(VENV_PYTHON, ["-c", "import sys; print(sys._base_executable)"], { encoding: "utf8" }).trim();
}

function codeServerArgs(): string[] {
  return [
    "--user-data-dir",
    path.join(scratch, "data"),
    "--extensions-dir",
    path.join(scratch, "extensions"),
    "--config",
    path.join(scratch, "config.yaml"),
  ];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function waitForHttp(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`${url} did not answer within ${ms} ms; see .e2e/code-server.log`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function screenshot(name: string): Promise<string> {
  const file = path.join(OUT, name);
  await page.screenshot({ path: file });
  return file;
}

/** The Treelens status bar item's text (icons are spans, so only the words). */
async function statusText(): Promise<string> {
  const item = page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "Treelens" }).or(
    page.locator("#workbench\\.parts\\.statusbar .statusbar-item:has(.codicon-shield)"),
  );
  return (await item.first().innerText()).trim();
}

async function runCommand(title: string): Promise<void> {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  await input.fill(`>${title}`);
  await page
    .locator(".quick-input-list .monaco-list-row", { hasText: title })
    .first()
    .waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.keyboard.press("Enter");
}

/** Waits for a notification toast containing `text`; returns it. */
async function notification(text: string | RegExp) {
  const toast = page.locator(".notification-toast", { hasText: text }).first();
  await toast.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  return toast;
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  await step("find the tools", () => {
    assert.ok(existsSync(CODE_SERVER), `${CODE_SERVER} is missing: run extension/e2e/install-tools.sh`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run extension/e2e/install-tools.sh`);
    assert.ok(existsSync(VSIX), `${VSIX} is missing: run npm run package`);
    assert.ok(existsSync(VENV_PYTHON), `${VENV_PYTHON} is missing: run make setup-dev`);
    const index = path.join(SHARED_DATA, "semgrep-rules-index.jsonl");
    assert.ok(existsSync(index), `${index} is missing: set TREELENS_DATA_DIR to the data folder holding it`);
  });
  await step("compute the expected labels with treelens classify (the project's .venv)", () => {
    bundle = testBundle();
    workspace = sampleWorkspace("treelens-e2e-workspace-");
    const classification = cliClassify(workspace, bundle);
    expectedLabels = classification.labels;
    const shown = [...classification.labels, ...classification.uncertain.map((label) => `${label}?`)];
    expectedStatus = shown.length > 0 ? shown.join(" · ") : "no labels";
    process.stderr.write(`expected status (treelens classify --json): ${expectedStatus}\n`);
  });

  scratch = mkdtempSync(path.join(tmpdir(), "treelens-e2e-"));
  for (const dir of ["home", "tmp", "data/User", "extensions", "chrome", "bin"]) {
    mkdirSync(path.join(scratch, dir), { recursive: true });
  }
  envsFolder = path.join(scratch, "data", "User", "globalStorage", "treelens.treelens", "python-envs");
  await step("offer only plain Pythons without Treelens on PATH", () => {
    symlinkSync(basePython(), path.join(scratch, "bin", "python3"));
    // code-server may take the extension host's PATH from a login shell: every folder of ours is checked
    const probe = "import importlib.util, sys; print(sys.version_info >= (3, 11), importlib.util.find_spec('treelens') is None)";
    const pythons = editorPath()
      .flatMap((dir) => ["python3", "python"].map((name) => path.join(dir, name)))
      .filter((file) => existsSync(file));
    const answers = pythons.map((python) => {
      const answer = execFileSync(python, ["-c", probe], { env: contained(), encoding: "utf8", cwd: scratch }).trim();
      assert.ok(answer.endsWith("True"), `${python} on the editor's PATH has no Treelens`);
      return answer;
    });
    assert.ok(answers.some((answer) => answer.startsWith("True")), `a Python 3.11+ among ${pythons.join(", ")}`);
  });
  feedbackDatabase = path.join(scratch, "feedback.sqlite3");
  writeFileSync(path.join(scratch, "config.yaml"), "auth: none\n");
  writeFileSync(
    path.join(scratch, "data", "User", "settings.json"),
    JSON.stringify(
      {
        // no treelens.python: the extension builds its own environment
        ...(bundle ? { "treelens.modelPath": bundle } : {}),
        "treelens.device": "cpu",
        "treelens.feedbackDatabase": feedbackDatabase,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": false,
        "workbench.enableExperiments": false,
        "security.workspace.trust.enabled": false,
        "telemetry.telemetryLevel": "off",
        "extensions.autoCheckUpdates": false,
        "extensions.autoUpdate": false,
        "extensions.ignoreRecommendations": true,
        "update.mode": "none",
        "chat.disableAIFeatures": true,
      },
      null,
      2,
    ),
  );
  await step("install the .vsix into code-server", () => {
    execFileSync(CODE_SERVER, [...codeServerArgs(), "--install-extension", VSIX], {
      env: contained(),
      stdio: ["ignore", "inherit", "inherit"],
    });
  });

  const port = await freePort();
  await step("start code-server", async () => {
    const log = openSync(path.join(OUT, "code-server.log"), "w");
    server = spawn(
      CODE_SERVER,
      [
        ...codeServerArgs(),
        "--auth",
        "none",
        "--bind-addr",
        `127.0.0.1:${port}`,
        "--disable-telemetry",
        "--disable-update-check",
        "--disable-workspace-trust",
        "--reconnection-grace-time",
        "5",
        workspace,
      ],
      { env: contained(), detached: true, stdio: ["ignore", log, log] },
    );
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);
  });

  await step("open the workbench in Chromium", async () => {
    browser = await chromium.launchPersistentContext(path.join(scratch, "chrome"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 900 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const opened = browser.pages()[0] ?? (await browser.newPage());
    await opened.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await opened.locator(".monaco-workbench").waitFor({ timeout: STEP_TIMEOUT_MS });
    page = opened;
    pageOpen = true;
    await opened.locator("#workbench\\.parts\\.statusbar").waitFor({ timeout: STEP_TIMEOUT_MS });
  });

  await step("see Treelens set up its own Python environment (progress notification)", async () => {
    const toast = page.locator(".notification-toast", { hasText: "setting up its Python environment" }).first();
    await toast.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
    await screenshot("setting-up.png");
  });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (scratch && existsSync(path.join(scratch, "data", "logs"))) {
    cpSync(path.join(scratch, "data", "logs"), path.join(OUT, "logs"), { recursive: true }); // the Treelens output among them
  }
  if (server?.pid) {
    try {
      process.kill(-server.pid, "SIGTERM"); // its own process group: code-server and its children
    } catch {
      // already gone
    }
  }
  for (const dir of [scratch, workspace && path.dirname(workspace)]) {
    if (dir) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stderr.write(`e2e took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots and logs in ${OUT}\n`);
});

test("the status bar shows the labels treelens classify computes", async () => {
  const expected = expectedStatus;
  const item = page.locator("#workbench\\.parts\\.statusbar .statusbar-item:has(.codicon-shield)", {
    hasText: expected,
  });
  try {
    await item.first().waitFor({ timeout: LABELS_TIMEOUT_MS });
  } catch (error) {
    await screenshot("failed-status-bar.png");
    throw new Error(`status bar never showed "${expected}"; it shows "${await statusText().catch(() => "?")}"`, {
      cause: error,
    });
  }
  const text = (await item.first().innerText()).trim();
  assert.equal(text, expected, "exactly the labels, then the uncertain ones, in the model's order");
  assert.equal(await item.first().locator(".codicon-sync, .codicon-error, .codicon-warning").count(), 0);
  assert.doesNotMatch(text, /error|no model|not installed|failed/i);
  const pid = daemonPid();
  assert.ok(pid, "the daemon runs in the workspace folder");
  const python = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
  assert.ok(python.startsWith(`${envsFolder}${path.sep}treelens-`), `the daemon runs from Treelens' own environment, not ${python}`);

  await item.first().hover();
  const tooltip = page.locator(".monaco-hover, .workbench-hover", { hasText: "probability" }).first();
  await tooltip.waitFor({ state: "visible", timeout: STEP_TIMEOUT_MS });
  const tip = await tooltip.innerText();
  for (const label of expectedLabels) {
    assert.ok(tip.includes(label), `tooltip lacks ${label}: ${tip}`);
  }
  assert.match(tip, /Tokens: [\d,]+/);
  assert.match(tip, /Languages: .*python/);
  await screenshot("status-bar.png");
  await page.mouse.move(700, 400);
});

test("Suggest SAST Query Set opens the semgrep config and saves it to the workspace", async () => {
  await runCommand("Treelens: Suggest SAST Query Set");
  const engines = page.locator(".quick-input-list .monaco-list-row", { hasText: "Semgrep" });
  await engines.first().waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.locator(".quick-input-widget", { hasText: "SAST query set for sample-api" }).waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.locator(".quick-input-widget input").fill("Semgrep");
  await page.keyboard.press("Enter");
  // the path options (none ticked: every file, every finding), accepted as offered
  await page.locator(".quick-input-widget", { hasText: "Semgrep paths" }).waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.locator(".quick-input-list .monaco-list-row", { hasText: "Leave out vendored" }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
  await page.keyboard.press("Enter");
  const editor = page.locator(".monaco-editor .view-lines", { hasText: "Treelens Semgrep query set" });
  await editor.first().waitFor({ timeout: STEP_TIMEOUT_MS });
  const toast = await notification(/Kept [\d,]+ of [\d,]+ Semgrep rules/);
  const fileName = /Save it as (\S+)\?/.exec(await toast.innerText())?.[1];
  assert.ok(fileName, "the notification names the file to save");
  await screenshot("query-set.png");
  await toast.locator(".monaco-button", { hasText: "Save to Workspace" }).click();
  await notification(`Saved ${fileName}`);
  const saved = path.join(workspace, fileName);
  assert.ok(existsSync(saved), `${fileName} was saved in the workspace folder`);
  const content = readFileSync(saved, "utf8");
  assert.ok(content.trim().length > 0);
  await page.locator(".tabs-container .tab", { hasText: fileName }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
  if (/\.ya?ml$/.test(fileName)) {
    assert.match(content, /^# Treelens Semgrep query set for sample-api/);
  } else {
    // a list of rule files, saved exactly as the daemon wrote it
    assert.ok(content.trim().split("\n").every((line) => /\.ya?ml$/.test(line)), content.slice(0, 300));
  }
});

test("Send Feedback submits the pre-ticked labels with a comment", async () => {
  await runCommand("Treelens: Send Feedback");
  await page.locator(".quick-input-widget", { hasText: "Treelens feedback for sample-api" }).waitFor({ timeout: STEP_TIMEOUT_MS });
  // the widget is reused: wait until the previous pick's rows (the Semgrep path options) are gone
  await page.locator(".quick-input-list .monaco-list-row", { hasText: "Leave out vendored" }).waitFor({ state: "detached", timeout: STEP_TIMEOUT_MS });
  await page.locator(".quick-input-list .monaco-list-row[aria-checked]", { hasText: "frontend" }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
  const ticked = await page
    .locator(".quick-input-list .monaco-list-row[aria-checked='true'] .label-name")
    .allInnerTexts();
  assert.deepEqual(ticked.map((label) => label.trim()), expectedLabels, "the current labels are pre-ticked");
  await screenshot("feedback-pick.png");
  await page.keyboard.press("Enter");
  const input = page.locator(".quick-input-widget input");
  await page.locator(".quick-input-widget", { hasText: "Comment (optional)" }).waitFor({ timeout: STEP_TIMEOUT_MS });
  await input.fill("e2e: labels look right");
  await page.keyboard.press("Enter");
  const toast = await notification(/Thank you: feedback #\d+ for sample-api stored/);
  const id = Number(/#(\d+)/.exec(await toast.innerText())?.[1]);
  await page.waitForTimeout(500); // let the toast finish sliding in
  await screenshot("treelens-e2e.png");
  const row = execFileSync(
    VENV_PYTHON,
    [
      "-c",
      "import json, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); " +
        "print(json.dumps(c.execute('select labels, comment from feedback where id = ?', (int(sys.argv[2]),)).fetchone()))",
      feedbackDatabase,
      String(id),
    ],
    { encoding: "utf8" },
  );
  const [labels, comment] = JSON.parse(row) as [string, string];
  const stored = JSON.parse(labels) as Record<string, number>;
  assert.deepEqual(
    Object.keys(stored).filter((label) => stored[label] === 1),
    expectedLabels,
  );
  assert.equal(comment, "e2e: labels look right");
});

test("Show Tokenization renders the model text token by token under its CSP", async () => {
  await runCommand("Treelens: Show Tokenization");
  await page
    .locator(".tabs-container .tab", { hasText: "Treelens Tokens: sample-api" })
    .first()
    .waitFor({ timeout: STEP_TIMEOUT_MS });
  // the page lives in the webview's inner iframe
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let summary = "";
  let spans = 0;
  let background = "";
  while (Date.now() < deadline && spans === 0) {
    for (const frame of page.frames()) {
      const found = frame.locator("#summary");
      if ((await found.count().catch(() => 0)) > 0) {
        summary = await found.innerText();
        spans = await frame.locator("pre span").count();
        background = await frame
          .locator("pre span")
          .first()
          .evaluate("(span) => getComputedStyle(span).backgroundColor") as string;
      }
    }
    if (spans === 0) {
      await page.waitForTimeout(250);
    }
  }
  assert.match(summary, /^[\d,]+ tokens · (not truncated|truncated to fit the model)$/);
  assert.equal(spans, Number(summary.replace(/,/g, "").split(" ")[0]), "one coloured span per token");
  assert.notEqual(background, "rgba(0, 0, 0, 0)", "the nonce'd stylesheet applies under the CSP");
  await screenshot("tokenization.png");
});

/** The daemon this test's code-server started: our venv's Python running in the scratch workspace. */
function daemonPid(): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (DAEMON_ARGS.every((arg) => args.includes(arg)) && readlinkSync(`/proc/${entry}/cwd`) === workspace) {
        return Number(entry);
      }
    } catch {
      // the process ended meanwhile, or is not ours to read
    }
  }
  return undefined;
}

test("a daemon killed with SIGKILL is restarted and the labels come back", async () => {
  const pid = daemonPid();
  assert.ok(pid, "the daemon runs in the workspace folder");
  process.kill(pid, "SIGKILL");
  const expected = expectedStatus;
  const deadline = Date.now() + LABELS_TIMEOUT_MS;
  let restarted: number | undefined;
  while (Date.now() < deadline && (restarted === undefined || restarted === pid)) {
    await page.waitForTimeout(250);
    restarted = daemonPid();
  }
  assert.ok(restarted && restarted !== pid, "a new daemon process was started");
  await page
    .locator("#workbench\\.parts\\.statusbar .statusbar-item:has(.codicon-shield)", { hasText: expected })
    .first()
    .waitFor({ timeout: LABELS_TIMEOUT_MS });
  assert.equal(await statusText(), expected);
});
