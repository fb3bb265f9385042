/**
 * Treelens in VS Code: a thin client of the Python daemon (`<python> -m treelens.daemon`). This
 * file only wires the parts together; each part lives in its own module.
 */
import * as vscode from "vscode";
import * as path from "node:path";
import { createLauncher } from "./common/client";
import { DaemonSupervisor, type DaemonState } from "./common/daemon";
import { registerLogger } from "./common/log";
import { ensurePrivateEnv } from "./common/privateEnv";
import { basePythonCandidates, pythonEnvironments, resolveInterpreter, type PythonEnvironments } from "./common/python";
import { classifyChange, readSettings } from "./common/settings";
import { createVscodeApi, type Disposable, type VscodeApi } from "./common/vscodeapi";
import type { CommandContext } from "./commands/context";
import { sendFeedback } from "./commands/feedback";
import { COMMANDS, showMenu } from "./commands/menu";
import { suggestQuerySet } from "./commands/querySet";
import { showTokenization } from "./commands/tokenization";
import { FolderLabels } from "./labels";
import { ProblemNotifier } from "./notify";
import { SETTINGS_SECTION } from "./protocol";
import { StatusBar, statusView } from "./status";

let supervisor: DaemonSupervisor | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const api = createVscodeApi(vscode, context.globalState);

  // Logging: the extension's messages and the daemon's stderr share one channel.
  const channel = api.createLogChannel("Treelens");
  context.subscriptions.push(channel, registerLogger(channel));

  // Python: the treelens.python setting, else Treelens' own environment in the global storage,
  // built with the Python extension's interpreter (or a Python on PATH) when it is missing.
  let environments: PythonEnvironments | undefined;
  let environmentsReady: Promise<PythonEnvironments | undefined> | undefined;
  const pythonExtension = () => (environmentsReady ??= pythonEnvironments(api));
  const privateEnv = () =>
    ensurePrivateEnv({
      storage: context.globalStorageUri.fsPath,
      bundled: path.join(context.extensionPath, "extension", "bundled"),
      basePythons: async () => basePythonCandidates(await pythonExtension(), labels.activeFolder()),
      progress: (title, task) => api.withProgress(title, task),
    });

  // The daemon, the results it sends, and the status bar that shows them.
  const status = new StatusBar(api);
  const notifier = new ProblemNotifier(api, {
    openSettings: () => api.openSettings(SETTINGS_SECTION),
    selectInterpreter: () =>
      environments ? api.executeCommand("python.setInterpreter") : api.openSettings(`${SETTINGS_SECTION}.python`),
    showLog: () => channel.show(),
    restart: () => supervisor?.restart(),
  });
  const labels = new FolderLabels(api, (problem) => void notifier.show(problem));
  const render = () => {
    const folder = labels.activeFolder();
    status.render(statusView(daemon.state, folder, folder && labels.state(folder)));
  };
  const onDaemonState = (state: DaemonState) => {
    labels.attach(state.kind === "running" ? state.connection : undefined);
    if (state.kind === "running") {
      notifier.reset();
    } else if (state.kind === "failed") {
      void notifier.show(state.problem);
    } else if (state.kind === "restarting" && state.notice) {
      void notifier.show(state.notice);
    }
    render();
  };
  const daemon = new DaemonSupervisor({
    launcher: createLauncher(channel, () => labels.activeFolder()?.path),
    settings: () => readSettings(api),
    interpreter: () => resolveInterpreter(readSettings(api).python, privateEnv),
    schedule: (callback, ms) => {
      const timer = setTimeout(callback, ms);
      return { dispose: () => clearTimeout(timer) };
    },
    onState: onDaemonState,
  });
  supervisor = daemon;
  context.subscriptions.push(status, labels, daemon, labels.onDidChange(render));

  // Commands.
  const commandContext: CommandContext = { api, labels, daemonState: () => daemon.state };
  context.subscriptions.push(
    api.registerCommand(COMMANDS.suggestQuerySet, () => suggestQuerySet(commandContext)),
    api.registerCommand(COMMANDS.sendFeedback, () => sendFeedback(commandContext)),
    api.registerCommand(COMMANDS.showTokenization, () => showTokenization(commandContext)),
    api.registerCommand(COMMANDS.restart, () => daemon.restart()),
    api.registerCommand(COMMANDS.showLog, () => channel.show()),
    api.registerCommand(COMMANDS.showMenu, () => showMenu(api)),
  );

  // Triggers: the folder in view, settings, the interpreter.
  context.subscriptions.push(
    api.onDidChangeActiveEditor(() => labels.ensureActive()),
    api.onDidChangeWorkspaceFolders(() => labels.ensureActive()),
    api.onDidChangeConfiguration(async (change) => {
      const kind = classifyChange(change);
      if (kind === "restart") {
        await daemon.restart();
      } else if (kind === "daemon") {
        await daemon.updateSettings();
        const folder = labels.activeFolder();
        if (folder) {
          await labels.refresh(folder);
        }
      }
    }),
  );
  render();

  // Start at once: the Python extension (which may take a while to activate) is only
  // waited for when Treelens' environment has to be built.
  setImmediate(async () => {
    const started = daemon.restart();
    environments = await pythonExtension();
    if (environments) {
      context.subscriptions.push(onInterpreterChange(api, environments, daemon));
    }
    await started;
  });
}

/**
 * A new active environment can end a failure (no Python 3.11+ to build with): restart
 * then. A running daemon keeps its own environment, and treelens.python pins the interpreter.
 */
function onInterpreterChange(api: VscodeApi, environments: PythonEnvironments, daemon: DaemonSupervisor): Disposable {
  return environments.onDidChangeInterpreter(() => {
    if (readSettings(api).python === "" && daemon.state.kind === "failed") {
      void daemon.restart();
    }
  });
}

export async function deactivate(): Promise<void> {
  await supervisor?.stop();
  supervisor = undefined;
}
