/**
 * The one seam between Treelens and the `vscode` module. Every editor call the extension
 * makes goes through a `VscodeApi`; `createVscodeApi` builds the real one from the module
 * `extension.ts` imports, and unit tests pass plain-object fakes. Only types come from
 * `vscode` here, so the other modules load under plain Node.
 */
import type * as vscode from "vscode";

export interface Disposable {
  dispose(): void;
}

/** A workspace folder: `uri` is what the daemon gets as `folder`, `path` the local path. */
export interface Folder {
  uri: string;
  name: string;
  path: string;
}

export interface ConfigurationReader {
  get<T>(key: string): T | undefined;
}

export interface ConfigurationChange {
  affectsConfiguration(section: string): boolean;
}

export interface Pick<T = string> {
  label: string;
  description?: string;
  detail?: string;
  picked?: boolean;
  value: T;
}

export type Severity = "error" | "warning" | undefined;

/** The status bar item as Treelens drives it (tooltip is Markdown). */
export interface StatusItem extends Disposable {
  text: string;
  tooltip: string;
  severity: Severity;
  command: string | undefined;
  show(): void;
  hide(): void;
}

export interface WebviewView extends Disposable {
  readonly cspSource: string;
  setHtml(html: string): void;
  reveal(): void;
  onDidDispose(listener: () => void): Disposable;
}

export interface VscodeApi {
  createLogChannel(name: string): vscode.LogOutputChannel;
  getConfiguration(section: string, folder?: Folder): ConfigurationReader;
  onDidChangeConfiguration(listener: (change: ConfigurationChange) => unknown): Disposable;
  workspaceFolders(): Folder[];
  /** The workspace folder of the active editor's document, if it has one. */
  activeEditorFolder(): Folder | undefined;
  onDidChangeActiveEditor(listener: () => unknown): Disposable;
  onDidChangeWorkspaceFolders(listener: () => unknown): Disposable;
  registerCommand(id: string, callback: (...args: unknown[]) => unknown): Disposable;
  executeCommand<T = unknown>(id: string, ...args: unknown[]): Promise<T | undefined>;
  createStatusItem(id: string, name: string): StatusItem;
  showQuickPick<T>(items: Pick<T>[], options: { title: string; placeholder: string }): Promise<Pick<T> | undefined>;
  showMultiPick<T>(items: Pick<T>[], options: { title: string; placeholder: string }): Promise<Pick<T>[] | undefined>;
  showInputBox(options: { title: string; prompt: string; placeholder?: string }): Promise<string | undefined>;
  showInformationMessage(message: string, ...actions: string[]): Promise<string | undefined>;
  showWarningMessage(message: string, ...actions: string[]): Promise<string | undefined>;
  showErrorMessage(message: string, ...actions: string[]): Promise<string | undefined>;
  /** Opens an unsaved document with this content. */
  openUntitled(content: string, language: string): Promise<void>;
  openFile(path: string): Promise<void>;
  fileExists(path: string): Promise<boolean>;
  writeFile(path: string, content: string): Promise<void>;
  createWebview(id: string, title: string): WebviewView;
  /** The exports of an installed extension, activating it first; undefined when absent. */
  extensionExports(id: string): Promise<unknown>;
  openSettings(query: string): Promise<void>;
  /** A folder the person picks in a dialog, or undefined when cancelled. */
  pickFolder(title: string): Promise<string | undefined>;
  /** Values the extension remembers across sessions (the extension's global state). */
  getState<T>(key: string): T | undefined;
  setState(key: string, value: unknown): Promise<void>;
  /** Runs `task` with a progress notification titled `title`; `report` sets its message. */
  withProgress<T>(title: string, task: (report: (message: string) => void) => Promise<T>): Promise<T>;
}

