// The one time source of the process: the timer wheel (close deadlines, heartbeats, idle timeouts), drain pacing,
// handshake deadlines, upstream connect and handshake timeouts, health (ejection, breakers, active checks), token
// buckets (connection and message rates), the controller's hold-off, status write retries and leader election
// read time and set timers only through a Clock, created once by the composition root and passed down, so tests
// drive every deadline by hand (test/support/manual-clock.ts) instead of sleeping.
//
// now() is monotonic: a wall-clock step (NTP, a VM resumed) must not eject an endpoint, expire a lease or
// refill a bucket. Wall time (timestamps written into a Lease, JWT exp/nbf, status conditions) is another
// concern and is injected separately where it is needed. Randomness is not time and is not here either.

declare const timerBrand: unique symbol;
/** A pending setTimeout of a Clock; only that clock's clearTimeout understands it. */
export interface ClockTimer {
  readonly [timerBrand]: true;
}

export interface Clock {
  /** Monotonic milliseconds, whole. */
  now(): number;
  /** Calls fn once, ms from now. Never keeps the process alive. */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(t: ClockTimer | undefined): void;
  /** Calls fn every ms until the returned function is called. Never keeps the process alive. */
  repeat(fn: () => void, ms: number): () => void;
}

/** Real time. Timers are unref'd: a pending deadline must never hold a stopping process open. */
export function systemClock(): Clock {
  return {
    // Whole milliseconds: the times connections keep (ping sent, pong answered, next ping, last activity) are
    // then small integers stored in their objects, where a fractional time would be a separately boxed number.
    // Past 2^31 ms (24 days of uptime) they are boxed again, which costs memory, nothing else.
    now: () => Math.floor(performance.now()),
    setTimeout(fn, ms) {
      const t = setTimeout(fn, ms);
      t.unref();
      return t as unknown as ClockTimer;
    },
    clearTimeout(t) {
      if (t !== undefined) clearTimeout(t as unknown as NodeJS.Timeout);
    },
    repeat(fn, ms) {
      const h = setInterval(fn, ms);
      h.unref();
      return () => clearInterval(h);
    },
  };
}
