/**
 * Why the daemon is not answering, in words a person can act on. Each problem has a short
 * status-bar text, one message that says what happened and what to do, and the actions
 * the notification offers.
 */

export type ProblemKind =
  | "noPython"
  | "oldPython"
  | "notInstalled"
  | "missingPackages"
  | "startFailed"
  | "crashed"
  | "unresponsive"
  | "noModel";

export type ProblemAction = "openSettings" | "selectInterpreter" | "showLog" | "restart";

export interface Problem {
  kind: ProblemKind;
  /** A few words for the status bar. */
  short: string;
  /** The whole message: what happened, then what to do. */
  message: string;
  actions: ProblemAction[];
  /** "warning" for news that needs no fix (Treelens already acted); an error otherwise. */
  severity?: "warning";
}

export const ACTION_TITLES: Record<ProblemAction, string> = {
  openSettings: "Open Settings",
  selectInterpreter: "Select Interpreter",
  showLog: "Show Log",
  restart: "Restart Daemon",
};

const SET_PYTHON = 'Set "treelens.python" to a Python where Treelens is installed';

export function noPython(python: string, reason: string): Problem {
  return {
    kind: "noPython",
    short: "no Python",
    message: `Treelens could not run Python "${python}" (${reason}). ${SET_PYTHON}, or select one in the Python extension.`,
    actions: ["openSettings", "selectInterpreter"],
  };
}

export function oldPython(python: string, version: string): Problem {
  return {
    kind: "oldPython",
    short: "Python too old",
    message: `Treelens needs Python 3.11 or newer, and "${python}" is Python ${version}. ${SET_PYTHON}.`,
    actions: ["openSettings", "selectInterpreter"],
  };
}

export function notInstalled(python: string): Problem {
  return {
    kind: "notInstalled",
    short: "not installed",
    message:
      `Treelens is not installed in "${python}". Install it there ("${python} -m pip install <path to treelens>") ` +
      `or ${SET_PYTHON.charAt(0).toLowerCase()}${SET_PYTHON.slice(1)}.`,
    actions: ["openSettings", "selectInterpreter"],
  };
}

export function missingPackages(python: string, packages: string[]): Problem {
  return {
    kind: "missingPackages",
    short: "missing packages",
    message:
      `Treelens in "${python}" is missing ${packages.join(", ")}. Reinstall it there ` +
      `("${python} -m pip install <path to treelens>"), then run "Treelens: Restart Daemon".`,
    actions: ["showLog", "restart"],
  };
}

export function startFailed(reason: string): Problem {
  return {
    kind: "startFailed",
    short: "daemon failed",
    message: `The Treelens daemon did not start: ${reason}. Its log is in the Treelens output; fix the problem, then run "Treelens: Restart Daemon".`,
    actions: ["showLog", "restart"],
  };
}

export function crashed(times: number): Problem {
  return {
    kind: "crashed",
    short: "daemon stopped",
    message: `The Treelens daemon stopped ${times} times in a row and is no longer restarted. Its log is in the Treelens output; fix the problem, then run "Treelens: Restart Daemon".`,
    actions: ["showLog", "restart"],
  };
}

/** Told once per run of failures: a deaf daemon was restarted; the person need not act. */
export function unresponsiveRestarted(seconds: number): Problem {
  return {
    kind: "unresponsive",
    short: "daemon not answering",
    message: `The Treelens daemon did not answer for ${seconds} s, so Treelens restarted it. If this happens again, its log in the Treelens output may say why.`,
    actions: ["showLog"],
    severity: "warning",
  };
}

export function unresponsive(times: number): Problem {
  return {
    kind: "unresponsive",
    short: "daemon not answering",
    message: `The Treelens daemon stopped answering ${times} times in a row and is no longer restarted. Its log is in the Treelens output; fix the problem, then run "Treelens: Restart Daemon".`,
    actions: ["showLog", "restart"],
  };
}

/** The daemon answered but has no usable model; its message names the bundle and the fix. */
export function noModel(daemonMessage: string): Problem {
  return {
    kind: "noModel",
    short: "no model",
    message: `Treelens has no usable model: ${daemonMessage} (setting "treelens.modelPath")`,
    actions: ["openSettings", "showLog"],
  };
}