export function createVscodeApi(code: typeof vscode, state: vscode.Memento): VscodeApi {
  const { window, workspace, commands } = code;
  const toFolder = (folder: vscode.WorkspaceFolder): Folder => ({
    uri: folder.uri.toString(),
    name: folder.name,
    path: folder.uri.fsPath,
  });
  const severityColor = (severity: Severity) =>
    severity ? new code.ThemeColor(`statusBarItem.${severity}Background`) : undefined;
  const quickPick = <T>(items: Pick<T>[], options: { title: string; placeholder: string }, many: boolean) =>
    window.showQuickPick(
      items.map((item) => ({ ...item })),
      { title: options.title, placeHolder: options.placeholder, canPickMany: many, ignoreFocusOut: true },
    );
  return {
    createLogChannel: (name) => window.createOutputChannel(name, { log: true }),
    getConfiguration: (section, folder) =>
      workspace.getConfiguration(section, folder ? code.Uri.parse(folder.uri) : undefined),
    onDidChangeConfiguration: (listener) => workspace.onDidChangeConfiguration(listener),
    workspaceFolders: () => (workspace.workspaceFolders ?? []).map(toFolder),
    activeEditorFolder: () => {
      const uri = window.activeTextEditor?.document.uri;
      const folder = uri ? workspace.getWorkspaceFolder(uri) : undefined;
      return folder ? toFolder(folder) : undefined;
    },
    onDidChangeActiveEditor: (listener) => window.onDidChangeActiveTextEditor(listener),
    onDidChangeWorkspaceFolders: (listener) => workspace.onDidChangeWorkspaceFolders(listener),
    registerCommand: (id, callback) => commands.registerCommand(id, callback),
    executeCommand: async (id, ...args) => commands.executeCommand(id, ...args),
    createStatusItem: (id, name) => {
      const item = window.createStatusBarItem(id, code.StatusBarAlignment.Left, 10);
      item.name = name;
      let severity: Severity;
      let tooltip = "";
      return {
        get text() {
          return item.text;
        },
        set text(value: string) {
          item.text = value;
        },
        get tooltip() {
          return tooltip;
        },
        set tooltip(value: string) {
          tooltip = value;
          const markdown = new code.MarkdownString(value, true);
          item.tooltip = markdown;
        },
        get severity() {
          return severity;
        },
        set severity(value: Severity) {
          severity = value;
          item.backgroundColor = severityColor(value);
        },
        get command() {
          return typeof item.command === "string" ? item.command : undefined;
        },
        set command(value: string | undefined) {
          item.command = value;
        },
        show: () => item.show(),
        hide: () => item.hide(),
        dispose: () => item.dispose(),
      };
    },
    showQuickPick: async (items, options) => (await quickPick(items, options, false)) as never,
    showMultiPick: async (items, options) => (await quickPick(items, options, true)) as never,
    showInputBox: async (options) =>
      window.showInputBox({
        title: options.title,
        prompt: options.prompt,
        placeHolder: options.placeholder,
        ignoreFocusOut: true,
      }),
    showInformationMessage: async (message, ...actions) => window.showInformationMessage(message, ...actions),
    showWarningMessage: async (message, ...actions) => window.showWarningMessage(message, ...actions),
    showErrorMessage: async (message, ...actions) => window.showErrorMessage(message, ...actions),
    openUntitled: async (content, language) => {
      const document = await workspace.openTextDocument({ content, language });
      await window.showTextDocument(document, { preview: false });
    },
    openFile: async (path) => {
      await window.showTextDocument(code.Uri.file(path), { preview: false });
    },
    fileExists: async (path) => {
      try {
        await workspace.fs.stat(code.Uri.file(path));
        return true;
      } catch {
        return false;
      }
    },
    writeFile: async (path, content) => {
      await workspace.fs.writeFile(code.Uri.file(path), new TextEncoder().encode(content));
    },
    createWebview: (id, title) => {
      const panel = window.createWebviewPanel(id, title, code.ViewColumn.Active, {
        enableScripts: false,
        localResourceRoots: [],
      });
      return {
        cspSource: panel.webview.cspSource,
        setHtml: (html) => {
          panel.webview.html = html;
        },
        reveal: () => panel.reveal(),
        onDidDispose: (listener) => panel.onDidDispose(listener),
        dispose: () => panel.dispose(),
      };
    },
    extensionExports: async (id) => {
      const extension = code.extensions.getExtension(id);
      if (!extension) {
        return undefined;
      }
      return extension.isActive ? extension.exports : await extension.activate();
    },
    openSettings: async (query) => {
      await commands.executeCommand("workbench.action.openSettings", query);
    },
    pickFolder: async (title) => {
      const picked = await window.showOpenDialog({
        title,
        canSelectFiles: false,
        canSelectFolders: true,
        canSelectMany: false,
        openLabel: "Choose",
      });
      return picked?.[0]?.fsPath;
    },
    getState: (key) => state.get(key),
    setState: async (key, value) => {
      await state.update(key, value);
    },
    withProgress: async (title, task) =>
      window.withProgress({ location: code.ProgressLocation.Notification, title }, (progress) =>
        task((message) => progress.report({ message })),
      ),
  };
}
