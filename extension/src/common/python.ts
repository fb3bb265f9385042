/**
 * Which Python starts the daemon: the `treelens.python` setting, else the Python
 * extension's active environment (when that extension is installed), else `python3`.
 * The Python extension's API is hidden behind `PythonEnvironments` so tests pass fakes.
 */
import { errorMessage, logInfo, logWarn } from "./log";
import type { Disposable, Folder, VscodeApi } from "./vscodeapi";

export const PYTHON_EXTENSION_ID = "ms-python.python";
export const FALLBACK_PYTHON = "python3";
/** `-P` keeps the working folder off sys.path: nothing in the workspace is ever imported. */
export const DAEMON_ARGS = ["-P", "-m", "treelens.daemon"] as const;

export type InterpreterSource = "setting" | "python-extension" | "fallback";

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

export async function resolveInterpreter(
  pythonSetting: string,
  environments: PythonEnvironments | undefined,
  folder?: Folder,
): Promise<Interpreter> {
  if (pythonSetting !== "") {
    return { command: [pythonSetting], source: "setting" };
  }
  if (environments) {
    try {
      const active = await environments.activeInterpreter(folder);
      if (active) {
        return { command: [active], source: "python-extension" };
      }
    } catch (error) {
      logWarn(`The Python extension did not give its active environment: ${errorMessage(error)}`);
    }
  }
  return { command: [FALLBACK_PYTHON], source: "fallback" };
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
    logInfo("The Python extension is not installed; Treelens uses treelens.python or python3.");
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
