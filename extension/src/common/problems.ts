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
  | "noModel"
  | "setupFailed";

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
      `Treelens is not installed in "${python}" (the "treelens.python" setting). Install it there ` +
      `("${python} -m pip install treelens-<version>.whl"), or clear the setting so that Treelens uses its own environment.`,
    actions: ["openSettings", "selectInterpreter"],
  };
}

/** A Treelens from before the import names became `treelens.*`: it has no `treelens.daemon`. */
export function noDaemonModule(python: string, version: string): Problem {
  return {
    kind: "notInstalled",
    short: "not installed",
    message:
      `The Treelens ${version} in "${python}" has no treelens.daemon module (it is older than this extension). ` +
      `Reinstall it there ("${python} -m pip install treelens-<version>.whl"), or clear "treelens.python" so that Treelens uses its own environment.`,
    actions: ["openSettings", "restart"],
  };
}

/** No Python 3.11+ to build Treelens' own environment with; `tried` says what each candidate was. */
export function noBasePython(tried: string[]): Problem {
  return {
    kind: "noPython",
    short: "no Python",
    message:
      `Treelens needs Python 3.11 or newer to set up its daemon and found none (${tried.join("; ")}). ` +
      `Install Python 3.11+ or select one in the Python extension, then run "Treelens: Restart Daemon".`,
    actions: ["selectInterpreter", "restart"],
  };
}

/** Treelens' own environment could not be built: `reason` says what happened and what to do. */
export function setupFailed(reason: string): Problem {
  return {
    kind: "setupFailed",
    short: "setup failed",
    message: `Treelens could not set up its Python environment: ${reason}`,
    actions: ["showLog", "restart"],
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
