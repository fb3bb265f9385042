/**
 * Module-level logging into the Treelens output channel. Until `registerLogger` gives it a
 * channel every call does nothing, so any module can log and unit tests need no channel.
 */
import type { Disposable } from "./vscodeapi";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

let channel: Logger | undefined;

export function registerLogger(logger: Logger): Disposable {
  channel = logger;
  return {
    dispose: () => {
      channel = undefined;
    },
  };
}

export function logInfo(message: string): void {
  channel?.info(message);
}

export function logWarn(message: string): void {
  channel?.warn(message);
}

export function logError(message: string): void {
  channel?.error(message);
}

/** A readable one-liner for anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
