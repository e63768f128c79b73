// One coarse hashed timer wheel shared by every connection of a process: close timeouts now, heartbeats and
// idle timeouts later. A Node timer per connection costs a heap entry and a callback per (re)arm; here arming
// is an O(1) splice into an intrusive list, and a single unref'd interval runs only while something is armed.
// Deadlines fire on the first tick at or after them, so precision is one tick (default 100 ms): fine for
// timeouts measured in seconds, not for anything finer.
import { systemClock, type Clock } from './clock.ts';

export interface TimerWheelOptions {
  /** Tick length in ms (default 100). */
  readonly tickMs?: number;
  /** Number of slots; deadlines further than slots × tickMs wait for later rounds (default 512). */
  readonly slots?: number;
  /** Its time and its one interval (Clock.repeat); the process's clock in production, a manual one in tests. */
  readonly clock?: Clock;
}

// WheelTimer.slot when it is in no slot: idle, or unlinked and about to fire.
const IDLE = -1;
const DUE = -2;

/**
 * A reusable deadline owned by one connection (create it once, arm and disarm it as often as needed). Either
 * made by TimerWheel.timer(fn), or extended by the object that owns the deadline, overriding fire(): that
 * object is then its own timer, with no callback closure or separate timer object per connection.
 */
export class WheelTimer {
  /** @internal Tick at which it fires (a small integer: a time in ms would be a boxed number per timer). */ due = 0;
  /** @internal Its slot when armed, else IDLE or DUE. */ slot = IDLE;
  /** @internal */ next: WheelTimer | undefined = undefined;
  /** @internal */ prev: WheelTimer | undefined = undefined;
  readonly wheel: TimerWheel;

  constructor(wheel: TimerWheel) {
    this.wheel = wheel;
  }

  /** Fire once, delayMs from now (re-arming moves the deadline). */
  arm(delayMs: number): void {
    this.wheel.arm(this, delayMs);
  }

  disarm(): void {
    this.wheel.disarm(this);
  }

  get armed(): boolean {
    return this.slot !== IDLE;
  }

  /** The deadline passed. */
  fire(): void {}
}

class CallbackTimer extends WheelTimer {
  readonly #fn: () => void;

  constructor(wheel: TimerWheel, fn: () => void) {
    super(wheel);
    this.#fn = fn;
  }

  override fire(): void {
    this.#fn();
  }
}

export class TimerWheel {
  readonly tickMs: number;
  readonly #clock: Clock;
  readonly #slots: (WheelTimer | undefined)[];
  readonly #due: WheelTimer[] = [];
  #count = 0;
  /** Absolute tick number up to which slots have been processed. */
  #cursor = 0;
  #stop: (() => void) | undefined = undefined;

  constructor(opts: TimerWheelOptions = {}) {
    this.tickMs = opts.tickMs ?? 100;
    this.#clock = opts.clock ?? systemClock();
    this.#slots = new Array<WheelTimer | undefined>(opts.slots ?? 512).fill(undefined);
  }

  now(): number {
    return this.#clock.now();
  }

  /** Armed timers (for tests and leak checks). */
  get size(): number {
    return this.#count;
  }

  /** Whether the shared interval is running. */
  get running(): boolean {
    return this.#stop !== undefined;
  }

  timer(fn: () => void): WheelTimer {
    return new CallbackTimer(this, fn);
  }

  arm(t: WheelTimer, delayMs: number): void {
    if (t.slot !== IDLE) this.disarm(t);
    const now = this.#clock.now();
    if (this.#stop === undefined) {
      this.#cursor = Math.floor(now / this.tickMs);
      this.#stop = this.#clock.repeat(this.#tick, this.tickMs);
    }
    // The first tick at or after the deadline; one already processed is replaced by the next, so it is never
    // skipped. Processing tick T means now >= T × tickMs, so the deadline has passed when its tick comes.
    const tick = Math.max(Math.ceil((now + Math.max(0, delayMs)) / this.tickMs), this.#cursor + 1);
    const slot = tick % this.#slots.length;
    const head = this.#slots[slot];
    t.due = tick;
    t.slot = slot;
    t.prev = undefined;
    t.next = head;
    if (head) head.prev = t;
    this.#slots[slot] = t;
    this.#count++;
  }

  disarm(t: WheelTimer): void {
    if (t.slot === IDLE) return;
    if (t.slot !== DUE) {
      if (t.prev) t.prev.next = t.next;
      else this.#slots[t.slot] = t.next;
      if (t.next) t.next.prev = t.prev;
      t.next = t.prev = undefined;
    }
    t.slot = IDLE;
    this.#count--;
    if (this.#count === 0) this.#halt();
  }

  /** Process every tick up to now; the interval calls it, tests driving a manual clock may too. */
  readonly #tick = (): void => {
    const now = this.#clock.now();
    const target = Math.floor(now / this.tickMs);
    const n = this.#slots.length;
    // After a stall longer than a whole round, one pass over every slot is enough.
    const from = target - this.#cursor > n ? target - n + 1 : this.#cursor + 1;
    const due = this.#due;
    for (let tick = from; tick <= target; tick++) {
      let t = this.#slots[tick % n];
      while (t) {
        const next = t.next;
        // Timers of later rounds share the slot.
        if (t.due <= target) {
          if (t.prev) t.prev.next = next;
          else this.#slots[t.slot] = next;
          if (next) next.prev = t.prev;
          t.next = t.prev = undefined;
          t.slot = DUE;
          due.push(t);
        }
        t = next;
      }
    }
    this.#cursor = Math.max(this.#cursor, target);
    // Fire after unlinking so callbacks may arm and disarm freely (a disarmed DUE timer is skipped).
    for (let i = 0; i < due.length; i++) {
      const t = due[i];
      if (t.slot !== DUE) continue;
      t.slot = IDLE;
      this.#count--;
      t.fire();
    }
    due.length = 0;
    if (this.#count === 0) this.#halt();
  };

  /** Shutdown: disarm every timer (none fires) and stop the interval. */
  stop(): void {
    for (let i = 0; i < this.#slots.length; i++) {
      let t = this.#slots[i];
      this.#slots[i] = undefined;
      while (t) {
        const next = t.next;
        t.next = t.prev = undefined;
        t.slot = IDLE;
        t = next;
      }
    }
    for (const t of this.#due) t.slot = IDLE;
    this.#count = 0;
    this.#halt();
  }

  /** Run due timers now (tests with a manual clock). */
  advance(): void {
    if (this.#stop !== undefined) this.#tick();
  }

  #halt(): void {
    if (this.#stop === undefined) return;
    const stop = this.#stop;
    this.#stop = undefined;
    stop();
  }
}
