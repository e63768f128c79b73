// Restarting the workers of `--workers N` that die. A worker that dies soon after it started is likely to die
// again (a bad host, a resource it cannot get): each quick death doubles the wait before the next start, up to a
// ceiling, so a crash loop costs a start every half minute instead of two a second; a worker that ran long enough
// resets it. Timers are on the injected clock, and none fires after stop() (a shutdown forks nothing).
import type { Clock, ClockTimer } from '../util/clock.ts';

export interface RespawnOptions {
  readonly clock: Clock;
  readonly fork: () => void;
  /** The wait after a first death. */
  readonly baseMs?: number;
  readonly maxMs?: number;
  /** A worker that lived this long did not crash-loop: the next wait starts again from baseMs. */
  readonly stableMs?: number;
}

export class Respawner {
  readonly #o: Required<RespawnOptions>;
  readonly #pending = new Set<ClockTimer>();
  #quickDeaths = 0;
  #stopped = false;

  constructor(o: RespawnOptions) {
    this.#o = { baseMs: 500, maxMs: 30_000, stableMs: 60_000, ...o };
  }

  /** A worker started at `startedAt` (the clock's now() then) died: another starts after the backoff. Returns the
   *  wait, or undefined once stopped. */
  died(startedAt: number): number | undefined {
    if (this.#stopped) return undefined;
    const { clock, baseMs, maxMs, stableMs } = this.#o;
    if (clock.now() - startedAt >= stableMs) this.#quickDeaths = 0;
    const wait = Math.min(maxMs, baseMs * 2 ** this.#quickDeaths);
    this.#quickDeaths++;
    const t = clock.setTimeout(() => {
      this.#pending.delete(t);
      this.#o.fork();
    }, wait);
    this.#pending.add(t);
    return wait;
  }

  /** No more starts, including those already waiting. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#pending) this.#o.clock.clearTimeout(t);
    this.#pending.clear();
  }
}
