/**
 * What the daemon says the extension must mirror: `python -m treelens.daemon
 * --describe-protocol` run with the project's `.venv` Python, as the protocol tests start
 * the daemon. The unit tests compare `src/protocol.ts`, the settings reader and
 * package.json's `contributes.configuration` with it, instead of reading Python source.
 */
import { execFileSync } from "node:child_process";
import { DAEMON_ARGS } from "../src/common/python";
import { REPO_ROOT, VENV_PYTHON } from "./support";

/** One settings key: a JSON schema (type, enum, limits, items) and the client's default. */
export type SettingSchema = Record<string, unknown> & { default: unknown };

export interface DaemonDescription {
  requests: string[];
  notifications: string[];
  errorCodes: Record<string, number>;
  engines: string[];
  settings: {
    section: string;
    /** By key; a null default means "the daemon's own default". */
    properties: Record<string, SettingSchema>;
  };
}

let cached: DaemonDescription | undefined;

/** The daemon's description (run once per test process). */
export function describeDaemon(): DaemonDescription {
  if (!cached) {
    let output: string;
    try {
      output = execFileSync(VENV_PYTHON, [...DAEMON_ARGS, "--describe-protocol"], {
        cwd: REPO_ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (error) {
      throw new Error(
        `${VENV_PYTHON} -m treelens.daemon --describe-protocol failed (run \`make setup-dev\` for .venv): ${error}`,
      );
    }
    cached = JSON.parse(output) as DaemonDescription;
  }
  return cached;
}
