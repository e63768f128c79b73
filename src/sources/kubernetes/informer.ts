// A supervised informer for one resource. client-node 1.4's informer stops for good on any error other than
// 410, never times a watch out, and has been seen to go silent (reference/kubernetes.md §1). So each run is a
// fresh ListWatch ("generation"); any error, a watchdog (nothing heard for too long) or the periodic relist
// ends it and starts the next, after backoff (backoff.ts) when it failed. Callbacks from an ended
// generation are ignored, so a late event can never resurrect stale state. The cache of trimmed objects lives
// here, across generations: a relist replaces it wholesale, which is how deletes missed while down are seen.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { systemClock, type Clock, type ClockTimer } from '../../util/clock.ts';
import { Backoff, defaultBackoffPolicy, type BackoffPolicy } from './backoff.ts';
import type { KubeClient, ListWatchHandle, RawObject, WatchedResource } from '../../kube/kube-client.ts';
import { trimmers, type Lite } from './lite.ts';

export interface InformerTimings {
  /** Delays between attempts after a failure. */
  readonly backoff: BackoffPolicy;
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
  backoff: defaultBackoffPolicy,
  watchdogMs: 330_000,
  watchTimeoutSeconds: [240, 300],
  relistIntervalMs: 15 * 60_000,
  requestTimeoutMs: 30_000,
};

export type RestartReason = 'error' | 'watchdog';

/** listing: a list is in flight; watching: listed, and watching from there; backoff: waiting to retry. */
export type InformerState = 'idle' | 'listing' | 'watching' | 'backoff' | 'stopped';

export interface InformerOptions {
  readonly resource: WatchedResource;
  readonly client: KubeClient;
  readonly log: Logger;
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** A custom resource served at another version than the client's default for it. */
  readonly version?: string;
  /** Trims each object instead of the resource's own trimmer (the published Service: its addresses only). */
  readonly trim?: (o: RawObject) => Lite;
  readonly timings?: Partial<InformerTimings>;
  /** These cached objects changed (trimmed, before and after). Signal only: the listener reads the cache later. */
  readonly onChange: (changes: readonly CacheChange[]) => void;
  /** An unplanned restart (the metric wsgate_informer_restarts_total{resource}). */
  readonly onRestart: (resource: WatchedResource, reason: RestartReason) => void;
  /** Every raw object as it arrives (undefined: deleted), for side data the trimmed form drops. */
  readonly onRaw?: (key: string, obj: RawObject | undefined) => void;
  /** A list succeeded after one or more failures: the API server answers again. */
  readonly onRecovered?: () => void;
  readonly random?: () => number;
  /** Backoff, watchdog and relist timers. */
  readonly clock?: Clock;
}

/** One cache entry that changed: absent before means added, absent after means deleted. */
export interface CacheChange {
  readonly key: string;
  readonly before?: Lite;
  readonly after?: Lite;
}

function keyOf(o: RawObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}

export class InformerSupervisor {
  private readonly opts: InformerOptions;
  private readonly t: InformerTimings;
  private readonly random: () => number;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly trim: (o: RawObject) => Lite;
  private cache = new Map<string, Lite>();
  /** The resourceVersion each cached object had: an object listed again at the same version is the same object,
   *  and keeps its trimmed form without being trimmed and compared again. */
  private versions = new Map<string, string>();
  /** A list being read page by page: what it has brought so far. */
  private listing: { readonly cache: Map<string, Lite>; readonly versions: Map<string, string> } | undefined;
  private handle: ListWatchHandle | undefined;
  private generation = 0;
  private lastActivity = 0;
  private current: InformerState = 'idle';
  private retryAt = 0;
  private running = false;
  private hasSynced = false;
  private resolveSynced!: () => void;
  private readonly syncedPromise: Promise<void>;
  private retryTimer: ClockTimer | undefined;
  private watchdogTimer: ClockTimer | undefined;
  private relistTimer: ClockTimer | undefined;

  constructor(opts: InformerOptions) {
    this.opts = opts;
    this.t = { ...defaultInformerTimings, ...opts.timings };
    this.random = opts.random ?? Math.random;
    this.clock = opts.clock ?? systemClock();
    this.backoff = new Backoff(this.t.backoff, this.random);
    this.trim = opts.trim ?? trimmers[opts.resource];
    this.syncedPromise = new Promise((resolve) => (this.resolveSynced = resolve));
  }

  get resource(): WatchedResource {
    return this.opts.resource;
  }

  get namespace(): string | undefined {
    return this.opts.namespace;
  }

  get state(): InformerState {
    return this.current;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.run();
  }

  stop(): void {
    this.running = false;
    this.current = 'stopped';
    this.generation++;
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.watchdogTimer);
    this.clock.clearTimeout(this.relistTimer);
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

  /** The cached objects by the key their changes carry ("namespace/name"; "/name" when cluster-scoped). */
  entries(): IterableIterator<[string, Lite]> {
    return this.cache.entries();
  }

  get size(): number {
    return this.cache.size;
  }

  /**
   * Another informer's list just succeeded after failures: the API server answers again. A retry that is
   * further away than the fast cap is brought forward, so no informer sits out a long backoff after recovery.
   */
  retrySoon(): void {
    if (this.current !== 'backoff') return;
    const soon = this.random() * this.t.backoff.fastMaxMs;
    if (this.retryAt - this.clock.now() <= soon) return;
    this.armRetry(soon);
  }

