// A token bucket on an injected clock: the connection rate per client address and the per-message limits use
// it, and tests drive time by hand instead of sleeping. Every call takes `now` (Clock.now(), monotonic ms)
// from its caller, so a bucket holds no clock of its own.

export class TokenBucket {
  readonly capacity: number;
  /** Tokens per millisecond. */
  readonly #rate: number;
  #tokens: number;
  #at: number;

  constructor(capacity: number, perSecond: number, now: number) {
    this.capacity = capacity;
    this.#rate = perSecond / 1000;
    this.#tokens = capacity;
    this.#at = now;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.capacity, this.#tokens + (now - this.#at) * this.#rate);
      this.#at = now;
    }
  }

  /** Takes n tokens when there are that many. */
  take(n: number, now: number): boolean {
    this.#refill(now);
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Takes n tokens even into debt (a message already on its way cannot be split); the debt is repaid
   *  before the next take succeeds. */
  force(n: number, now: number): void {
    this.#refill(now);
    this.#tokens -= n;
  }

  /** Milliseconds until n tokens (capped at capacity) are available; 0 when they are. */
  waitMs(n: number, now: number): number {
    this.#refill(now);
    const need = Math.min(n, this.capacity) - this.#tokens;
    return need <= 0 ? 0 : Math.ceil(need / this.#rate);
  }

  /** Full again: nothing to remember about this key. */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.capacity;
  }
}
