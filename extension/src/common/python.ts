/**
 * Which Python starts the daemon: the `treelens.python` setting (a Python with Treelens
 * installed, for developers), else Treelens' own environment (privateEnv.ts), which is
 * built with the Python extension's active interpreter or a Python on PATH. The Python
 * extension's API is hidden behind `PythonEnvironments` so tests pass fakes.
 */
import { errorMessage, logInfo, logWarn } from "./log";
import type { Problem } from "./problems";
import type { Disposable, Folder, VscodeApi } from "./vscodeapi";

export const PYTHON_EXTENSION_ID = "ms-python.python";
/** Pythons on PATH to build Treelens' environment with when the Python extension has none. */
export const PATH_PYTHONS: readonly string[][] =
  process.platform === "win32" ? [["py", "-3"], ["python"]] : [["python3"], ["python"]];
/** `-P` keeps the working folder off sys.path: nothing in the workspace is ever imported. */
export const DAEMON_ARGS = ["-P", "-m", "treelens.daemon"] as const;

/** `setting`: treelens.python; `private-env`: the environment Treelens built for itself. */
export type InterpreterSource = "setting" | "private-env";

export interface Interpreter {
  /** The executable and any arguments it needs before `-m treelens.daemon`. */
  command: string[];
  source: InterpreterSource;
}

/** What Treelens needs from the Python extension. */
export interface PythonEnvironments {
  /** The active environment's interpreter for a folder, or undefined when there is none. */
  activeInterpreter(folder?: Folder): Promise<string | undefined>;
  onDidChangeInterpreter(listener: () => unknown): Disposable;
}

/**
 * treelens.python when it is set (used as it is: the preflight says what it lacks), else
 * Treelens' own environment, which `privateEnv` finds or builds.
 */
export async function resolveInterpreter(
  pythonSetting: string,
  privateEnv: () => Promise<Interpreter | Problem>,
): Promise<Interpreter | Problem> {
  if (pythonSetting !== "") {
    return { command: [pythonSetting], source: "setting" };
  }
  return privateEnv();
}

/**
 * The Pythons to build Treelens' environment with, best first: the Python extension's
 * active interpreter for the folder (the one the person chose), then those on PATH.
 */
export async function basePythonCandidates(
  environments: PythonEnvironments | undefined,
  folder?: Folder,
): Promise<string[][]> {
  let active: string | undefined;
  try {
    active = await environments?.activeInterpreter(folder);
  } catch (error) {
    logWarn(`The Python extension did not give its active environment: ${errorMessage(error)}`);
  }
  return active ? [[active], ...PATH_PYTHONS] : [...PATH_PYTHONS];
}

/** The slice of the Python extension's exported API (`environments`) that Treelens reads. */
interface PythonExtensionApi {
  environments: {
    getActiveEnvironmentPath(resource?: { uri: unknown } | unknown): { path: string };
    resolveEnvironment(path: { path: string } | string): Promise<{ executable: { uri?: { fsPath: string } } } | undefined>;
    onDidChangeActiveEnvironmentPath(listener: () => unknown): Disposable;
  };
}

function isPythonExtensionApi(value: unknown): value is PythonExtensionApi {
  const environments = (value as Partial<PythonExtensionApi> | undefined)?.environments;
  return typeof environments?.getActiveEnvironmentPath === "function";
}

/** The Python extension's environments, or undefined when it is not installed. */
export async function pythonEnvironments(api: VscodeApi): Promise<PythonEnvironments | undefined> {
  let extensionApi: unknown;
  try {
    extensionApi = await api.extensionExports(PYTHON_EXTENSION_ID);
  } catch (error) {
    logWarn(`The Python extension failed to activate: ${errorMessage(error)}`);
    return undefined;
  }
  if (!isPythonExtensionApi(extensionApi)) {
    logInfo("The Python extension is not installed; Treelens builds its environment with a Python on PATH.");
    return undefined;
  }
  const { environments } = extensionApi;
  return {
    activeInterpreter: async () => {
      const resolved = await environments.resolveEnvironment(environments.getActiveEnvironmentPath());
      return resolved?.executable.uri?.fsPath;
    },
    onDidChangeInterpreter: (listener) => environments.onDidChangeActiveEnvironmentPath(listener),
  };
}
