// The write loop every status writer shares: a desired value per key, written only while this replica leads,
// with at most `concurrency` requests in flight (the client-side bound on the API server's load: a relist of
// thousands of objects becomes a steady trickle, not a burst), a value equal to the last one written skipped,
// failed writes retried on the injected clock after a delay that doubles per consecutive failure of the key, a
// write the API server refuses for good (api-error.ts decides which) not sent again until the key's value
// changes, and everything rewritten on winning leadership, since the previous leader may have left anything
// behind. What a write sends is the writer's business.
import type { Logger } from 'pino';
import { refusedForGood, type KubeApiError } from '../kube/api-error.ts';
import { listChanges } from '../model/list-changes.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';

/** Status writes in flight at once: enough to keep up with a relist, few enough not to crowd the API server. */
export const defaultStatusConcurrency = 4;

export interface KeyedWriteQueueOptions<T> {
  readonly log: Logger;
  readonly clock: Clock;
  /** Parallel writes (default defaultStatusConcurrency). */
  readonly concurrency?: number;
  /** Delay before a failed write is tried again (default 2 s), on clock; doubled per consecutive failure of
   *  the key up to maxRetryDelayMs. */
  readonly retryDelayMs?: number;
  /** The longest delay between retries of one key (default 30 s). */
  readonly maxRetryDelayMs?: number;
  /**
   * Sends key's value. Resolves true once the server has it (an unchanged value is not sent again), false when
   * it could not be written and should be tried on the next set() (the object is gone). Rejects to be retried,
   * unless the rejection is a refusal for good (refusedForGood): then the value is not sent again.
   */
  readonly write: (key: string, value: T) => Promise<boolean>;
  /** A write refused for good, once per refusal (it is not retried, so not repeated either). */
  readonly onRefused?: (key: string, err: KubeApiError) => void;
  /** Two values that would write the same thing (default: the same object or equal JSON). */
  readonly same?: (a: T, b: T) => boolean;
}

const sameJson = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

export class KeyedWriteQueue<T> {
  private readonly o: KeyedWriteQueueOptions<T>;
  private readonly same: (a: T, b: T) => boolean;
  private desired = new Map<string, T>();
  /** The value each key last had on the server, as this leader wrote it. */
  private readonly written = new Map<string, T>();
  private readonly dirty = new Set<string>();
  /** Keys whose write failed, with the clock time their retry falls due (not in dirty, so no busy worker takes
   *  them at once). */
  private readonly failed = new Map<string, number>();
  /** Consecutive failures per key since its last write that went through: the exponent of its retry delay. */
  private readonly failures = new Map<string, number>();
  /** The value each key had when the API server refused it for good: not sent again while it is desired. */
  private readonly refused = new Map<string, T>();
  private leading = false;
  private stopped = false;
  private workers = 0;
  private retryTimer: ClockTimer | undefined;
  /** When retryTimer fires. */
  private retryAt = 0;
  private waiters: (() => void)[] = [];

  constructor(opts: KeyedWriteQueueOptions<T>) {
    this.o = opts;
    this.same = opts.same ?? sameJson;
  }

  /** Every key's desired value; keys not listed are forgotten. */
  set(next: ReadonlyMap<string, T>): void {
    for (const key of this.desired.keys()) {
      if (!next.has(key)) {
        this.written.delete(key);
        this.dirty.delete(key);
        this.failed.delete(key);
        this.failures.delete(key);
        this.refused.delete(key);
      }
    }
    for (const [key, v] of next) if (this.wants(key, v)) this.dirty.add(key);
    this.desired = new Map(next);
    this.kick();
  }

  /** New values for keys that are desired already; every other key keeps its value. Costs what changed, where
   *  set() costs every key. */
  replace(changed: Iterable<readonly [string, T]>): void {
    for (const [key, v] of changed) {
      if (!this.desired.has(key)) throw new Error(`status key ${key} replaced but never set`);
      this.desired.set(key, v);
      if (this.wants(key, v)) this.dirty.add(key);
    }
    this.kick();
  }

