// Time for timers that tests must control (retry backoff, watchdogs): a fake clock moves it instead of sleeps.
// Monotonic milliseconds, so a wall-clock jump neither fires nor delays a timer.

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // Background timers must never keep a stopping process alive.
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
