/**
 * The daemon's life cycle: start it (after the interpreter check), stop it, restart it
 * one at a time, restart it with back-off when it crashes, and say at every moment what
 * state it is in. How a process is started and spoken to is the `Launcher`'s business
 * (client.ts with vscode-languageclient; fakes in unit tests).
 */
import type { DaemonSettings } from "../protocol";
import { errorMessage, logError, logInfo, logWarn } from "./log";
import { isProblem, type PythonReport } from "./preflight";
import type { Problem } from "./problems";
import { crashed, startFailed } from "./problems";
import type { Interpreter } from "./python";
import { Backoff, SerialRestarter } from "./restart";
import type { Settings } from "./settings";
import type { Disposable } from "./vscodeapi";

/** A started daemon: requests, notifications, settings, and word when it goes away. */
export interface DaemonConnection {
  request<R>(method: string, params: object): Promise<R>;
  onNotification<P>(method: string, handler: (params: P) => void): Disposable;
  sendSettings(settings: DaemonSettings): Promise<void>;
}

export interface RunningDaemon extends DaemonConnection {
  /** Called once when the process exits or the connection drops without `stop()`. */
  onClosed(listener: () => void): void;
  stop(): Promise<void>;
}

export interface Launcher {
  check(interpreter: Interpreter): Promise<PythonReport | Problem>;
  launch(interpreter: Interpreter, settings: DaemonSettings): Promise<RunningDaemon>;
}

export type DaemonState =
  | { kind: "disabled" }
  | { kind: "starting" }
  | { kind: "running"; connection: DaemonConnection }
  | { kind: "restarting"; delayMs: number }
  | { kind: "failed"; problem: Problem };

export interface SupervisorDeps {
  launcher: Launcher;
  settings(): Settings;
  interpreter(): Promise<Interpreter>;
  /** Runs `callback` after `ms`; tests run it by hand. */
  schedule(callback: () => void, ms: number): Disposable;
  onState(state: DaemonState): void;
}

export class DaemonSupervisor implements Disposable {
  private current: RunningDaemon | undefined;
  private generation = 0;
  private pendingRestart: Disposable | undefined;
  private readonly backoff = new Backoff();
  private readonly restarter = new SerialRestarter(() => this.startFresh());
  private stateValue: DaemonState = { kind: "starting" };

  constructor(private readonly deps: SupervisorDeps) {}

  get state(): DaemonState {
    return this.stateValue;
  }

  /** Stops the daemon if one runs and starts a new one with the current settings. */
  restart(): Promise<void> {
    this.backoff.reset();
    return this.restarter.restart();
  }

  /** Sends changed settings to the running daemon (no restart needed). */
  async updateSettings(): Promise<void> {
    const settings = this.deps.settings();
    if (this.current) {
      await this.current.sendSettings(settings.daemon);
    }
  }

  /** Stops the daemon for good (extension deactivation). */
  stop(): Promise<void> {
    return this.stopCurrent();
  }

  dispose(): void {
    void this.stopCurrent();
  }

  private setState(state: DaemonState): void {
    this.stateValue = state;
    this.deps.onState(state);
  }

  private async startFresh(): Promise<void> {
    await this.stopCurrent();
    const settings = this.deps.settings();
    if (!settings.enable) {
      logInfo("Treelens is disabled (treelens.enable is false); the daemon is not started.");
      this.setState({ kind: "disabled" });
      return;
    }
    this.setState({ kind: "starting" });
    const interpreter = await this.deps.interpreter();
    logInfo(`Python (${interpreter.source}): ${interpreter.command.join(" ")}`);
    const report = await this.deps.launcher.check(interpreter);
    if (isProblem(report)) {
      logError(report.message);
      this.setState({ kind: "failed", problem: report });
      return;
    }
    logInfo(`Python ${report.version} at ${report.executable}, treelens ${report.treelens}`);
    let daemon: RunningDaemon;
    try {
      daemon = await this.deps.launcher.launch(interpreter, settings.daemon);
    } catch (error) {
      const problem = startFailed(errorMessage(error));
      logError(problem.message);
      this.setState({ kind: "failed", problem });
      return;
    }
    const generation = ++this.generation;
    daemon.onClosed(() => this.closed(generation));
    this.current = daemon;
    this.backoff.started();
    this.setState({ kind: "running", connection: daemon });
  }

  private async stopCurrent(): Promise<void> {
    this.pendingRestart?.dispose();
    this.pendingRestart = undefined;
    this.generation += 1;
    const daemon = this.current;
    this.current = undefined;
    if (daemon) {
      try {
        await daemon.stop();
      } catch (error) {
        logWarn(`Stopping the daemon failed: ${errorMessage(error)}`);
      }
    }
  }

  private closed(generation: number): void {
    if (generation !== this.generation) {
      return; // a daemon we stopped ourselves
    }
    this.current = undefined;
    const delayMs = this.backoff.nextDelay();
    if (delayMs === undefined) {
      const problem = crashed(this.backoff.crashes + 1);
      logError(problem.message);
      this.setState({ kind: "failed", problem });
      return;
    }
    logWarn(`The daemon stopped unexpectedly; restarting it in ${delayMs} ms.`);
    this.setState({ kind: "restarting", delayMs });
    this.pendingRestart = this.deps.schedule(() => {
      this.pendingRestart = undefined;
      void this.restarter.restart();
    }, delayMs);
  }
}
