/**
 * Treelens' own Python environment: a virtual environment in the extension's global
 * storage, created with a Python 3.11+ found on the machine and filled with the Treelens
 * wheel the .vsix carries (its requirements come from the package index, through the
 * person's own pip settings). Nothing is installed into the person's environments.
 *
 * There is one environment per wheel, named after its version and SHA-256: a new .vsix
 * (a new wheel) builds a new environment, and the old ones go once it works. A build
 * happens in a `.partial-` folder renamed into place when it passed the start-up check,
 * so a half-built environment is never used, and two windows building at once do no harm.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { errorMessage, logInfo, logWarn } from "./log";
import { checkPython, inspectPython, isProblem, isRecentEnough, type PythonReport } from "./preflight";
import { noBasePython, setupFailed, type Problem, type ProblemKind } from "./problems";
import type { Interpreter } from "./python";

/** The folder of environments inside the extension's global storage. */
export const ENVS_FOLDER = "python-envs";
const PARTIAL = ".partial-";
/** A `.partial-` folder this old is a build that died (a closed window), not one under way. */
const ABANDONED_BUILD_MS = 60 * 60_000;
export const VENV_TIMEOUT_MS = 3 * 60_000;
export const PIP_TIMEOUT_MS = 15 * 60_000;
export const PROGRESS_TITLE = "Treelens: setting up its Python environment";
const RESTART = 'then run "Treelens: Restart Daemon"';
/** What the check of an existing environment can find that only building it again mends. */
const REBUILT_ON = new Set<ProblemKind>(["noPython", "oldPython", "notInstalled", "missingPackages"]);

/** The wheel the .vsix carries, and the environment folder name that belongs to it. */
export interface BundledWheel {
  path: string;
  /** `treelens-<version>-<first 16 hex digits of its SHA-256>`. */
  envName: string;
}

export type ReportProgress = (message: string) => void;

export interface PrivateEnvOptions {
  /** The extension's global storage folder. */
  storage: string;
  /** The folder holding the wheel the .vsix carries (extension/bundled). */
  bundled: string;
  /** Pythons to build with, best first (python.ts basePythonCandidates). */
  basePythons(): Promise<string[][]>;
  /** Runs the build under a progress notification. */
  progress<T>(title: string, task: (report: ReportProgress) => Promise<T>): Promise<T>;
  /** Environment variables for venv and pip on top of the extension host's (tests point pip at a local index). */
  env?: NodeJS.ProcessEnv;
}

/** How the daemon's Python is run from an environment folder: isolated from PYTHONPATH and user site-packages. */
export function envCommand(envDir: string, platform: NodeJS.Platform = process.platform): string[] {
  const python = platform === "win32" ? path.join(envDir, "Scripts", "python.exe") : path.join(envDir, "bin", "python");
  return [python, "-I"];
}

/**
 * The environment for the bundled wheel, built first when there is none (or the one there
 * lost its Python or packages, e.g. its base Python was uninstalled); a problem that says
 * what to do when it cannot be built.
 */
export async function ensurePrivateEnv(options: PrivateEnvOptions): Promise<Interpreter | Problem> {
  const wheel = await bundledWheel(options.bundled);
  if (isProblem(wheel)) {
    return wheel;
  }
  const envs = path.join(options.storage, ENVS_FOLDER);
  const envDir = path.join(envs, wheel.envName);
  if (await exists(envDir)) {
    const report = await checkPython(envCommand(envDir));
    if (!isProblem(report)) {
      return { command: envCommand(envDir), source: "private-env" };
    }
    if (!REBUILT_ON.has(report.kind)) {
      return report; // it runs but failed (a timeout on a busy machine, say): a restart tries again
    }
    logWarn(`Treelens' environment ${envDir} fails the start-up check (${report.message}); building it again.`);
    await rm(envDir, { recursive: true, force: true });
  }
  logInfo(`Building Treelens' environment ${envDir} from ${wheel.path}.`);
  const built = await options.progress(PROGRESS_TITLE, (report) => build(options, wheel, envDir, report));
  if (isProblem(built)) {
    logWarn(built.message);
    return built;
  }
  await removeOtherEnvs(envs, wheel.envName);
  return { command: envCommand(envDir), source: "private-env" };
}

