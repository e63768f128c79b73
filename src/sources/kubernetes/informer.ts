// A supervised informer for one resource. client-node 1.4's informer stops for good on any error other than
// 410, never times a watch out, and has been seen to go silent (reference/kubernetes.md §1). So each run is a
// fresh ListWatch ("generation"); any error, a watchdog (nothing heard for too long) or the periodic relist
// ends it and starts the next, after full-jitter exponential backoff when it failed. Callbacks from an ended
// generation are ignored, so a late event can never resurrect stale state. The cache of trimmed objects lives
// here, across generations: a relist replaces it wholesale, which is how deletes missed while down are seen.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { KubeClient, ListWatchHandle, RawObject, WatchedResource } from './kube-client.ts';
import { trimmers, type Lite } from './lite.ts';

export interface InformerTimings {
  /** Backoff after a failure: a random delay in [0, min(max, base · 2^attempt)). */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Restart when no list, event, bookmark or reconnect has been seen for this long. Must exceed the watch timeout. */
  readonly watchdogMs: number;
  /** Server-side timeout of each watch, drawn uniformly from [min, max) seconds so replicas do not reconnect in step. */
  readonly watchTimeoutSeconds: readonly [min: number, max: number];
  /** A fresh list this often, whatever happened: heals anything a watch missed. 0 disables it. */
  readonly relistIntervalMs: number;
  /** Abort a list that has not answered by then. */
  readonly requestTimeoutMs: number;
}

export const defaultInformerTimings: InformerTimings = {
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  watchdogMs: 330_000,
  watchTimeoutSeconds: [240, 300],
  relistIntervalMs: 15 * 60_000,
  requestTimeoutMs: 30_000,
};

export type RestartReason = 'error' | 'watchdog';

export interface InformerOptions {
  readonly resource: WatchedResource;
  readonly client: KubeClient;
  readonly log: Logger;
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly timings?: Partial<InformerTimings>;
  /** Something in the cache changed. Signal only: the listener reads the cache later. */
  readonly onChange: () => void;
  /** An unplanned restart (the metric wsgate_informer_restarts_total{resource}). */
  readonly onRestart: (resource: WatchedResource, reason: RestartReason) => void;
  /** Every raw object as it arrives (undefined: deleted), for side data the trimmed form drops. */
  readonly onRaw?: (key: string, obj: RawObject | undefined) => void;
  readonly random?: () => number;
}

function keyOf(o: RawObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}

export class InformerSupervisor {
  private readonly opts: InformerOptions;
  private readonly t: InformerTimings;
  private readonly random: () => number;
  private readonly cache = new Map<string, Lite>();
  private handle: ListWatchHandle | undefined;
  private generation = 0;
  private generationStarted = 0;
  private attempt = 0;
  private lastActivity = 0;
  private running = false;
  private hasSynced = false;
  private resolveSynced!: () => void;
  private readonly syncedPromise: Promise<void>;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private relistTimer: NodeJS.Timeout | undefined;

  constructor(opts: InformerOptions) {
    this.opts = opts;
    this.t = { ...defaultInformerTimings, ...opts.timings };
    this.random = opts.random ?? Math.random;
    this.syncedPromise = new Promise((resolve) => (this.resolveSynced = resolve));
  }

  get resource(): WatchedResource {
    return this.opts.resource;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.run();
  }

