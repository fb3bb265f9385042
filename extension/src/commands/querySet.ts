/**
 * "Treelens: Suggest SAST Query Set": pick an engine, open the suggested config with the
 * kept/total counts and the reasons, and offer to save it into the workspace folder under
 * the file name the daemon gives. CodeQL has no default catalog: the person picks a query
 * pack folder once and it is remembered. Semgrep's default catalog (the shared rules index)
 * exists only in a development checkout: where the daemon has none, the person picks a rules
 * folder once, the same way. For Semgrep the person may also narrow the rules' paths (leave
 * out vendored files, scope rules to components), as `treelens suggest` does; the choice is
 * remembered as the next default.
 */
import * as path from "node:path";
import { errorMessage } from "../common/log";
import type { Pick } from "../common/vscodeapi";
import { errorCode } from "../labels";
import {
  ENGINES,
  ERROR_CODES,
  SUGGEST_QUERY_SET,
  type Engine,
  type SuggestQuerySetParams,
  type SuggestQuerySetResult,
} from "../protocol";
import { target, type CommandContext } from "./context";

export const ENGINE_INFO: Record<Engine, { title: string; description: string; unit: string }> = {
  semgrep: { title: "Semgrep", description: "rules for `semgrep --config`", unit: "rules" },
  codeql: { title: "CodeQL", description: "a query suite (.qls) from a query pack folder", unit: "queries" },
  bandit: { title: "Bandit", description: "a test selection for `bandit -c`", unit: "tests" },
  checkov: { title: "Checkov", description: "a check selection for `checkov --config-file`", unit: "checks" },
};

/** Key under which the chosen CodeQL query pack folder is remembered. */
export const CODEQL_CATALOG_KEY = "treelens.codeqlCatalog";
/** Key under which the chosen Semgrep rules folder is remembered. */
export const SEMGREP_CATALOG_KEY = "treelens.semgrepCatalog";

/** Key under which the Semgrep path options last chosen are remembered. */
export const SEMGREP_SCOPE_KEY = "treelens.semgrepScope";
type ScopeOption = "skipVendored" | "scopeComponents";
/** The Semgrep path options, as `treelens suggest --skip-vendored --scope-components` names them. */
export const SCOPE_OPTIONS: { value: ScopeOption; label: string; description: string }[] = [
  {
    value: "skipVendored",
    label: "Leave out vendored, generated and minified files",
    description: "--skip-vendored: findings there are not reported",
  },
  {
    value: "scopeComponents",
    label: "Scope each rule to the components of its language",
    description: "--scope-components: monorepos, rules folders only",
  },
];

/**
 * Engines whose catalog can be a folder the person chooses: where it is remembered, the
 * folder dialog's title, and whether to ask before the first request (no default catalog)
 * or only when the daemon has no default (`querySetsUnavailable` for a request without one).
 */
export const CATALOG_FOLDERS: Partial<Record<Engine, { key: string; title: string; askFirst: boolean }>> = {
  codeql: { key: CODEQL_CATALOG_KEY, title: "Choose a CodeQL query pack folder (with qlpack.yml)", askFirst: true },
  semgrep: {
    key: SEMGREP_CATALOG_KEY,
    title: "Treelens needs Semgrep rules: choose a rules folder (e.g. a clone of github.com/semgrep/semgrep-rules)",
    askFirst: false,
  },
};
/** Most distinct reasons listed in the header; the rest are counted. */
export const MAX_REASON_LINES = 15;
/** Config files whose format takes `#` comments: the header is saved with them. */
const COMMENTED = /\.(ya?ml|qls)$/i;

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
  const { title } = ENGINE_INFO[engine];
  const scope = engine === "semgrep" ? await pickScope(context) : {};
  if (!scope) {
    return;
  }
  const choice = CATALOG_FOLDERS[engine];
  let catalog = choice && api.getState<string>(choice.key);
  if (choice?.askFirst && !catalog) {
    catalog = await api.pickFolder(choice.title);
    if (!catalog) {
      return;
    }
  }
  const ask = (chosen: string | undefined) => {
    const params: SuggestQuerySetParams = {
      folder: where.folder.uri,
      engine,
      ...(chosen ? { catalog: chosen } : {}),
      ...scope,
    };
    return api.withProgress(`Treelens: choosing ${title} queries…`, () =>
      where.daemon.request<SuggestQuerySetResult>(SUGGEST_QUERY_SET, params),
    );
  };
  let result: SuggestQuerySetResult;
  try {
    try {
      result = await ask(catalog);
    } catch (error) {
      if (!choice || catalog || errorCode(error) !== ERROR_CODES.querySetsUnavailable) {
        throw error;
      }
      catalog = await api.pickFolder(choice.title); // the daemon has no default catalog
      if (!catalog) {
        return;
      }
      result = await ask(catalog);
    }
  } catch (error) {
    if (choice && catalog && errorCode(error) === ERROR_CODES.querySetsUnavailable) {
      await api.setState(choice.key, undefined); // ask for another folder next time
    }
    await api.showErrorMessage(`Treelens could not suggest a ${title} query set: ${errorMessage(error)}`);
    return;
  }
  if (choice && catalog) {
    await api.setState(choice.key, catalog);
  }
  const header = configHeader(result, where.folder.name, context.labels.latest(where.folder)?.labels);
  const { fileName, text } = result.config;
  await api.openUntitled(`${header}${text}`, COMMENTED.test(fileName) ? "yaml" : "plaintext");
  const save = "Save to Workspace";
  const answer = await api.showInformationMessage(`${countsLine(result)} Save it as ${fileName}?`, save);
  if (answer !== save) {
    return;
  }
  const file = path.join(where.folder.path, fileName);
  if (await api.fileExists(file)) {
    const overwrite = "Overwrite";
    const confirmed = await api.showWarningMessage(`${fileName} already exists in ${where.folder.name}.`, overwrite);
    if (confirmed !== overwrite) {
      return;
    }
  }
  await api.writeFile(file, COMMENTED.test(fileName) ? `${header}${text}` : text);
  await api.openFile(file);
  await api.showInformationMessage(`Saved ${fileName} in ${where.folder.name}.`);
}

