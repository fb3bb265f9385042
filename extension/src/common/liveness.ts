/**
 * Whether the daemon still answers. A daemon can be alive and deaf: stuck at 100 % CPU in
 * a pattern, or blocked on a broken frame, it never exits, so the close handler never
 * fires and every request waits for ever. While a daemon runs it is asked a cheap
 * question at a steady pace; one left unanswered past a bound marks it deaf, and the
 * requests still waiting on it are failed at once with words a person can act on.
 */
import { PING } from "../protocol";
import type { DaemonConnection } from "./daemon";
import type { Disposable } from "./vscodeapi";

/**
 * The probe: `treelens/ping`, which the daemon answers with `{}` on the loop that reads
 * every message, in about a millisecond and without touching a folder, the model or the
 * log. Any answer, result or error, proves the daemon reads and answers: before initialize
 * and after shutdown the answer is an error, and a daemon older than the method answers
 * "method not found".
 */
export const PROBE_METHOD = PING;
export const PROBE_PARAMS = {} as const;

export interface LivenessBounds {
  /** Time between the answer to one probe and the next probe. */
  intervalMs: number;
  /** A probe unanswered this long means the daemon is deaf. */
  answerWithinMs: number;
}

/**
 * A probe takes milliseconds even while the daemon classifies (that work runs on worker
 * threads), so 20 s of silence is no busy daemon; a deaf one is noticed within 35 s.
 */
export const LIVENESS_BOUNDS: LivenessBounds = { intervalMs: 15_000, answerWithinMs: 20_000 };

/** Runs `callback` after `ms` unless disposed first. */
export type Schedule = (callback: () => void, ms: number) => Disposable;

/** What requests waiting on a deaf daemon fail with. */
export class DaemonUnresponsiveError extends Error {
  constructor(readonly silentMs: number) {
    super(
      `the Treelens daemon did not answer for ${Math.round(silentMs / 1000)} s and is being restarted; ` +
        "try again in a moment",
    );
    this.name = "DaemonUnresponsiveError";
  }
}

/** Probes one daemon until it is found deaf or disposed; wraps its requests. */
export class Liveness implements Disposable {
  private timer: Disposable | undefined;
  private done = false;
  private silence: DaemonUnresponsiveError | undefined;
  private readonly waiting = new Set<(error: Error) => void>();

  constructor(
    private readonly daemon: DaemonConnection,
    private readonly schedule: Schedule,
    private readonly onDeaf: (silentMs: number) => void,
    private readonly bounds: LivenessBounds = LIVENESS_BOUNDS,
  ) {
    this.next();
  }

  /** The daemon's connection whose requests fail at once when the daemon is found deaf. */
  guard(): DaemonConnection {
    return {
      request: <R>(method: string, params: object) =>
        this.silence ? Promise.reject(this.silence) : this.waitFor(this.daemon.request<R>(method, params)),
      onNotification: (method, handler) => this.daemon.onNotification(method, handler),
      sendSettings: (settings) => this.daemon.sendSettings(settings),
    };
  }

  dispose(): void {
    this.done = true;
    this.timer?.dispose();
    this.timer = undefined;
  }

  private next(): void {
    if (!this.done) {
      this.timer = this.schedule(() => this.probe(), this.bounds.intervalMs);
    }
  }

  private probe(): void {
    let answered = false;
    this.timer = this.schedule(() => {
      if (!answered && !this.done) {
        this.deaf();
      }
    }, this.bounds.answerWithinMs);
    const settle = () => {
      if (answered || this.done) {
        return;
      }
      answered = true;
      this.timer?.dispose();
      this.next();
    };
    this.daemon.request(PROBE_METHOD, PROBE_PARAMS).then(settle, settle);
  }

  private deaf(): void {
    this.dispose();
    const error = new DaemonUnresponsiveError(this.bounds.answerWithinMs);
    this.silence = error;
    for (const reject of this.waiting) {
      reject(error);
    }
    this.waiting.clear();
    this.onDeaf(this.bounds.answerWithinMs);
  }

  private waitFor<R>(request: Promise<R>): Promise<R> {
    if (this.done) {
      return request;
    }
    return new Promise<R>((resolve, reject) => {
      this.waiting.add(reject);
      request.then(resolve, reject).finally(() => this.waiting.delete(reject));
    });
  }
}
