/**
 * The real `Launcher`: `<python> -P -m treelens.daemon` (python.ts) over stdio through vscode-languageclient.
 * The daemon's stderr (its log) and the client's own messages go to the Treelens output
 * channel; the client never shows notifications itself, so a failure reaches the person
 * as the one actionable message of problems.ts.
 */
import type { LogOutputChannel } from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  LanguageClient,
  RevealOutputChannelOn,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import type { DaemonSettings } from "../protocol";
import type { Launcher, RunningDaemon } from "./daemon";
import { errorMessage, logError } from "./log";
import { checkPython } from "./preflight";
import { DAEMON_ARGS, type Interpreter } from "./python";
import { settingsPayload } from "./settings";

export const START_TIMEOUT_MS = 60_000;

/** A language client that logs its errors instead of showing notifications. */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown): void {
    super.error(message, data, false);
  }
}

export function createLauncher(channel: LogOutputChannel, cwd: () => string | undefined): Launcher {
  return {
    check: (interpreter) => checkPython(interpreter.command),
    launch: (interpreter, settings) => launch(channel, interpreter, settings, cwd()),
  };
}

async function launch(
  channel: LogOutputChannel,
  interpreter: Interpreter,
  settings: DaemonSettings,
  cwd: string | undefined,
): Promise<RunningDaemon> {
  const [command, ...args] = interpreter.command;
  const serverOptions: ServerOptions = {
    command,
    args: [...args, ...DAEMON_ARGS],
    options: { cwd, env: { ...process.env, PYTHONUNBUFFERED: "1" } },
  };
  let closedListener: (() => void) | undefined;
  let stopping = false;
  const clientOptions: LanguageClientOptions = {
    documentSelector: [],
    outputChannel: channel,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: settingsPayload(settings),
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue, handled: true }),
      closed: () => {
        if (!stopping) {
          closedListener?.();
        }
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
  };
  const client = new QuietLanguageClient("treelens", "Treelens", serverOptions, clientOptions);
  channel.info(`Starting the daemon: ${[command, ...args, ...DAEMON_ARGS].join(" ")} (cwd ${cwd ?? "-"})`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`it did not answer "initialize" within ${START_TIMEOUT_MS / 1000} s`)),
      START_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([client.start(), timeout]);
  } catch (error) {
    stopping = true;
    await client.stop().catch(() => undefined);
    throw new Error(startFailureReason(error), { cause: error });
  } finally {
    clearTimeout(timer);
  }
  return {
    request: (method, params) => client.sendRequest(method, params),
    onNotification: (method, handler) => client.onNotification(method, handler),
    sendSettings: (next) =>
      client.sendNotification(DidChangeConfigurationNotification.type, { settings: settingsPayload(next) }),
    onClosed: (listener) => {
      closedListener = listener;
    },
    stop: async () => {
      stopping = true;
      try {
        await client.stop(5_000);
      } catch (error) {
        logError(`The daemon did not stop cleanly: ${errorMessage(error)}`);
      }
    },
  };
}

function startFailureReason(error: unknown): string {
  const message = errorMessage(error);
  if (/Pending response rejected|connection got disposed|closed/i.test(message)) {
    return "it exited while starting";
  }
  return message;
}
