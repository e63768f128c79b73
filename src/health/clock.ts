// Time for the health code comes through this interface so ejection, recovery and breaker timings are tested
// with a fake clock instead of sleeps. Monotonic milliseconds: wall-clock jumps must not eject or readmit.

export interface HealthClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

export const systemHealthClock: HealthClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // Probe timers must never keep a stopping process alive.
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
