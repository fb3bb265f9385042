/**
 * What the protocol test and the e2e test share: the project's Python, the model bundle
 * they run against, and a copy of the sample workspace outside the repository (inside it,
 * `git ls-files` would see an ignored folder and no files).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
  createProtocolConnection,
  type InitializeParams,
  type ProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageserver-protocol/node";
import { DAEMON_ARGS } from "../src/common/python";
import { settingsPayload } from "../src/common/settings";
import type { DaemonSettings } from "../src/protocol";

export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
export const VENV_PYTHON = path.join(REPO_ROOT, ".venv", "bin", "python");
export const FIXTURES = path.join(REPO_ROOT, "extension", "test", "fixtures");
export const SAMPLE_WORKSPACE = path.join(FIXTURES, "sample-api");
export const DEFAULT_BUNDLE = path.join(REPO_ROOT, "model", "assets", "default");
/** Where the tiny bundle is built when the repository has no default model yet (git-ignored). */
export const TINY_RUN = path.join(REPO_ROOT, ".e2e", "tiny-model");

/**
 * The bundle to test against: $TREELENS_TEST_MODEL, else the shipped default bundle, else
 * the pytest suites' tiny bundle (tests/tiny_model.py: the real pipeline on a few records,
 * seconds on CPU), built once and kept in .e2e/. Returns undefined for "the daemon's default".
 */
export function testBundle(): string | undefined {
  const fromEnv = process.env.TREELENS_TEST_MODEL;
  if (fromEnv) {
    return path.resolve(fromEnv);
  }
  if (existsSync(path.join(DEFAULT_BUNDLE, "manifest.json"))) {
    return undefined;
  }
  const bundle = path.join(TINY_RUN, "export", "bundle");
  if (!existsSync(path.join(bundle, "manifest.json")) || !loads(bundle)) {
    process.stderr.write(`no default model in ${DEFAULT_BUNDLE}: building the tiny test bundle in ${TINY_RUN}\n`);
    rmSync(TINY_RUN, { recursive: true, force: true });
    mkdirSync(TINY_RUN, { recursive: true });
    execFileSync(
      VENV_PYTHON,
      [
        "-c",
        "import sys; from pathlib import Path; from tests.tiny_model import build_tiny_run, tiny_records, write_records; " +
          "root = Path(sys.argv[1]); build_tiny_run(root, write_records(root / 'projects-tiny.jsonl', tiny_records()))",
        TINY_RUN,
      ],
      { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] },
    );
  }
  return bundle;
}

/** Whether the runtime accepts a bundle (hashes, input-format version): a cached one may be stale. */
function loads(bundle: string): boolean {
  try {
    execFileSync(VENV_PYTHON, ["-c", "import sys; from treelens.model.bundle import load_bundle; load_bundle(sys.argv[1])", bundle], {
      cwd: REPO_ROOT,
      stdio: "ignore",
    });
    return true;
  } catch {
    return false;
  }
}

/** A fresh copy of the sample workspace in a temporary folder; returns its path. */
export function sampleWorkspace(prefix: string): string {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  const workspace = path.join(root, "sample-api");
  cpSync(SAMPLE_WORKSPACE, workspace, { recursive: true });
  return workspace;
}

export interface CliClassification {
  labels: string[];
  uncertain: string[];
  probabilities: Record<string, number>;
}

/** What `treelens classify --json` says about a folder with a bundle: the labels to expect. */
export function cliClassify(folder: string, bundle: string | undefined): CliClassification {
  const args = ["classify", folder, "--json", ...(bundle ? ["--model", bundle] : [])];
  const output = execFileSync(path.join(REPO_ROOT, ".venv", "bin", "treelens"), args, { encoding: "utf8" });
  return JSON.parse(output) as CliClassification;
}

/** `promise`, or an error naming `what` and the daemon's log (`log()`) after `ms` without an answer. */
export function withTimeout<T>(promise: Promise<T>, what: string, ms: number, log: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms; daemon log:\n${log()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface DaemonProcess {
  child: ChildProcess;
  connection: ProtocolConnection;
}

/**
 * The real daemon (`.venv` Python) started in `workspace` and spoken to over stdio with the
 * JSON-RPC library vscode-languageclient uses, listening. The server requests and the
 * notifications the language client handles itself are answered or dropped here as it does;
 * `window/showMessage` and the daemon's own notifications are the caller's. stderr goes to
 * `onStderr`; initialize (see `initializeParams`) is the caller's too.
 */
export function spawnDaemon(workspace: string, onStderr: (text: string) => void): DaemonProcess {
  const child = spawn(VENV_PYTHON, [...DAEMON_ARGS], { cwd: workspace, stdio: ["pipe", "pipe", "pipe"] });
  child.stderr?.on("data", (chunk: Buffer) => onStderr(chunk.toString()));
  const connection = createProtocolConnection(
    new StreamMessageReader(child.stdout!),
    new StreamMessageWriter(child.stdin!),
  );
  connection.onRequest("window/workDoneProgress/create", () => null);
  connection.onRequest("client/registerCapability", () => null);
  connection.onNotification("$/progress", () => undefined);
  connection.onNotification("window/logMessage", () => undefined);
  connection.listen();
  return { child, connection };
}

/** The daemon settings the protocol tests run with: `bundle`, CPU, a short debounce, and a
 * feedback database beside the workspace copy (inside its temporary folder). */
export function testDaemonSettings(workspace: string, bundle: string | undefined): DaemonSettings {
  return {
    modelPath: bundle ?? null,
    device: "cpu",
    debounceMs: 100,
    extraIgnores: [],
    thresholds: {},
    feedbackDatabase: path.join(path.dirname(workspace), "feedback.sqlite3"),
  };
}

/** The initialize params the extension sends for one folder of the sample workspace. */
export function initializeParams(folderUri: string, settings: DaemonSettings): InitializeParams {
  return {
    processId: process.pid,
    rootUri: folderUri,
    workspaceFolders: [{ uri: folderUri, name: "sample-api" }],
    capabilities: { window: { workDoneProgress: true } },
    initializationOptions: settingsPayload(settings),
  };
}
