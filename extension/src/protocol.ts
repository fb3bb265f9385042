/**
 * The daemon's wire protocol as the extension sees it: method names, error codes, engines,
 * devices and the JSON shapes the extension relies on. The daemon owns the names; this
 * module mirrors them, and the unit tests compare it with what `python -m treelens.daemon
 * --describe-protocol` prints (test/description.ts).
 */

export const CLASSIFY = "treelens/classify";
export const CLASSIFY_TREE = "treelens/classifyTree";
export const LABELS_CHANGED = "treelens/labelsChanged";
/** The liveness probe: answered with `{}` at once, whatever the daemon is busy with. */
export const PING = "treelens/ping";
export const SUGGEST_QUERY_SET = "treelens/suggestQuerySet";
export const SUBMIT_FEEDBACK = "treelens/submitFeedback";
export const TOKENIZE = "treelens/tokenize";

/** Client -> server requests. */
export const REQUESTS = [CLASSIFY, CLASSIFY_TREE, PING, SUGGEST_QUERY_SET, SUBMIT_FEEDBACK, TOKENIZE] as const;
/** Server -> client notifications. */
export const NOTIFICATIONS = [LABELS_CHANGED] as const;

/** The configuration section the daemon's settings live in. */
export const SETTINGS_SECTION = "treelens";

/** Error codes of conditions a person can fix; the extension offers the fix. */
export const ERROR_CODES = {
  modelUnavailable: 1001,
  feedbackUnavailable: 1002,
  folderUnavailable: 1003,
  querySetsUnavailable: 1004,
} as const;

/** The engines `treelens/suggestQuerySet` knows. */
export const ENGINES = ["semgrep", "codeql", "bandit", "checkov"] as const;
export type Engine = (typeof ENGINES)[number];

/** Where the model runs (the `treelens.device` setting). */
export const DEVICES = ["auto", "cpu", "cuda"] as const;
export type Device = (typeof DEVICES)[number];

export interface ClassifyParams {
  folder?: string;
}

/** `treelens/classify` result and `treelens/labelsChanged` params. */
export interface ClassifyResult {
  folder: string;
  labels: string[];
  /** Labels between half their threshold and their threshold: shown as `library?`. */
  uncertain: string[];
  /** No file the model can read (empty folder, everything ignored): no labels, no probabilities. */
  noProjectFiles: boolean;
  probabilities: Record<string, number>;
  thresholds: Record<string, number>;
  tokenCount: number;
  truncated: boolean;
  modelVersion: string;
  languages: string[];
  technologies: string[];
  elapsedMs: number;
}

export interface SuggestQuerySetParams {
  folder?: string;
  engine: Engine;
  /** The engine's catalog on this machine (absolute path); required for CodeQL: a query pack folder. */
  catalog?: string;
  /** Semgrep: leave vendored, generated and minified files out of every rule (`suggest --skip-vendored`). */
  skipVendored?: boolean;
  /** Semgrep rules folders: scope each rule to the components of its language (`suggest --scope-components`). */
  scopeComponents?: boolean;
}

/** The engine's config for the selection: the file to save and how to run it. */
export interface EngineConfig {
  format: string;
  fileName: string;
  text: string;
  args?: string[];
  note?: string;
}

export interface SuggestQuerySetResult {
  engine: Engine;
  selected: string[];
  excludedCount: number;
  totalCount: number;
  /** Why each query left out was left out, by query id. */
  reasons: Record<string, string>;
  config: EngineConfig;
  /** Queries kept only by a conservative rule, by query id. */
  conservative?: Record<string, string>;
  /** What the decision was based on (the model, or languages and technologies alone). */
  basis?: string;
  note?: string;
}

export interface SubmitFeedbackParams {
  folder?: string;
  labels: Record<string, 0 | 1>;
  comment?: string;
}

export interface SubmitFeedbackResult {
  id: number;
  stored: boolean;
}

export interface TokenizeParams {
  folder?: string;
}

export interface Token {
  id: number;
  text: string;
}

export interface TokenizeResult {
  text: string;
  tokens: Token[];
  tokenCount: number;
}

/** The settings the daemon reads (DESIGN.md); null means "the daemon's default". */
export interface DaemonSettings {
  modelPath: string | null;
  device: Device;
  debounceMs: number;
  extraIgnores: string[];
  thresholds: Record<string, number>;
  feedbackDatabase: string | null;
}