/** The one `treelens-*.whl` in `folder` (the newest name if a stale one was left beside it). */
export async function bundledWheel(folder: string): Promise<BundledWheel | Problem> {
  const wheels = (await readdir(folder).catch(() => [] as string[]))
    .filter((name) => /^treelens-[^-]+-.+\.whl$/.test(name))
    .sort();
  const name = wheels.at(-1);
  if (!name) {
    return {
      ...setupFailed(
        `this copy of the extension carries no Treelens wheel (${folder} has no treelens-*.whl; "npm run package" ` +
          `puts it there). Set "treelens.python" to a Python where Treelens is installed, or install the .vsix.`,
      ),
      actions: ["openSettings", "showLog"],
    };
  }
  const file = path.join(folder, name);
  const version = name.split("-")[1];
  return { path: file, envName: `treelens-${version}-${(await sha256(file)).slice(0, 16)}` };
}

/** Creates the environment in a `.partial-` folder, installs the wheel, checks it, renames it into place. */
async function build(
  options: PrivateEnvOptions,
  wheel: BundledWheel,
  envDir: string,
  report: ReportProgress,
): Promise<PythonReport | Problem> {
  report("looking for Python 3.11 or newer");
  const base = await findBasePython(await options.basePythons());
  if (isProblem(base)) {
    return base;
  }
  const partial = `${envDir}${PARTIAL}${randomBytes(4).toString("hex")}`;
  try {
    await mkdir(path.dirname(envDir), { recursive: true });
    report(`creating a virtual environment with Python ${base.version}`);
    const venv = await runTool([...base.command, "-m", "venv", partial], VENV_TIMEOUT_MS, options.env);
    if (venv.code !== 0) {
      return setupFailure("venv", venv.output, { python: base.command.join(" "), version: base.version, storage: options.storage });
    }
    report("installing Treelens and its packages from the package index");
    const [python] = envCommand(partial);
    const pip = await runTool(
      [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off", wheel.path],
      PIP_TIMEOUT_MS,
      options.env,
      (line) => {
        const collecting = /^Collecting (\S+)/.exec(line);
        if (collecting) {
          report(`installing ${collecting[1]}`);
        }
      },
    );
    if (pip.code !== 0) {
      return setupFailure("pip", pip.output, { python: base.command.join(" "), version: base.version, storage: options.storage });
    }
    report("checking the new environment");
    const check = await checkPython(envCommand(partial));
    if (isProblem(check)) {
      return setupFailed(`the new environment fails the start-up check: ${check.message}`);
    }
    await moveIntoPlace(partial, envDir);
    return check;
  } catch (error) {
    return setupFailure("files", errorMessage(error), { python: base.command.join(" "), version: base.version, storage: options.storage });
  } finally {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Renames the built environment into place; another window that got there first wins. */
async function moveIntoPlace(partial: string, envDir: string): Promise<void> {
  try {
    await rename(partial, envDir);
  } catch (error) {
    if (!(await exists(envDir))) {
      throw error;
    }
    logInfo(`${envDir} was built meanwhile (another window); using that one.`);
  }
}

/** The first candidate that runs and is Python 3.11+, or a problem naming what each one was. */
export async function findBasePython(
  candidates: string[][],
  inspect: (command: string[]) => Promise<PythonReport | Problem> = inspectPython,
): Promise<{ command: string[]; version: string } | Problem> {
  const tried: string[] = [];
  for (const command of candidates) {
    const report = await inspect(command);
    const name = command.join(" ");
    if (isProblem(report)) {
      tried.push(`${name}: ${report.kind === "noPython" ? "not found" : "does not run"}`);
    } else if (!isRecentEnough(report.version)) {
      tried.push(`${name}: Python ${report.version}`);
    } else {
      logInfo(`Building Treelens' environment with ${name} (Python ${report.version} at ${report.executable}).`);
      return { command, version: report.version };
    }
  }
  return noBasePython(tried);
}

const DISK_FULL = /No space left on device|ENOSPC|Errno 28\]|Disk quota exceeded|EDQUOT/i;
/** pip's words for an index it cannot reach (it retries, logging each), up to the end of the reason. */
const NETWORK =
  /(?:Failed to establish a new connection|Temporary failure in name resolution|Name or service not known|getaddrinfo failed|Network is unreachable|No route to host|Connection (?:refused|reset|aborted)|Read timed out|ConnectTimeout|ProxyError|SSLError|CERTIFICATE_VERIFY_FAILED|Could not fetch URL)[^'")\n]*/i;
const NO_DISTRIBUTION = /No matching distribution found for ([^\s;]+)/;
const NO_ENSUREPIP = /ensurepip is not available|No module named ensurepip|python3(?:\.\d+)?-venv/i;

/** What failed, in one line that says what to do: disk full, no network, no package, no ensurepip, else pip's own error. */
export function setupFailure(
  step: "venv" | "pip" | "files",
  output: string,
  context: { python: string; version: string; storage: string },
): Problem {
  const line = tellingLine(output);
  if (DISK_FULL.test(output)) {
    return setupFailed(`the disk is full (${context.storage}). Free some space, ${RESTART}.`);
  }
  const network = NETWORK.exec(output);
  if (step === "pip" && network) {
    return setupFailed(
      `pip could not download Treelens' packages from the package index (${network[0].trim()}). ` +
        `Check the network connection and pip's proxy and index settings, ${RESTART}.`,
    );
  }
  const missing = NO_DISTRIBUTION.exec(output);
  if (step === "pip" && missing) {
    return setupFailed(
      `the package index has no ${missing[1]} for Python ${context.version} on this machine (${line}). ` +
        `Check pip's index settings, or select another Python 3.11+ in the Python extension, ${RESTART}.`,
    );
  }
  if (step === "venv" && NO_ENSUREPIP.test(output)) {
    return setupFailed(
      `"${context.python}" (Python ${context.version}) cannot create virtual environments: ensurepip is missing ` +
        `(on Debian and Ubuntu: apt install python3-venv). Install it or select another Python 3.11+, ${RESTART}.`,
    );
  }
  const what = step === "venv" ? `"${context.python} -m venv"` : step === "pip" ? "pip install" : "writing the environment";
  return setupFailed(`${what} failed (${line}). The Treelens output has the whole log; ${RESTART} to try again.`);
}

/** The line that says most: pip's first `ERROR:` line, else the last non-empty one (at most 300 characters). */
function tellingLine(output: string): string {
  const lines = output.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
  const line = lines.find((candidate) => candidate.startsWith("ERROR:")) ?? lines.at(-1) ?? "no output";
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** Removes environments of other wheels (older .vsix versions) and builds abandoned long ago. */
async function removeOtherEnvs(envs: string, keep: string): Promise<void> {
  for (const name of await readdir(envs).catch(() => [] as string[])) {
    if (name === keep) {
      continue;
    }
    const folder = path.join(envs, name);
    if (name.includes(PARTIAL)) {
      const info = await stat(folder).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs < ABANDONED_BUILD_MS) {
        continue; // another window is building right now
      }
    }
    logInfo(`Removing Treelens' old environment ${folder}.`);
    await rm(folder, { recursive: true, force: true }).catch((error: unknown) =>
      logWarn(`Could not remove ${folder}: ${errorMessage(error)}`),
    );
  }
}

interface ToolResult {
  code: number;
  /** stdout and stderr together, the last 64 KiB. */
  output: string;
}

const OUTPUT_KEPT = 64 * 1024;
/** Variables that would send pip or the new environment somewhere else than the environment. */
const UNSET = ["PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_REQUIRE_VIRTUALENV"];

/** Runs a command, logs its output line by line, and gives up after `timeoutMs`. */
function runTool(
  command: string[],
  timeoutMs: number,
  extraEnv: NodeJS.ProcessEnv | undefined,
  onLine?: (line: string) => void,
): Promise<ToolResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, PYTHONUNBUFFERED: "1" };
  for (const name of UNSET) {
    delete env[name];
  }
  logInfo(`Running ${command.join(" ")}`);
  return new Promise((resolve) => {
    let output = "";
    let pending = "";
    const child = spawn(command[0], command.slice(1), { env, windowsHide: true, stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => {
      output += `\nERROR: gave up after ${timeoutMs / 60_000} minutes without an end`;
      child.kill("SIGKILL");
    }, timeoutMs);
    const take = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output = (output + text).slice(-OUTPUT_KEPT);
      const lines = (pending + text).split(/\r?\n/);
      pending = lines.pop() ?? "";
      for (const line of lines.filter((candidate) => candidate.trim() !== "")) {
        logInfo(`  ${line}`);
        onLine?.(line);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: -1, output: `${output}\nERROR: ${error.message}` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(file)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}
