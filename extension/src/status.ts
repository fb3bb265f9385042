/**
 * The one status bar item: the active folder's labels (`$(shield) backend · has_api`), a
 * spinner until the first result, the daemon's problem when it has one, and a tooltip
 * with every label's probability and what the model saw. `statusView` decides, the
 * `StatusBar` only renders.
 */
import { COMMANDS } from "./commands/menu";
import type { DaemonState } from "./common/daemon";
import type { Disposable, Folder, Severity, StatusItem, VscodeApi } from "./common/vscodeapi";
import type { FolderState } from "./labels";
import type { ClassifyResult } from "./protocol";

export const STATUS_ID = "treelens.status";
const ICON = "$(shield)";
const SPINNER = "$(sync~spin)";
const CLICK_HINT = "Click for Treelens commands.";

export interface StatusView {
  visible: boolean;
  text: string;
  tooltip: string;
  severity: Severity;
}

export function statusView(daemon: DaemonState, folder: Folder | undefined, state: FolderState | undefined): StatusView {
  const view = (text: string, tooltip: string, severity?: Severity): StatusView => ({
    visible: true,
    text,
    tooltip: `${tooltip}\n\n${CLICK_HINT}`,
    severity,
  });
  switch (daemon.kind) {
    case "disabled":
      return { visible: false, text: `${ICON} Treelens off`, tooltip: "", severity: undefined };
    case "starting":
      return view(`${SPINNER} Treelens`, "Starting the Treelens daemon…");
    case "restarting":
      return view(
        `${SPINNER} Treelens`,
        `The Treelens daemon ${daemon.reason === "crashed" ? "stopped unexpectedly" : "stopped answering"}; ` +
          `restarting it in ${Math.round(daemon.delayMs / 1000)} s.`,
        "warning",
      );
    case "failed":
      return view(`$(error) Treelens: ${daemon.problem.short}`, escapeMarkdown(daemon.problem.message), "error");
    case "running":
      break;
  }
  if (!folder) {
    return view(`${ICON} Treelens`, "Open a folder to see what kind of project it is.");
  }
  if (!state || state.kind === "pending") {
    return view(`${SPINNER} Treelens`, `Classifying **${escapeMarkdown(folder.name)}**…`);
  }
  if (state.kind === "error") {
    const short = state.problem?.short ?? "error";
    return view(`$(warning) Treelens: ${short}`, escapeMarkdown(state.problem?.message ?? state.message), "warning");
  }
  return view(labelsText(state.result), resultTooltip(folder, state.result));
}

/**
 * `$(shield) backend · has_api · library?` (uncertain labels end in `?`), `$(shield) no labels`
 * when none reached even its uncertainty band, `$(shield) no project files` with nothing to go on.
 */
export function labelsText(result: ClassifyResult): string {
  if (result.noProjectFiles) {
    return `${ICON} no project files`;
  }
  const shown = [...result.labels, ...result.uncertain.map((label) => `${label}?`)];
  return `${ICON} ${shown.length > 0 ? shown.join(" · ") : "no labels"}`;
}

export function resultTooltip(folder: Folder, result: ClassifyResult): string {
  const rows = Object.entries(result.probabilities).map(([label, probability]) => {
    const predicted = result.labels.includes(label);
    const uncertain = result.uncertain.includes(label);
    const name = predicted ? `**${escapeMarkdown(label)}**` : escapeMarkdown(label) + (uncertain ? "?" : "");
    const threshold = result.thresholds[label];
    const mark = predicted ? "$(check)" : uncertain ? "uncertain" : "";
    return `| ${name} | ${probability.toFixed(3)} | ${threshold === undefined ? "" : threshold.toFixed(3)} | ${mark} |`;
  });
  const list = (items: string[]) => (items.length > 0 ? items.map(escapeMarkdown).join(", ") : "none detected");
  const table = result.noProjectFiles
    ? ["No project files found: the folder is empty, or every file is ignored or filtered as noise."]
    : ["| label | probability | threshold | |", "|:--|--:|--:|:-:|", ...rows];
  return [
    `**Treelens** · ${escapeMarkdown(folder.name)}`,
    "",
    ...table,
    "",
    `Tokens: ${result.tokenCount.toLocaleString("en-US")}` +
      (result.truncated ? " (truncated: the tree was summarised to fit the model)" : " (not truncated)"),
    "",
    `Model: ${escapeMarkdown(result.modelVersion)} · classified in ${Math.round(result.elapsedMs)} ms`,
    "",
    `Languages: ${list(result.languages)}`,
    "",
    `Technologies: ${list(result.technologies)}`,
  ].join("\n");
}

/** Keeps names like `c++` or `__init__` literal in Markdown. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (char) => `\\${char}`);
}

export class StatusBar implements Disposable {
  private readonly item: StatusItem;

  constructor(api: VscodeApi) {
    this.item = api.createStatusItem(STATUS_ID, "Treelens");
    this.item.command = COMMANDS.showMenu;
  }

  render(view: StatusView): void {
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.severity = view.severity;
    if (view.visible) {
      this.item.show();
    } else {
      this.item.hide();
    }
  }

  dispose(): void {
    this.item.dispose();
  }
}