/** The Semgrep path options to ask for ({} for none); undefined when the person cancels. */
async function pickScope(context: CommandContext): Promise<Partial<Record<ScopeOption, true>> | undefined> {
  const { api } = context;
  const last = api.getState<ScopeOption[]>(SEMGREP_SCOPE_KEY) ?? [];
  const picked = await api.showMultiPick(
    SCOPE_OPTIONS.map((option) => ({ ...option, picked: last.includes(option.value) })),
    { title: "Treelens: Semgrep paths", placeholder: "Narrow where the rules run (none: every file, every finding)" },
  );
  if (!picked) {
    return undefined;
  }
  const chosen = picked.map((item) => item.value);
  await api.setState(SEMGREP_SCOPE_KEY, chosen);
  return Object.fromEntries(chosen.map((value) => [value, true]));
}

export function countsLine(result: SuggestQuerySetResult): string {
  const { title, unit } = ENGINE_INFO[result.engine];
  const n = (value: number) => value.toLocaleString("en-US");
  return `Kept ${n(result.selected.length)} of ${n(result.totalCount)} ${title} ${unit} (${n(result.excludedCount)} left out).`;
}

/** A `#` comment block: what was decided on, the counts, and the reasons grouped by count. */
export function configHeader(result: SuggestQuerySetResult, folderName: string, labels?: string[]): string {
  const lines = [
    `Treelens ${ENGINE_INFO[result.engine].title} query set for ${folderName}` +
      (labels ? ` (labels: ${labels.length > 0 ? labels.join(", ") : "none"})` : ""),
    countsLine(result),
  ];
  if (result.basis) {
    lines.push(`Decided on: ${result.basis}${result.note ? ` (${result.note})` : ""}`);
  }
  const conservative = Object.keys(result.conservative ?? {}).length;
  if (conservative > 0) {
    lines.push(`Kept only by a conservative rule: ${conservative}`);
  }
  if (result.config.note) {
    lines.push(`Note: ${result.config.note}`);
  }
  const reasons = reasonCounts(result.reasons);
  if (reasons.length > 0) {
    lines.push("", "Left out, by reason:");
    for (const [reason, count] of reasons.slice(0, MAX_REASON_LINES)) {
      lines.push(`  ${String(count).padStart(5)}  ${reason}`);
    }
    const rest = reasons.slice(MAX_REASON_LINES).reduce((sum, [, count]) => sum + count, 0);
    if (rest > 0) {
      lines.push(`  ${String(rest).padStart(5)}  other reasons`);
    }
  }
  return `${lines.map((line) => (line === "" ? "#" : `# ${line}`)).join("\n")}\n\n`;
}

/** Distinct reasons with how many queries each left out, commonest first. */
export function reasonCounts(reasons: Record<string, string>): [string, number][] {
  const counts = new Map<string, number>();
  for (const reason of Object.values(reasons)) {
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}
