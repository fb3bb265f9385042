/**
 * Before starting the daemon, ask the interpreter whether it can run it: a missing
 * Python, an old one, or one without Treelens (or without its runtime packages) gets its
 * own actionable message instead of a language client that dies while starting.
 * The check is a short script that prints one JSON line (ruff-vscode's helper style).
 */
import { execFile } from "node:child_process";
import type { Problem } from "./problems";
import { missingPackages, noPython, notInstalled, oldPython, startFailed } from "./problems";

/**
 * Runs on any Python 3: reports the version, whether the treelens distribution is
 * installed, and which of its runtime requirements (from its own metadata) are missing.
 */
export const CHECK_SCRIPT = `
import json, re, sys
out = {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable, "treelens": None, "missing": []}
if sys.version_info >= (3, 8):
    import importlib.metadata as md
    try:
        out["treelens"] = md.version("treelens")
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
  missing: string[];
}

/** Runs the check with the interpreter; resolves to the report or to the problem found. */
export function checkPython(command: string[]): Promise<PythonReport | Problem> {
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
        resolve(judge(python, stdout));
      },
    );
  });
}

/** Turns the script's JSON line into the report, or the problem it shows. */
export function judge(python: string, stdout: string): PythonReport | Problem {
  let report: PythonReport;
  try {
    report = JSON.parse(stdout.trim().split("\n").pop() ?? "") as PythonReport;
  } catch {
    return startFailed(`"${python}" printed something unexpected in the start-up check: ${stdout.slice(0, 200)}`);
  }
  const [major, minor] = report.version.split(".").map(Number);
  if (major < 3 || (major === 3 && minor < 11)) {
    return oldPython(python, report.version);
  }
  if (report.treelens === null) {
    return notInstalled(python);
  }
  if (report.missing.length > 0) {
    return missingPackages(python, report.missing);
  }
  return report;
}

export function isProblem(value: PythonReport | Problem): value is Problem {
  return "kind" in value;
}