  private run(): void {
    if (!this.running) return;
    const gen = ++this.generation;
    const live = (): boolean => gen === this.generation;
    this.current = 'listing';
    this.lastActivity = this.clock.now();
    this.armWatchdog();
    this.clock.clearTimeout(this.relistTimer);
    if (this.t.relistIntervalMs > 0) {
      // ±10% so that replicas and resources do not all relist together.
      const every = this.t.relistIntervalMs * (0.9 + 0.2 * this.random());
      this.relistTimer = this.clock.setTimeout(() => live() && this.restart('relist'), every);
    }
    const [min, max] = this.t.watchTimeoutSeconds;
    this.handle = this.opts.client.listWatch(
      this.opts.resource,
      {
        ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
        ...(this.opts.labelSelector !== undefined ? { labelSelector: this.opts.labelSelector } : {}),
        ...(this.opts.fieldSelector !== undefined ? { fieldSelector: this.opts.fieldSelector } : {}),
        ...(this.opts.version !== undefined ? { version: this.opts.version } : {}),
        watchTimeoutSeconds: () => Math.floor(min + (max - min) * this.random()),
        requestTimeoutMs: this.t.requestTimeoutMs,
      },
      {
        onListPage: (items, first) => live() && this.listPage(items, first),
        onList: () => {
          if (!live()) return;
          this.current = 'watching';
          if (this.backoff.streak > 0) this.opts.onRecovered?.();
          this.replaceAll();
        },
        onEvent: (type, obj) => live() && this.apply(type, obj),
        onActivity: (kind) => {
          if (!live()) return;
          this.lastActivity = this.clock.now();
          // A watch that delivers proves the connection works; a list alone does not (the watch may still fail,
          // and resetting on lists would turn a watch that always fails into a relist every second).
          if (kind === 'event' || kind === 'bookmark') this.backoff.reset();
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
    this.clock.clearTimeout(this.watchdogTimer);
    if (!this.running) return;
    if (reason === 'relist') {
      this.opts.log.debug({ resource: this.opts.resource }, 'informer periodic relist');
      this.run();
      return;
    }
    const delay = this.backoff.next(this.clock.now());
    this.opts.log.warn(
      { resource: this.opts.resource, namespace: this.opts.namespace, reason, err: errMessage(err), delayMs: Math.round(delay), failures: this.backoff.streak },
      'informer restarting',
    );
    this.opts.onRestart(this.opts.resource, reason);
    this.current = 'backoff';
    this.armRetry(delay);
  }

  private armRetry(delay: number): void {
    this.clock.clearTimeout(this.retryTimer);
    this.retryAt = this.clock.now() + delay;
    this.retryTimer = this.clock.setTimeout(() => this.run(), delay);
  }

  private armWatchdog(): void {
    this.clock.clearTimeout(this.watchdogTimer);
    const gen = this.generation;
    const check = (): void => {
      if (gen !== this.generation || !this.running) return;
      const idle = this.clock.now() - this.lastActivity;
      if (idle >= this.t.watchdogMs) {
        this.restart('watchdog', new Error(`no event or bookmark for ${idle} ms`));
        return;
      }
      this.watchdogTimer = this.clock.setTimeout(check, this.t.watchdogMs - idle);
    };
    this.watchdogTimer = this.clock.setTimeout(check, this.t.watchdogMs);
  }

  private listPage(items: readonly RawObject[], first: boolean): void {
    if (first || !this.listing) this.listing = { cache: new Map(), versions: new Map() };
    const { cache, versions } = this.listing;
    for (const o of items) {
      const key = keyOf(o);
      const rv = o.metadata.resourceVersion;
      const known = this.cache.get(key);
      cache.set(key, known !== undefined && rv !== undefined && this.versions.get(key) === rv ? known : this.trim(o));
      if (rv !== undefined) versions.set(key, rv);
      this.opts.onRaw?.(key, o);
    }
  }

  /** The list is complete: it replaces the cache, and what differs from before is one change signal. */
  private replaceAll(): void {
    const next = this.listing ?? { cache: new Map<string, Lite>(), versions: new Map<string, string>() };
    this.listing = undefined;
    const changes: CacheChange[] = [];
    for (const [key, after] of next.cache) {
      const before = this.cache.get(key);
      if (before === after) continue;
      if (before === undefined) changes.push({ key, after });
      else if (!isDeepStrictEqual(before, after)) changes.push({ key, before, after });
    }
    for (const [key, before] of this.cache) {
      if (next.cache.has(key)) continue;
      changes.push({ key, before });
      this.opts.onRaw?.(key, undefined);
    }
    this.cache = next.cache;
    this.versions = next.versions;
    let signal = changes.length > 0;
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.resolveSynced();
      signal = true;
    }
    if (signal) this.opts.onChange(changes);
  }

  private apply(type: 'add' | 'update' | 'delete', obj: RawObject): void {
    const key = keyOf(obj);
    this.opts.onRaw?.(key, type === 'delete' ? undefined : obj);
    const before = this.cache.get(key);
    if (type === 'delete') {
      this.versions.delete(key);
      if (this.cache.delete(key)) this.opts.onChange([{ key, before }]);
      return;
    }
    const rv = obj.metadata.resourceVersion;
    if (rv === undefined) this.versions.delete(key);
    else this.versions.set(key, rv);
    const after = this.trim(obj);
    if (isDeepStrictEqual(before, after)) return;
    this.cache.set(key, after);
    this.opts.onChange([before === undefined ? { key, after } : { key, before, after }]);
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
