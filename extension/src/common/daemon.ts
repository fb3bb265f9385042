/**
 * The daemon's life cycle: start it (after the interpreter check), stop it, restart it
 * one at a time, restart it with back-off when it crashes or stops answering (liveness.ts),
 * and say at every moment what state it is in. How a process is started and spoken to is
 * the `Launcher`'s business (client.ts with vscode-languageclient; fakes in unit tests).
 */
import type { DaemonSettings } from "../protocol";
import { Liveness, LIVENESS_BOUNDS, type LivenessBounds, type Schedule } from "./liveness";
import { errorMessage, logError, logInfo, logWarn } from "./log";
import { isProblem, type PythonReport } from "./preflight";
import type { Problem } from "./problems";
import { crashed, startFailed, unresponsive, unresponsiveRestarted } from "./problems";
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

/** Why a daemon is being restarted: it exited, or it stopped answering and was stopped. */
export type RestartReason = "crashed" | "unresponsive";

export type DaemonState =
  | { kind: "disabled" }
  | { kind: "starting" }
  | { kind: "running"; connection: DaemonConnection }
  /** `notice`: what to tell the person, on the first restart of a run of failures only. */
  | { kind: "restarting"; delayMs: number; reason: RestartReason; notice?: Problem }
  | { kind: "failed"; problem: Problem };

export interface SupervisorDeps {
  launcher: Launcher;
  settings(): Settings;
  /** The Python to run, or why there is none (no Python 3.11+, its own environment failed to build). */
  interpreter(): Promise<Interpreter | Problem>;
  /** Runs `callback` after `ms`; tests run it by hand. Back-off and liveness probes use it. */
  schedule: Schedule;
  onState(state: DaemonState): void;
  /** How soon a silent daemon counts as deaf; LIVENESS_BOUNDS unless a test says otherwise. */
  liveness?: LivenessBounds;
}

export class DaemonSupervisor implements Disposable {
  private current: RunningDaemon | undefined;
  private liveness: Liveness | undefined;
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
    const startedAt = this.generation;
    const interpreter = await this.deps.interpreter();
    if (this.generation !== startedAt) {
      return; // stopped while its environment was being built
    }
    if (isProblem(interpreter)) {
      logError(interpreter.message);
      this.setState({ kind: "failed", problem: interpreter });
      return;
    }
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
    this.liveness = new Liveness(
      daemon,
      this.deps.schedule,
      (silentMs) => this.unresponsive(generation, silentMs),
      this.deps.liveness ?? LIVENESS_BOUNDS,
    );
    this.backoff.started();
    this.setState({ kind: "running", connection: this.liveness.guard() });
  }

  private async stopCurrent(): Promise<void> {
    this.pendingRestart?.dispose();
    this.pendingRestart = undefined;
    const daemon = this.dropCurrent();
    if (daemon) {
      await stopQuietly(daemon);
    }
  }

  /** Forgets the current daemon; a close it reports later belongs to an old generation. */
  private dropCurrent(): RunningDaemon | undefined {
    this.generation += 1;
    this.liveness?.dispose();
    this.liveness = undefined;
    const daemon = this.current;
    this.current = undefined;
    return daemon;
  }

  private closed(generation: number): void {
    if (generation !== this.generation) {
      return; // a daemon we stopped ourselves
    }
    this.dropCurrent();
    logWarn("The daemon stopped unexpectedly.");
    this.restartLater("crashed", Promise.resolve());
  }

  /** A daemon alive but deaf never closes by itself: stop it (client.ts kills what does not exit), then restart. */
  private unresponsive(generation: number, silentMs: number): void {
    if (generation !== this.generation) {
      return;
    }
    const seconds = Math.round(silentMs / 1000);
    logWarn(`The daemon did not answer for ${seconds} s; stopping it.`);
    const daemon = this.dropCurrent();
    this.restartLater("unresponsive", daemon ? stopQuietly(daemon) : Promise.resolve(), seconds);
  }

  /**
   * Restarts after the back-off delay, once `stopped` has settled, or gives up when the
   * delays are spent. The person is told about a deaf daemon on the first restart of a
   * run of failures only; the status bar shows every one.
   */
  private restartLater(reason: RestartReason, stopped: Promise<void>, silentSeconds = 0): void {
    const delayMs = this.backoff.nextDelay();
    if (delayMs === undefined) {
      const times = this.backoff.crashes + 1;
      const problem = reason === "crashed" ? crashed(times) : unresponsive(times);
      logError(problem.message);
      this.setState({ kind: "failed", problem });
      return;
    }
    logWarn(`Restarting the daemon in ${delayMs} ms.`);
    const firstOfRun = this.backoff.crashes === 1;
    const notice = reason === "unresponsive" && firstOfRun ? unresponsiveRestarted(silentSeconds) : undefined;
    this.setState({ kind: "restarting", delayMs, reason, ...(notice ? { notice } : {}) });
    this.pendingRestart = this.deps.schedule(() => {
      this.pendingRestart = undefined;
      void stopped.then(() => this.restarter.restart());
    }, delayMs);
  }
}

async function stopQuietly(daemon: RunningDaemon): Promise<void> {
  try {
    await daemon.stop();
  } catch (error) {
    logWarn(`Stopping the daemon failed: ${errorMessage(error)}`);
  }
}
