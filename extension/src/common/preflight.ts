/**
 * Before starting the daemon, ask the interpreter whether it can run it: a missing
 * Python, an old one, or one without Treelens (or without its runtime packages) gets its
 * own actionable message instead of a language client that dies while starting.
 * The check is a short script that prints one JSON line (ruff-vscode's helper style).
 */
import { execFile } from "node:child_process";
import type { Problem } from "./problems";
import { missingPackages, noDaemonModule, noPython, notInstalled, oldPython, startFailed } from "./problems";

/** The oldest Python the daemon runs on (pyproject.toml's requires-python). */
export const MIN_PYTHON = [3, 11] as const;

/**
 * Runs on any Python 3: reports the version, whether the treelens distribution is
 * installed, whether it has the `treelens.daemon` module the extension starts, and which
 * of its runtime requirements (from its own metadata) are missing.
 */
export const CHECK_SCRIPT = `
import json, re, sys
out = {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable, "treelens": None, "daemon": False, "missing": []}
if sys.version_info >= (3, 8):
    import importlib.metadata as md, importlib.util
    try:
        out["treelens"] = md.version("treelens")
        try:
            out["daemon"] = importlib.util.find_spec("treelens.daemon") is not None
        except ImportError:
            pass
        for req in md.requires("treelens") or []:
            if "extra ==" in req:
                continue
            name = re.match(r"[A-Za-z0-9._-]+", req).group(0)
            try:
                md.distribution(name)
            except md.PackageNotFoundError:
                out["missing"].append(name)
    except md.PackageNotFoundError:
        pass
print(json.dumps(out))
`;

export const CHECK_TIMEOUT_MS = 30_000;

export interface PythonReport {
  version: string;
  executable: string;
  treelens: string | null;
  /** Whether `treelens.daemon` can be imported (a Treelens from before the rename has none). */
  daemon: boolean;
  missing: string[];
}

/** Runs the check with the interpreter; resolves to the report or to the problem found. */
export async function checkPython(command: string[]): Promise<PythonReport | Problem> {
  const report = await inspectPython(command);
  return isProblem(report) ? report : judge(command[0], report);
}

/**
 * Runs the check script and returns what it printed, Treelens installed or not: a Python
 * that does not run or prints no report is a problem.
 */
export function inspectPython(command: string[]): Promise<PythonReport | Problem> {
  const [python, ...args] = command;
  return new Promise((resolve) => {
    execFile(
      python,
      [...args, "-c", CHECK_SCRIPT],
      // -P would keep the working folder off sys.path but is Python 3.11+; this folder holds no .py
      { timeout: CHECK_TIMEOUT_MS, windowsHide: true, cwd: __dirname },
      (error, stdout, stderr) => {
        if (error && typeof error.code === "string") {
          resolve(noPython(python, error.code === "ENOENT" ? "not found" : error.code));
          return;
        }
        if (error) {
          const detail = stderr.trim().split("\n").pop() || error.message;
          resolve(startFailed(`"${python}" failed the start-up check: ${detail}`));
          return;
        }
        resolve(parseReport(python, stdout));
      },
    );
  });
}

/** The script's JSON line (the last line: a sitecustomize may print before it). */
export function parseReport(python: string, stdout: string): PythonReport | Problem {
  try {
    return JSON.parse(stdout.trim().split("\n").pop() ?? "") as PythonReport;
  } catch {
    return startFailed(`"${python}" printed something unexpected in the start-up check: ${stdout.slice(0, 200)}`);
  }
}

/** Whether a Python of this version (`3.11.4`) can run the daemon. */
export function isRecentEnough(version: string): boolean {
  const [major, minor] = version.split(".").map(Number);
  return major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
}

/** The report, or the problem it shows: an old Python, no Treelens, a Treelens without its packages. */
export function judge(python: string, report: PythonReport | string): PythonReport | Problem {
  const parsed = typeof report === "string" ? parseReport(python, report) : report;
  if (isProblem(parsed)) {
    return parsed;
  }
  if (!isRecentEnough(parsed.version)) {
    return oldPython(python, parsed.version);
  }
  if (parsed.treelens === null) {
    return notInstalled(python);
  }
  if (!parsed.daemon) {
    return noDaemonModule(python, parsed.treelens);
  }
  if (parsed.missing.length > 0) {
    return missingPackages(python, parsed.missing);
  }
  return parsed;
}

export function isProblem<T extends object>(value: T | Problem): value is Problem {
  return "kind" in value && "actions" in value;
}