  stop(): void {
    this.running = false;
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdogTimer);
    clearTimeout(this.relistTimer);
    this.handle?.stop();
    this.handle = undefined;
  }

  /** True once a first full list has been received (it stays true across restarts). */
  synced(): boolean {
    return this.hasSynced;
  }

  whenSynced(): Promise<void> {
    return this.syncedPromise;
  }

  values(): IterableIterator<Lite> {
    return this.cache.values();
  }

  get size(): number {
    return this.cache.size;
  }

  private run(): void {
    if (!this.running) return;
    const gen = ++this.generation;
    const live = (): boolean => gen === this.generation;
    this.generationStarted = Date.now();
    this.lastActivity = Date.now();
    this.armWatchdog();
    clearTimeout(this.relistTimer);
    if (this.t.relistIntervalMs > 0) {
      // ±10% so that replicas and resources do not all relist together.
      const every = this.t.relistIntervalMs * (0.9 + 0.2 * this.random());
      this.relistTimer = setTimeout(() => live() && this.restart('relist'), every);
      this.relistTimer.unref();
    }
    const [min, max] = this.t.watchTimeoutSeconds;
    this.handle = this.opts.client.listWatch(
      this.opts.resource,
      {
        ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
        ...(this.opts.labelSelector !== undefined ? { labelSelector: this.opts.labelSelector } : {}),
        ...(this.opts.fieldSelector !== undefined ? { fieldSelector: this.opts.fieldSelector } : {}),
        watchTimeoutSeconds: () => Math.floor(min + (max - min) * this.random()),
        requestTimeoutMs: this.t.requestTimeoutMs,
      },
      {
        onList: (items) => live() && this.replaceAll(items),
        onEvent: (type, obj) => live() && this.apply(type, obj),
        onActivity: (kind) => {
          if (!live()) return;
          this.lastActivity = Date.now();
          // A watch that delivers proves the connection works; a list alone does not (the watch may still fail).
          if (kind === 'event' || kind === 'bookmark') this.attempt = 0;
        },
        onError: (err) => live() && this.restart('error', err),
      },
    );
  }

  /** Ends this generation and starts the next: at once for a planned relist, after backoff for a failure. */
  private restart(reason: RestartReason | 'relist', err?: unknown): void {
    this.generation++;
    this.handle?.stop();
    this.handle = undefined;
    clearTimeout(this.watchdogTimer);
    if (!this.running) return;
    if (reason === 'relist') {
      this.opts.log.debug({ resource: this.opts.resource }, 'informer periodic relist');
      this.run();
      return;
    }
    if (Date.now() - this.generationStarted > this.t.backoffMaxMs) this.attempt = 0;
    const delay = this.random() * Math.min(this.t.backoffMaxMs, this.t.backoffBaseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    this.opts.log.warn({ resource: this.opts.resource, reason, err: errMessage(err), delayMs: Math.round(delay) }, 'informer restarting');
    this.opts.onRestart(this.opts.resource, reason);
    this.retryTimer = setTimeout(() => this.run(), delay);
    this.retryTimer.unref();
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdogTimer);
    const gen = this.generation;
    const check = (): void => {
      if (gen !== this.generation || !this.running) return;
      const idle = Date.now() - this.lastActivity;
      if (idle >= this.t.watchdogMs) {
        this.restart('watchdog', new Error(`no event or bookmark for ${idle} ms`));
        return;
      }
      this.watchdogTimer = setTimeout(check, this.t.watchdogMs - idle);
      this.watchdogTimer.unref();
    };
    this.watchdogTimer = setTimeout(check, this.t.watchdogMs);
    this.watchdogTimer.unref();
  }

  private replaceAll(items: readonly RawObject[]): void {
    const next = new Map<string, Lite>();
    const trim = trimmers[this.opts.resource];
    for (const o of items) next.set(keyOf(o), trim(o));
    let changed = next.size !== this.cache.size;
    for (const [k, v] of next) {
      if (!changed && !isDeepStrictEqual(this.cache.get(k), v)) changed = true;
    }
    if (this.opts.onRaw) {
      for (const k of this.cache.keys()) if (!next.has(k)) this.opts.onRaw(k, undefined);
      for (const o of items) this.opts.onRaw(keyOf(o), o);
    }
    this.cache.clear();
    for (const [k, v] of next) this.cache.set(k, v);
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.resolveSynced();
      changed = true;
    }
    if (changed) this.opts.onChange();
  }

  private apply(type: 'add' | 'update' | 'delete', obj: RawObject): void {
    const key = keyOf(obj);
    this.opts.onRaw?.(key, type === 'delete' ? undefined : obj);
    if (type === 'delete') {
      if (this.cache.delete(key)) this.opts.onChange();
      return;
    }
    const lite = trimmers[this.opts.resource](obj);
    if (isDeepStrictEqual(this.cache.get(key), lite)) return;
    this.cache.set(key, lite);
    this.opts.onChange();
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
