// How long an informer waits before its next attempt after a failure. The shape is client-go's reflector
// (k8s.io/client-go/tools/cache/reflector.go: wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)):
// exponential from 800 ms with factor 2, capped at 30 s, jittered up to twice that ([d, 2d): client-go's
// jitter 1.0), and forgotten after 2 minutes without a failure. One change: the retries in the first
// `fastForMs` of a failure streak are capped at `fastMaxMs`. An API server restart (connections refused, then
// 403s until its RBAC is loaded) usually ends within that window, and the exponential curve would otherwise
// have grown to tens of seconds by the time it answers again; a longer failure still backs off to 30 s.
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  /** A failure this long after the previous one starts a new streak. */
  readonly resetAfterMs: number;
  /** Early retries of a streak wait in [fastMaxMs / 2, fastMaxMs) at most. */
  readonly fastMaxMs: number;
  /** How long from a streak's first failure its retries stay fast. */
  readonly fastForMs: number;
}

export const defaultBackoffPolicy: BackoffPolicy = {
  initialMs: 800,
  maxMs: 30_000,
  resetAfterMs: 120_000,
  fastMaxMs: 1_000,
  fastForMs: 60_000,
};

export class Backoff {
  private failures = 0;
  private streakStart = 0;
  private lastFailure = 0;

  constructor(private readonly policy: BackoffPolicy, private readonly random: () => number) {}

  /** Records a failure at `now` and returns the delay before the next attempt. */
  next(now: number): number {
    const p = this.policy;
    if (this.failures > 0 && now - this.lastFailure > p.resetAfterMs) this.failures = 0;
    if (this.failures === 0) this.streakStart = now;
    this.failures = Math.min(this.failures + 1, 64);
    this.lastFailure = now;
    const base = Math.min(p.maxMs, p.initialMs * 2 ** (this.failures - 1));
    const delay = base * (1 + this.random());
    if (now - this.streakStart >= p.fastForMs || delay <= p.fastMaxMs) return delay;
    return p.fastMaxMs * (0.5 + 0.5 * this.random());
  }

  /** The API answered as it should: the next failure starts a new streak. */
  reset(): void {
    this.failures = 0;
  }

  /** Failures in the current streak (0: none). */
  get streak(): number {
    return this.failures;
  }
}
