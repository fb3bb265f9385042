/**
 * The latest classify result of every workspace folder, kept from `treelens/classify`
 * answers and `treelens/labelsChanged` notifications, and which folder the person is
 * looking at (the active editor's, else the first one).
 */
import type { DaemonConnection } from "./common/daemon";
import { errorMessage, logWarn } from "./common/log";
import type { Problem } from "./common/problems";
import { noModel } from "./common/problems";
import type { Disposable, Folder, VscodeApi } from "./common/vscodeapi";
import { CLASSIFY, ERROR_CODES, LABELS_CHANGED, type ClassifyParams, type ClassifyResult } from "./protocol";

export type FolderState =
  | { kind: "pending" }
  | { kind: "result"; result: ClassifyResult }
  | { kind: "error"; message: string; problem?: Problem };

/** Folder URIs as the editor and the daemon spell them may differ in escaping. */
export function folderKey(uri: string): string {
  let decoded = uri;
  try {
    decoded = decodeURIComponent(uri);
  } catch {
    // keep the URI as it is
  }
  return decoded.replace(/\/+$/, "");
}

/** The JSON-RPC error code of a failed request, when it has one. */
export function errorCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

export class FolderLabels implements Disposable {
  private readonly states = new Map<string, FolderState>();
  private readonly listeners = new Set<() => void>();
  private connection: DaemonConnection | undefined;
  private subscription: Disposable | undefined;

  constructor(
    private readonly api: VscodeApi,
    private readonly onProblem: (problem: Problem) => void,
  ) {}

  /** Follows the running daemon (undefined when none runs); results of the old one are dropped. */
  attach(connection: DaemonConnection | undefined): void {
    this.subscription?.dispose();
    this.subscription = undefined;
    this.connection = connection;
    this.states.clear();
    if (connection) {
      this.subscription = connection.onNotification<ClassifyResult>(LABELS_CHANGED, (result) =>
        this.set(result.folder, { kind: "result", result }),
      );
      const folder = this.activeFolder();
      if (folder) {
        void this.refresh(folder);
      }
    }
    this.changed();
  }

  get daemon(): DaemonConnection | undefined {
    return this.connection;
  }

  activeFolder(): Folder | undefined {
    return this.api.activeEditorFolder() ?? this.api.workspaceFolders()[0];
  }

  state(folder: Folder): FolderState | undefined {
    return this.states.get(folderKey(folder.uri));
  }

  latest(folder: Folder): ClassifyResult | undefined {
    const state = this.state(folder);
    return state?.kind === "result" ? state.result : undefined;
  }

  /** Classifies the active folder when nothing is known about it yet (editor switched). */
  ensureActive(): void {
    const folder = this.activeFolder();
    if (folder && this.connection && !this.state(folder)) {
      void this.refresh(folder);
    }
    this.changed();
  }

  /** Asks the daemon for the folder's labels; the answer (or error) becomes its state. */
  async refresh(folder: Folder): Promise<FolderState> {
    const connection = this.connection;
    if (!connection) {
      return { kind: "error", message: "The Treelens daemon is not running." };
    }
    if (!this.state(folder)) {
      this.set(folder.uri, { kind: "pending" });
    }
    let state: FolderState;
    try {
      const params: ClassifyParams = { folder: folder.uri };
      const result = await connection.request<ClassifyResult>(CLASSIFY, params);
      state = { kind: "result", result };
    } catch (error) {
      const message = errorMessage(error);
      logWarn(`Classifying ${folder.path} failed: ${message}`);
      const problem = errorCode(error) === ERROR_CODES.modelUnavailable ? noModel(message) : undefined;
      state = { kind: "error", message, problem };
      if (problem) {
        this.onProblem(problem);
      }
    }
    if (connection === this.connection) {
      this.set(folder.uri, state);
    }
    return state;
  }

  onDidChange(listener: () => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  dispose(): void {
    this.subscription?.dispose();
    this.listeners.clear();
  }

  private set(uri: string, state: FolderState): void {
    this.states.set(folderKey(uri), state);
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) {
      listener();
    }
  }
}