  /** v is to be written: it is not what the server has from this leader, nor a value the server refused. */
  private wants(key: string, v: T): boolean {
    const done = this.written.get(key);
    if (done !== undefined && this.same(done, v)) return false;
    const refused = this.refused.get(key);
    if (refused === undefined) return true;
    if (this.same(refused, v)) return false;
    this.refused.delete(key);
    return true;
  }

  /** The value of key is on the server as it is desired now. */
  isWritten(key: string): boolean {
    const d = this.desired.get(key);
    const w = this.written.get(key);
    return d !== undefined && w !== undefined && this.same(d, w);
  }

  isLeading(): boolean {
    return this.leading && !this.stopped;
  }

  /** Won → rewrite every value, refused ones included (the refusal may have been this replica's permissions,
   *  since fixed), with no backoff carried over; lost → stop writing (nothing else changes). */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) {
      this.written.clear();
      this.refused.clear();
      this.failures.clear();
      for (const key of this.desired.keys()) this.dirty.add(key);
      this.kick();
    } else {
      this.cancelRetry();
      this.notifyIdle();
    }
  }

  stop(): void {
    this.stopped = true;
    this.leading = false;
    this.cancelRetry();
    this.notifyIdle();
  }

  /** Resolves when nothing is queued or in flight (or writing is off, or only retries and refusals are pending). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Forgotten as well as cleared: a later failure must be able to arm a new retry. The failed keys go too:
   *  winning leadership again rewrites every key anyway. */
  private cancelRetry(): void {
    this.o.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.failed.clear();
  }

  private isIdle(): boolean {
    return this.workers === 0 && (this.dirty.size === 0 || !this.leading);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  private kick(): void {
    const max = this.o.concurrency ?? defaultStatusConcurrency;
    while (this.leading && !this.stopped && this.workers < max && this.workers < this.dirty.size) {
      this.workers++;
      void this.work().finally(() => {
        this.workers--;
        this.notifyIdle();
      });
    }
    this.notifyIdle();
  }

  private async work(): Promise<void> {
    while (this.leading && !this.stopped) {
      const key = this.dirty.values().next().value;
      if (key === undefined) break;
      this.dirty.delete(key);
      const value = this.desired.get(key);
      if (value === undefined) continue;
      try {
        const done = await this.o.write(key, value);
        this.failed.delete(key);
        this.failures.delete(key);
        this.refused.delete(key);
        // A newer value may have arrived meanwhile; it is in dirty again and compared then.
        if (done && this.desired.get(key) === value && this.leading) this.written.set(key, value);
      } catch (err) {
        if (refusedForGood(err)) this.refuse(key, value, err);
        else this.retryLater(key, err);
      }
    }
  }

  private refuse(key: string, value: T, err: KubeApiError): void {
    this.failed.delete(key);
    this.failures.delete(key);
    // Recorded even when a newer value is queued meanwhile: that value's write clears or replaces the record.
    this.refused.set(key, value);
    this.o.log.warn({ key, status: err.status, err: err.message }, 'status write refused by the API server; not sent again until its value changes or leadership is won again');
    this.o.onRefused?.(key, err);
  }

  private retryLater(key: string, err: unknown): void {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const base = this.o.retryDelayMs ?? 2_000;
    const max = this.o.maxRetryDelayMs ?? 30_000;
    const delay = Math.min(base * 2 ** (n - 1), max);
    this.o.log.warn({ key, status: (err as { status?: unknown }).status, err: (err as Error).message, retryInMs: delay }, 'status write failed; will retry');
    // A key set again meanwhile is dirty already and written with its new value.
    if (this.dirty.has(key)) return;
    this.failed.set(key, this.o.clock.now() + delay);
    this.armRetry();
  }

  /** One timer, for the earliest retry due. */
  private armRetry(): void {
    let next: number | undefined;
    for (const at of this.failed.values()) if (next === undefined || at < next) next = at;
    if (next === undefined) return;
    if (this.retryTimer !== undefined && this.retryAt <= next) return;
    this.o.clock.clearTimeout(this.retryTimer);
    this.retryAt = next;
    this.retryTimer = this.o.clock.setTimeout(() => {
      this.retryTimer = undefined;
      const now = this.o.clock.now();
      for (const [k, at] of this.failed) {
        if (at > now) continue;
        this.failed.delete(k);
        this.dirty.add(k);
      }
      this.armRetry();
      this.kick();
    }, next - this.o.clock.now());
  }
}

