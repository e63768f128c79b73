// Paced closes: N connections leaving over a window W close at (i + u_i)·W/N with u_i uniform in [0, 1) —
// stratified jitter, so the closes are spread evenly, never bunched, and the reconnects that follow are too.
// One timer for the whole schedule, armed for the earliest deadline. flush() closes queued connections at once
// (all at the end of a shutdown; one endpoint's when it stops serving or leaves while its drain is under way).
import type { Clock, ClockTimer } from '../util/clock.ts';

export interface Drainable {
  draining: boolean;
  close(code: number, reason: string): void;
}

interface Entry<T> {
  readonly at: number;
  readonly conn: T;
  readonly code: number;
  readonly reason: string;
}

export class DrainScheduler<T extends Drainable> {
  readonly #clock: Clock;
  /** Uniform in [0, 1): the shuffle and the jitter (randomness is not time, so it is injected beside the clock). */
  readonly #random: () => number;
  /** At fire time: still close it? (e.g. the endpoint came back in a newer snapshot) */
  readonly #stillLeaving: (c: T) => boolean;
  readonly #onClosed: (c: T) => void;
  readonly #onSkipped: (c: T) => void;
  #queue: Entry<T>[] = [];
  #timer: ClockTimer | undefined;
  #timerAt = Infinity;

  constructor(opts: { clock: Clock; random: () => number; stillLeaving?: (c: T) => boolean; onClosed?: (c: T) => void; onSkipped?: (c: T) => void }) {
    this.#clock = opts.clock;
    this.#random = opts.random;
    this.#stillLeaving = opts.stillLeaving ?? (() => true);
    this.#onClosed = opts.onClosed ?? (() => {});
    this.#onSkipped = opts.onSkipped ?? (() => {});
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** within: connections already queued to close after this window are rescheduled inside it (a shutdown
   *  shorter than a backend drain in progress). */
  schedule(conns: readonly T[], windowMs: number, code: number, reason: string, opts: { within?: boolean } = {}): void {
    const start = this.#clock.now();
    const fresh = conns.filter((c) => !c.draining);
    if (opts.within) {
      const deadline = start + windowMs;
      const late = this.#queue.filter((e) => e.at > deadline);
      if (late.length > 0) {
        this.#queue = this.#queue.filter((e) => e.at <= deadline);
        for (const e of late) {
          e.conn.draining = false;
          fresh.push(e.conn);
        }
      }
    }
    if (fresh.length === 0) return;
    const slot = windowMs / fresh.length;
    // Shuffle so the order of arrival does not decide who leaves first.
    const order = fresh.map((c) => ({ c, k: this.#random() })).sort((a, b) => a.k - b.k);
    order.forEach(({ c }, i) => {
      c.draining = true;
      this.#queue.push({ at: start + (i + this.#random()) * slot, conn: c, code, reason });
    });
    this.#queue.sort((a, b) => a.at - b.at);
    this.#arm();
  }

  /** Closes now, in schedule order, every queued connection `which` selects (all by default: the end of a
   *  shutdown); the others keep their turn. */
  flush(which: (c: T) => boolean = () => true): void {
    const due: Entry<T>[] = [];
    const keep: Entry<T>[] = [];
    for (const e of this.#queue) (which(e.conn) ? due : keep).push(e);
    if (due.length === 0) return;
    this.#queue = keep;
    this.#disarm();
    for (const e of due) this.#fire(e);
    this.#arm();
  }

  cancelAll(): void {
    this.#queue = [];
    this.#disarm();
  }

  #fire(e: Entry<T>): void {
    if (!this.#stillLeaving(e.conn)) {
      e.conn.draining = false;
      this.#onSkipped(e.conn);
      return;
    }
    e.conn.close(e.code, e.reason);
    this.#onClosed(e.conn);
  }

  #arm(): void {
    const next = this.#queue[0];
    if (!next || next.at >= this.#timerAt) return;
    this.#disarm();
    this.#timerAt = next.at;
    this.#timer = this.#clock.setTimeout(() => this.#tick(), Math.max(0, next.at - this.#clock.now()));
  }

  #disarm(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #tick(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    let i = 0;
    while (i < this.#queue.length && this.#queue[i].at <= now + 1) i++;
    const due = this.#queue.splice(0, i);
    for (const e of due) this.#fire(e);
    this.#arm();
  }
}
