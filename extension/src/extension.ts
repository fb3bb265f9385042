/**
 * Treelens in VS Code: a thin client of the Python daemon (`<python> -m treelens.daemon`). This
 * file only wires the parts together; each part lives in its own module.
 */
import * as vscode from "vscode";
import { createLauncher } from "./common/client";
import { DaemonSupervisor, type DaemonState } from "./common/daemon";
import { registerLogger } from "./common/log";
import { pythonEnvironments, resolveInterpreter, type PythonEnvironments } from "./common/python";
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

  // Python: the treelens.python setting, else the Python extension's environment.
  let environments: PythonEnvironments | undefined;

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
    interpreter: () => resolveInterpreter(readSettings(api).python, environments, labels.activeFolder()),
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

  // The Python extension may take a while to activate: start without waiting for it
  // when treelens.python says which Python to use.
  setImmediate(async () => {
    const explicit = readSettings(api).python !== "";
    const started = explicit ? daemon.restart() : Promise.resolve();
    environments = await pythonEnvironments(api);
    if (environments) {
      context.subscriptions.push(onInterpreterChange(api, environments, () => daemon.restart()));
    }
    await (explicit ? started : daemon.restart());
  });
}

/** Restarts on a new active environment, unless treelens.python pins the interpreter. */
function onInterpreterChange(
  api: VscodeApi,
  environments: PythonEnvironments,
  restart: () => Promise<void>,
): Disposable {
  return environments.onDidChangeInterpreter(() => {
    if (readSettings(api).python === "") {
      void restart();
    }
  });
}

export async function deactivate(): Promise<void> {
  await supervisor?.stop();
  supervisor = undefined;
}
