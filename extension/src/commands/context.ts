/**
 * What every command needs: the editor API, the folder results, and a way to reach the
 * daemon that tells the person why it cannot be reached.
 */
import type { DaemonConnection, DaemonState } from "../common/daemon";
import type { Folder, VscodeApi } from "../common/vscodeapi";
import type { FolderLabels } from "../labels";

export interface CommandContext {
  api: VscodeApi;
  labels: FolderLabels;
  daemonState(): DaemonState;
}

export interface Target {
  folder: Folder;
  daemon: DaemonConnection;
}

/** The active folder and the running daemon, or undefined after telling the person why not. */
export async function target(context: CommandContext): Promise<Target | undefined> {
  const { api, labels } = context;
  const folder = labels.activeFolder();
  if (!folder) {
    await api.showInformationMessage("Treelens works on a folder: open a folder first.");
    return undefined;
  }
  const state = context.daemonState();
  if (state.kind !== "running") {
    const why =
      state.kind === "failed"
        ? state.problem.message
        : state.kind === "disabled"
          ? 'Treelens is disabled; set "treelens.enable" to true.'
          : "The Treelens daemon is still starting; try again in a moment.";
    await api.showWarningMessage(why);
    return undefined;
  }
  return { folder, daemon: state.connection };
}
