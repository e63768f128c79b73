// A fake clock for tests: time moves only in advance(), timers and repeating callbacks fire in deadline order
// (ties in the order they were set).
import type { HealthClock } from '../../src/health/clock.ts';
import type { WheelClock } from '../../src/util/timer-wheel.ts';

interface Entry {
  at: number;
  readonly fn: () => void;
  /** Repeating: the period in ms. */
  readonly every?: number;
}

export class ManualClock implements HealthClock, WheelClock {
  #now = 0;
  #seq = 0;
  readonly #timers = new Map<number, Entry>();

  constructor(start = 1000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(t: unknown): void {
    this.#timers.delete(t as number);
  }

  repeat(fn: () => void, ms: number): () => void {
    const id = ++this.#seq;
    const every = Math.max(1, ms);
    this.#timers.set(id, { at: this.#now + every, fn, every });
    return () => this.#timers.delete(id);
  }

  /** Timers and repeating callbacks set and not cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by ms, firing every timer that falls due (including ones armed by those timers). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, Entry] | undefined;
      for (const e of this.#timers) if (e[1].at <= target && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      const [id, entry] = next;
      this.#now = Math.max(this.#now, entry.at);
      if (entry.every === undefined) this.#timers.delete(id);
      else entry.at += entry.every;
      entry.fn();
    }
    this.#now = target;
  }
}