/** What every status writer passes on to its queue. */
export interface StatusWriterQueueOptions {
  /** The process's clock (monotonic): the retry delays run on it. */
  readonly clock: Clock;
  /** Parallel writes (default defaultStatusConcurrency). */
  readonly concurrency?: number;
  /** Delay before a failed write is tried again (default 2 s, doubled per consecutive failure up to 30 s), on clock. */
  readonly retryDelayMs?: number;
  /** A write the API server refused for good: the kind of object and the HTTP status (the metric's labels; the
   *  object itself is in the log, never a label). */
  readonly onRefused?: (kind: string, status: number) => void;
}

/**
 * A status writer on a KeyedWriteQueue: the leader lifecycle (setLeading, stop, idle) and the body last sent
 * per key, so that a write whose body is unchanged is not sent. Subclasses turn a desired value into requests.
 */
export abstract class QueuedStatusWriter<T, B> {
  protected readonly queue: KeyedWriteQueue<T>;
  /** The body last sent per key, as this leader sent it. */
  protected readonly applied = new Map<string, { readonly json: string; readonly body: B }>();
  /** The list setDesiredList was last given (undefined after a setDesired). */
  private list: readonly T[] | undefined;
  /** Requests sent to the API server (for tests and debugging). */
  writes = 0;

  /** `opts`: a writer's options (clock, concurrency, retryDelayMs, onRefused); `log`: the writer's; `kindOf`: the
   *  kind of object a key names, for onRefused. */
  constructor(opts: StatusWriterQueueOptions, log: Logger, kindOf: (key: string) => string) {
    const { onRefused } = opts;
    this.queue = new KeyedWriteQueue<T>({
      log,
      clock: opts.clock,
      ...(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }),
      ...(opts.retryDelayMs === undefined ? {} : { retryDelayMs: opts.retryDelayMs }),
      ...(onRefused === undefined ? {} : { onRefused: (key: string, err: KubeApiError) => onRefused(kindOf(key), err.status) }),
      write: (key, value) => this.write(key, value),
    });
  }

  /** Sends key's value; same contract as KeyedWriteQueueOptions.write. */
  protected abstract write(key: string, value: T): Promise<boolean>;

  /** Every key's desired value; the others are forgotten. */
  protected setDesired(next: ReadonlyMap<string, T>): void {
    this.list = undefined;
    for (const key of this.applied.keys()) if (!next.has(key)) this.applied.delete(key);
    this.queue.set(next);
  }

  /** setDesired for a list in key order that shares the values that did not change with the list before it:
   *  while the keys stay the same, only the values that are not the same object are looked at. */
  protected setDesiredList(list: readonly T[], keyOf: (v: T) => string): void {
    const changed = listChanges(list, this.list, keyOf);
    if (changed === undefined) this.setDesired(new Map(list.map((v) => [keyOf(v), v])));
    else this.queue.replace(changed.map(({ now }) => [keyOf(now), now] as const));
    this.list = list;
  }

  /** Sends body with send() unless it is the body last sent for key. */
  protected async sendChanged(key: string, body: B, send: (body: B) => Promise<void>): Promise<void> {
    const json = JSON.stringify(body);
    if (this.applied.get(key)?.json === json) return;
    this.writes++;
    await send(body);
    if (this.queue.isLeading()) this.applied.set(key, { json, body });
  }

  /** Wire to the elector: won → rewrite everything (the previous leader may have left anything); lost → stop writing. */
  setLeading(leading: boolean): void {
    if (leading) this.applied.clear();
    this.queue.setLeading(leading);
  }

  stop(): void {
    this.queue.stop();
  }

  /** Resolves when nothing is queued or in flight (or writing is off). */
  idle(): Promise<void> {
    return this.queue.idle();
  }
}
