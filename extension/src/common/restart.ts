/**
 * The two rules that keep restarts sane: they run one at a time with at most one queued
 * behind (a burst of setting changes gives one extra restart, with the latest settings),
 * and a daemon that keeps crashing is restarted after growing delays, then left stopped.
 */

export class SerialRestarter {
  private tail: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(private readonly run: () => Promise<void>) {}

  /** Runs `run` after the one in progress; calls made while one is queued join it. */
  restart(): Promise<void> {
    if (this.queued) {
      return this.queued;
    }
    const next = this.tail
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.run();
      });
    this.queued = next;
    this.tail = next;
    return next;
  }
}

export const RESTART_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 16_000] as const;
/** A daemon that ran this long before crashing starts the delays over. */
export const STABLE_AFTER_MS = 120_000;

export class Backoff {
  private attempts = 0;
  private startedAt = 0;

  constructor(
    private readonly delays: readonly number[] = RESTART_DELAYS_MS,
    private readonly stableAfterMs = STABLE_AFTER_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Call when a daemon is up and answering. */
  started(): void {
    this.startedAt = this.now();
  }

  /** The wait before restarting a crashed daemon, or undefined to give up. */
  nextDelay(): number | undefined {
    if (this.now() - this.startedAt >= this.stableAfterMs) {
      this.attempts = 0;
    }
    const delay = this.delays[this.attempts];
    if (delay !== undefined) {
      this.attempts += 1;
    }
    return delay;
  }

  /** Crashes the daemon survived so far in this run of restarts. */
  get crashes(): number {
    return this.attempts;
  }

  /** A restart a person asked for starts the delays over. */
  reset(): void {
    this.attempts = 0;
  }
}
