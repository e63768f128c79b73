// A fake clock for tests: time moves only in advance(), timers and repeating callbacks fire in deadline order
// (ties in the order they were set).
import type { Clock, ClockTimer } from '../../src/util/clock.ts';

interface Entry {
  at: number;
  readonly fn: () => void;
  /** Repeating: the period in ms. */
  readonly every?: number;
}

export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly #timers = new Map<number, Entry>();
  readonly #waiters: (() => void)[] = [];
  readonly #setWaiters: { readonly which: (ms: number) => boolean; readonly resolve: (ms: number) => void }[] = [];

  constructor(start = 1000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    this.#added();
    for (const w of this.#setWaiters.filter((x) => x.which(ms))) {
      this.#setWaiters.splice(this.#setWaiters.indexOf(w), 1);
      w.resolve(ms);
    }
    return id as unknown as ClockTimer;
  }

  clearTimeout(t: ClockTimer | undefined): void {
    if (t !== undefined) this.#timers.delete(t as unknown as number);
  }

  repeat(fn: () => void, ms: number): () => void {
    const id = ++this.#seq;
    const every = Math.max(1, ms);
    this.#timers.set(id, { at: this.#now + every, fn, every });
    this.#added();
    return () => this.#timers.delete(id);
  }

  /** Timers and repeating callbacks set and not cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the earliest pending timer falls due; undefined when none is pending. */
  get nextAt(): number | undefined {
    let at: number | undefined;
    for (const e of this.#timers.values()) if (at === undefined || e.at < at) at = e.at;
    return at;
  }

  /** Resolves once something is pending (at once if something is): code under test reacting to I/O sets its
   *  timers at moments the test cannot see, and this is the event to wait for instead of polling. */
  whenPending(): Promise<void> {
    if (this.#timers.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Resolves with its delay at the next setTimeout that `which` selects: the event a test waits for when code
   *  reacting to I/O arms one particular timer (a hold-off, a retry) among others always pending. */
  whenSet(which: (ms: number) => boolean): Promise<number> {
    return new Promise((resolve) => this.#setWaiters.push({ which, resolve }));
  }

  #added(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  /** Time passes while the event loop is blocked: nothing fires now; what fell due fires once at the next
   *  advance() (a repeating callback once, not once per period missed, as setInterval does). */
  stall(ms: number): void {
    this.#now += ms;
    for (const e of this.#timers.values()) if (e.at < this.#now) e.at = this.#now;
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
