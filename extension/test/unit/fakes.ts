/**
 * A plain-object VscodeApi for unit tests. Configuration defaults come from package.json
 * (as VS Code applies them); dialogs answer from scripted queues and record what they
 * were shown.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import type { DaemonConnection } from "../../src/common/daemon";
import type { ConfigurationChange, Disposable, Folder, Pick, StatusItem, VscodeApi, WebviewView } from "../../src/common/vscodeapi";

export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..", "..");

interface ConfigurationProperty {
  default: unknown;
}

export function packageJson(): {
  contributes: { configuration: { properties: Record<string, ConfigurationProperty> }; commands: { command: string }[] };
} {
  return JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
}

export function folder(name: string): Folder {
  return { uri: `file:///work/${name}`, name, path: `/work/${name}` };
}

type Listener = (...args: never[]) => unknown;

class Emitter<L extends Listener> {
  readonly listeners = new Set<L>();
  add(listener: L): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }
}

export interface Shown {
  kind: "info" | "warning" | "error" | "quickPick" | "multiPick" | "input";
  text: string;
  items?: Pick<unknown>[];
}

export class FakeStatusItem implements StatusItem {
  text = "";
  tooltip = "";
  severity: StatusItem["severity"];
  command: string | undefined;
  visible = false;
  show(): void {
    this.visible = true;
  }
  hide(): void {
    this.visible = false;
  }
  dispose(): void {}
}

export class FakeApi implements VscodeApi {
  settings: Record<string, unknown> = {};
  folders: Folder[] = [folder("app")];
  activeFolder: Folder | undefined;
  readonly shown: Shown[] = [];
  /** Answers for the next dialogs, in order: a label (or labels), a string, or undefined. */
  readonly answers: unknown[] = [];
  readonly untitled: { content: string; language: string }[] = [];
  readonly files = new Map<string, string>();
  readonly opened: string[] = [];
  readonly executed: string[] = [];
  readonly webviews: { title: string; html: string }[] = [];
  readonly statusItems: FakeStatusItem[] = [];
  exports: Record<string, unknown> = {};
  readonly configurationListeners = new Emitter<(change: ConfigurationChange) => unknown>();
  readonly editorListeners = new Emitter<() => unknown>();

  createLogChannel(): never {
    throw new Error("unit tests log nowhere");
  }
  getConfiguration(section: string) {
    const defaults = packageJson().contributes.configuration.properties;
    return {
      get: <T>(key: string): T | undefined => {
        const name = `${section}.${key}`;
        return (name in this.settings ? this.settings[name] : defaults[name]?.default) as T | undefined;
      },
    };
  }
  onDidChangeConfiguration(listener: (change: ConfigurationChange) => unknown): Disposable {
    return this.configurationListeners.add(listener);
  }
  workspaceFolders(): Folder[] {
    return this.folders;
  }
  activeEditorFolder(): Folder | undefined {
    return this.activeFolder;
  }
  onDidChangeActiveEditor(listener: () => unknown): Disposable {
    return this.editorListeners.add(listener);
  }
  onDidChangeWorkspaceFolders(): Disposable {
    return { dispose: () => undefined };
  }
  registerCommand(): Disposable {
    return { dispose: () => undefined };
  }
  async executeCommand<T>(id: string): Promise<T | undefined> {
    this.executed.push(id);
    return undefined;
  }
  createStatusItem(): StatusItem {
    const item = new FakeStatusItem();
    this.statusItems.push(item);
    return item;
  }
  async showQuickPick<T>(items: Pick<T>[], options: { title: string }): Promise<Pick<T> | undefined> {
    this.shown.push({ kind: "quickPick", text: options.title, items });
    const answer = this.answers.shift();
    return items.find((item) => item.label === answer || item.value === answer);
  }
  async showMultiPick<T>(items: Pick<T>[], options: { title: string }): Promise<Pick<T>[] | undefined> {
    this.shown.push({ kind: "multiPick", text: options.title, items });
    const answer = this.answers.shift();
    if (answer === "accept") {
      return items.filter((item) => item.picked);
    }
    return Array.isArray(answer) ? items.filter((item) => answer.includes(item.label)) : undefined;
  }
  async showInputBox(options: { title: string }): Promise<string | undefined> {
    this.shown.push({ kind: "input", text: options.title });
    return this.answers.shift() as string | undefined;
  }
  async showInformationMessage(message: string): Promise<string | undefined> {
    this.shown.push({ kind: "info", text: message });
    return this.answers.shift() as string | undefined;
  }
  async showWarningMessage(message: string): Promise<string | undefined> {
    this.shown.push({ kind: "warning", text: message });
    return this.answers.shift() as string | undefined;
  }
  async showErrorMessage(message: string): Promise<string | undefined> {
    this.shown.push({ kind: "error", text: message });
    return this.answers.shift() as string | undefined;
  }
  async openUntitled(content: string, language: string): Promise<void> {
    this.untitled.push({ content, language });
  }
  async openFile(file: string): Promise<void> {
    this.opened.push(file);
  }
  async fileExists(file: string): Promise<boolean> {
    return this.files.has(file);
  }
  async writeFile(file: string, content: string): Promise<void> {
    this.files.set(file, content);
  }
  createWebview(_id: string, title: string): WebviewView {
    const view = { title, html: "" };
    this.webviews.push(view);
    return {
      cspSource: "vscode-webview://fake",
      setHtml: (html) => {
        view.html = html;
      },
      reveal: () => undefined,
      onDidDispose: () => ({ dispose: () => undefined }),
      dispose: () => undefined,
    };
  }
  async extensionExports(id: string): Promise<unknown> {
    return this.exports[id];
  }
  async openSettings(query: string): Promise<void> {
    this.executed.push(`openSettings:${query}`);
  }
  readonly state = new Map<string, unknown>();
  readonly folderDialogs: string[] = [];
  async pickFolder(title: string): Promise<string | undefined> {
    this.folderDialogs.push(title);
    return this.answers.shift() as string | undefined;
  }
  getState<T>(key: string): T | undefined {
    return this.state.get(key) as T | undefined;
  }
  async setState(key: string, value: unknown): Promise<void> {
    this.state.set(key, value);
  }
  readonly progress: string[] = [];
  async withProgress<T>(title: string, task: (report: (message: string) => void) => Promise<T>): Promise<T> {
    this.progress.push(title);
    return task((message) => this.progress.push(`  ${message}`));
  }

  messages(kind: Shown["kind"]): string[] {
    return this.shown.filter((entry) => entry.kind === kind).map((entry) => entry.text);
  }
}

/** A daemon connection that answers from handlers and records requests. */
export class FakeConnection implements DaemonConnection {
  readonly requests: { method: string; params: object }[] = [];
  readonly settingsSent: unknown[] = [];
  readonly notificationHandlers = new Map<string, (params: unknown) => void>();

  constructor(private readonly handlers: Record<string, (params: never) => unknown>) {}

  async request<R>(method: string, params: object): Promise<R> {
    this.requests.push({ method, params });
    const handler = this.handlers[method];
    if (!handler) {
      throw new Error(`no handler for ${method}`);
    }
    return (await handler(params as never)) as R;
  }
  onNotification<P>(method: string, handler: (params: P) => void): Disposable {
    this.notificationHandlers.set(method, handler as (params: unknown) => void);
    return { dispose: () => this.notificationHandlers.delete(method) };
  }
  async sendSettings(settings: unknown): Promise<void> {
    this.settingsSent.push(settings);
  }
  notify(method: string, params: unknown): void {
    this.notificationHandlers.get(method)?.(params);
  }
}

/** An error shaped like vscode-jsonrpc's ResponseError. */
export class ResponseError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
