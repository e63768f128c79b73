// The client-side rate limit on the writes wsgate's leader sends the API server: route status applies, Gateway
// API and Ingress status patches, and Events. A token bucket of `burst` requests refilled at `qps` a second, as
// client-go limits a client (rest.Config QPS and Burst), so that a relist or a won election that finds thousands
// of statuses to write becomes a steady stream the API server can plan for, not a burst. Lists, watches and the
// leader's Lease are not paced: a backlog of statuses must never delay a lease renewal.
import { TokenBucket } from '../policy/token-bucket.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';

export interface RequestPacerOptions {
  /** Requests per second, on average. */
  readonly qps: number;
  /** Requests that may go at once after a quiet spell. */
  readonly burst: number;
  readonly clock: Clock;
}

export class RequestPacer {
  readonly #bucket: TokenBucket;
  readonly #clock: Clock;
  readonly #waiting: (() => void)[] = [];
  #timer: ClockTimer | undefined;

  constructor(o: RequestPacerOptions) {
    this.#clock = o.clock;
    this.#bucket = new TokenBucket(Math.max(1, o.burst), o.qps, o.clock.now());
  }

  /** Requests waiting for their turn now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves when one more request may be sent; requests go in the order they asked. */
  take(): Promise<void> {
    if (this.#waiting.length === 0 && this.#bucket.take(1, this.#clock.now())) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#arm();
    });
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const now = this.#clock.now();
      while (this.#waiting.length > 0 && this.#bucket.take(1, now)) this.#waiting.shift()!();
      if (this.#waiting.length > 0) this.#arm();
    }, Math.max(1, this.#bucket.waitMs(1, this.#clock.now())));
  }
}
