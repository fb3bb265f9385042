/**
 * The only reader of Treelens settings. package.json `contributes.configuration` is the
 * schema and states every default once: VS Code applies those defaults, so `get` always
 * has a value for a contributed key and this module adds none of its own.
 */
import type { DaemonSettings } from "../protocol";
import { SETTINGS_SECTION } from "../protocol";
import type { ConfigurationChange, VscodeApi } from "./vscodeapi";

/** Settings the extension uses itself (how and whether to start the daemon). */
export interface ExtensionSettings {
  enable: boolean;
  python: string;
}

export interface Settings extends ExtensionSettings {
  daemon: DaemonSettings;
}

/** Keys (under `treelens.`) that are sent to the daemon, as DESIGN.md names them. */
export const DAEMON_KEYS = [
  "modelPath",
  "device",
  "debounceMs",
  "extraIgnores",
  "thresholds",
  "feedbackDatabase",
] as const satisfies readonly (keyof DaemonSettings)[];

/** Keys that change how the daemon process is started: a change restarts it. */
export const RESTART_KEYS = ["enable", "python"] as const satisfies readonly (keyof ExtensionSettings)[];

export function readSettings(api: VscodeApi): Settings {
  const config = api.getConfiguration(SETTINGS_SECTION);
  const get = <T>(key: string): T => config.get<T>(key) as T;
  return {
    enable: get<boolean>("enable"),
    python: get<string>("python").trim(),
    daemon: {
      modelPath: optionalPath(get<string>("modelPath")),
      device: get<DaemonSettings["device"]>("device"),
      debounceMs: get<number>("debounceMs"),
      extraIgnores: get<string[]>("extraIgnores"),
      thresholds: get<Record<string, number>>("thresholds"),
      feedbackDatabase: optionalPath(get<string>("feedbackDatabase")),
    },
  };
}

/** An empty path setting means "the daemon's default", which the daemon spells null. */
function optionalPath(value: string): string | null {
  const trimmed = value.trim();
  return trimmed === "" ? null : trimmed;
}

/** What `initializationOptions` and `workspace/didChangeConfiguration` carry: the section. */
export function settingsPayload(settings: DaemonSettings): Record<string, DaemonSettings> {
  return { [SETTINGS_SECTION]: settings };
}

export type SettingsChange = "restart" | "daemon" | "none";

/** What a configuration change asks for: a new daemon process, new daemon settings, or nothing. */
export function classifyChange(change: ConfigurationChange): SettingsChange {
  const affects = (key: string) => change.affectsConfiguration(`${SETTINGS_SECTION}.${key}`);
  if (RESTART_KEYS.some(affects)) {
    return "restart";
  }
  return DAEMON_KEYS.some(affects) ? "daemon" : "none";
}
