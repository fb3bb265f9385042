/**
 * "Treelens: Suggest SAST Query Set": pick an engine, open the suggested config with the
 * kept/total counts and the reasons as a comment header, and offer to save it into the
 * workspace folder.
 */
import * as path from "node:path";
import { errorMessage } from "../common/log";
import type { Pick } from "../common/vscodeapi";
import { ENGINES, SUGGEST_QUERY_SET, type Engine, type SuggestQuerySetParams, type SuggestQuerySetResult } from "../protocol";
import { target, type CommandContext } from "./context";

export interface EngineInfo {
  title: string;
  description: string;
  /** Editor language of the config. */
  language: string;
  /** File the config is saved as, in the workspace folder. */
  fileName: string;
  /** What one entry of `selected` is. */
  unit: string;
}

export const ENGINE_INFO: Record<Engine, EngineInfo> = {
  semgrep: {
    title: "Semgrep",
    description: "rule ids for `semgrep --config`",
    language: "yaml",
    fileName: "treelens-semgrep.yml",
    unit: "rules",
  },
  codeql: {
    title: "CodeQL",
    description: "a query suite (.qls)",
    language: "yaml",
    fileName: "treelens.qls",
    unit: "queries",
  },
  bandit: {
    title: "Bandit",
    description: "a test selection for `bandit -c`",
    language: "yaml",
    fileName: "treelens-bandit.yml",
    unit: "tests",
  },
};

/** Most reasons shown in the header; the rest are counted. */
export const MAX_REASON_LINES = 40;

export async function suggestQuerySet(context: CommandContext): Promise<void> {
  const { api } = context;
  const where = await target(context);
  if (!where) {
    return;
  }
  const items: Pick<Engine>[] = ENGINES.map((engine) => ({
    label: ENGINE_INFO[engine].title,
    description: ENGINE_INFO[engine].description,
    value: engine,
  }));
  const picked = await api.showQuickPick(items, {
    title: `Treelens: SAST query set for ${where.folder.name}`,
    placeholder: "Which engine?",
  });
  if (!picked) {
    return;
  }
  const engine = picked.value;
  let result: SuggestQuerySetResult;
  try {
    const params: SuggestQuerySetParams = { folder: where.folder.uri, engine };
    result = await api.withProgress(`Treelens: choosing ${ENGINE_INFO[engine].title} queries…`, () =>
      where.daemon.request<SuggestQuerySetResult>(SUGGEST_QUERY_SET, params),
    );
  } catch (error) {
    await api.showErrorMessage(`Treelens could not suggest a ${ENGINE_INFO[engine].title} query set: ${errorMessage(error)}`);
    return;
  }
  const info = ENGINE_INFO[engine];
  const content = `${configHeader(result, where.folder.name, context.labels.latest(where.folder)?.labels)}${result.config}`;
  await api.openUntitled(content, info.language);
  const save = "Save to Workspace";
  const answer = await api.showInformationMessage(`${countsLine(result)} Save it as ${info.fileName}?`, save);
  if (answer !== save) {
    return;
  }
  const file = path.join(where.folder.path, info.fileName);
  if (await api.fileExists(file)) {
    const overwrite = "Overwrite";
    const confirmed = await api.showWarningMessage(`${info.fileName} already exists in ${where.folder.name}.`, overwrite);
    if (confirmed !== overwrite) {
      return;
    }
  }
  await api.writeFile(file, content);
  await api.openFile(file);
  await api.showInformationMessage(`Saved ${info.fileName} in ${where.folder.name}.`);
}

export function countsLine(result: SuggestQuerySetResult): string {
  const info = ENGINE_INFO[result.engine];
  return (
    `Kept ${result.selected.length.toLocaleString("en-US")} of ${result.totalCount.toLocaleString("en-US")} ` +
    `${info.title} ${info.unit} (${result.excludedCount.toLocaleString("en-US")} left out).`
  );
}

/** A `#` comment block (valid in every engine's YAML config) with the counts and reasons. */
export function configHeader(result: SuggestQuerySetResult, folderName: string, labels?: string[]): string {
  const lines = [
    `Treelens ${ENGINE_INFO[result.engine].title} query set for ${folderName}` +
      (labels ? ` (labels: ${labels.length > 0 ? labels.join(", ") : "none"})` : ""),
    countsLine(result),
  ];
  const reasons = reasonLines(result.reasons);
  if (reasons.length > 0) {
    lines.push("", "Reasons:");
    lines.push(...reasons.slice(0, MAX_REASON_LINES).map((line) => `  ${line}`));
    if (reasons.length > MAX_REASON_LINES) {
      lines.push(`  … ${reasons.length - MAX_REASON_LINES} more`);
    }
  }
  return `${lines.map((line) => (line === "" ? "#" : `# ${line}`)).join("\n")}\n\n`;
}

/** Reasons as text lines, whatever their JSON shape: a list, or an object of counts or lists. */
export function reasonLines(reasons: unknown): string[] {
  if (reasons === null || reasons === undefined) {
    return [];
  }
  if (typeof reasons === "string") {
    return [reasons];
  }
  if (Array.isArray(reasons)) {
    return reasons.flatMap((reason) => reasonLines(reason));
  }
  if (typeof reasons === "object") {
    return Object.entries(reasons as Record<string, unknown>).map(([key, value]) => `${key}: ${describe(value)}`);
  }
  return [String(reasons)];
}

function describe(value: unknown): string {
  if (Array.isArray(value)) {
    const shown = value.slice(0, 5).map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
    return value.length > 5 ? `${shown.join(", ")}, … (${value.length})` : shown.join(", ");
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}
