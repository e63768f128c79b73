// Writes each route's conditions and endpoint counts to its /status by server-side apply (fieldManager "wsgate", force), only while
// this replica leads. A write whose content equals the last one applied is skipped; a condition keeps its
// lastTransitionTime while its status stays the same (the previous value comes from the last apply, or from
// the status the informer saw on the server). Winning leadership forgets what was applied and rewrites all,
// since the previous leader may have left anything behind.
import type { Logger } from 'pino';
import type { BackendStatus, RouteStatus } from '../model/snapshot.ts';
import { KubeApiError, type KubeClient } from '../kube/kube-client.ts';
import type { ObservedRouteStatus } from '../sources/kubernetes/source.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';

/** Status PATCHes in flight at once: enough to keep up with a relist, few enough not to crowd the API server. */
const defaultConcurrency = 4;

export interface StatusWriterOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly fieldManager?: string;
  /** The status a route has on the server (KubernetesSource#observedStatus). */
  readonly observed?: (key: string) => ObservedRouteStatus | undefined;
  /** Parallel writes (default defaultConcurrency). */
  readonly concurrency?: number;
  /** Delay before a failed write is tried again (default 2 s), on clock. */
  readonly retryDelayMs?: number;
  /** The process's clock (monotonic): the retry delay runs on it. */
  readonly clock: Clock;
  /** Wall time, for lastTransitionTime (default: the system's). */
  readonly now?: () => Date;
}

interface AppliedCondition {
  readonly type: string;
  readonly status: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
  readonly reason: string;
  readonly message: string;
}

interface AppliedStatus {
  readonly observedGeneration: number;
  readonly conditions: readonly AppliedCondition[];
  readonly readyEndpoints?: number;
  readonly backends?: readonly BackendStatus[];
}

/** metav1.Time: RFC 3339 in whole seconds. */
function metaTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class StatusWriter {
  private readonly o: StatusWriterOptions;
  private readonly log: Logger;
  private readonly fieldManager: string;
  private readonly now: () => Date;
  private desired = new Map<string, RouteStatus>();
  private lastList: readonly RouteStatus[] | undefined;
  private readonly applied = new Map<string, { json: string; status: AppliedStatus }>();
  private readonly dirty = new Set<string>();
  private leading = false;
  private stopped = false;
  private workers = 0;
  private retryTimer: ClockTimer | undefined;
  private waiters: (() => void)[] = [];
  /** Writes sent to the API server (for tests and debugging). */
  writes = 0;

  constructor(opts: StatusWriterOptions) {
    this.o = opts;
    this.log = opts.log.child({ component: 'status-writer' });
    this.fieldManager = opts.fieldManager ?? 'wsgate';
    this.now = opts.now ?? (() => new Date());
  }

  /** The statuses of every current route (from the builder); routes not listed are forgotten. */
  update(statuses: readonly RouteStatus[]): void {
    // A list with the previous one's keys in the same order (the build thread's results share the statuses that did
    // not change): only the positions whose object changed are compared and set, no new map of every route.
    const last = this.lastList;
    this.lastList = statuses;
    if (last?.length === statuses.length && this.desired.size === statuses.length && statuses.every((s, i) => s === last[i] || s.key === last[i]!.key)) {
      // Applied keys are always desired ones: as many applied as desired means every route's status is applied.
      const allApplied = this.applied.size === this.desired.size;
      statuses.forEach((s, i) => {
        if (s !== last[i]) {
          if (JSON.stringify(this.desired.get(s.key)) !== JSON.stringify(s)) this.dirty.add(s.key);
          this.desired.set(s.key, s);
        }
        if (!allApplied && !this.applied.has(s.key)) this.dirty.add(s.key);
      });
      this.kick();
      return;
    }
    const next = new Map(statuses.map((s) => [s.key as string, s]));
    for (const key of this.desired.keys()) {
      if (!next.has(key)) {
        this.applied.delete(key);
        this.dirty.delete(key);
      }
    }
    for (const [key, s] of next) {
      const prev = this.desired.get(key);
      // The same object is the same status: the build thread's results share the statuses that did not change.
      if (!prev || (prev !== s && JSON.stringify(prev) !== JSON.stringify(s)) || !this.applied.has(key)) this.dirty.add(key);
    }
    this.desired = next;
    this.kick();
  }

  /** Wire to the elector: won → rewrite every status; lost → stop writing (nothing else changes). */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) {
      this.applied.clear();
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

  /** Forgotten as well as cleared: a later failure must be able to arm a new retry. */
  private cancelRetry(): void {
    this.o.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Resolves when nothing is queued or in flight (or writing is off). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.workers === 0 && (this.dirty.size === 0 || !this.leading || this.retryTimer !== undefined);
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  private kick(): void {
    const max = this.o.concurrency ?? defaultConcurrency;
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
    const failed: string[] = [];
    while (this.leading && !this.stopped) {
      const key = this.dirty.values().next().value;
      if (key === undefined) break;
      this.dirty.delete(key);
      const status = this.desired.get(key);
      if (!status) continue;
      const body = this.statusBody(key, status);
      const json = JSON.stringify(body);
      if (this.applied.get(key)?.json === json) continue;
      const [namespace, name] = splitKey(key);
      try {
        this.writes++;
        await this.o.client.applyRouteStatus(namespace, name, body as unknown as Record<string, unknown>, this.fieldManager);
        // A newer desired status may have arrived meanwhile; it is in dirty again and compared then.
        if (this.desired.get(key) === status && this.leading) this.applied.set(key, { json, status: body });
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) continue; // deleted meanwhile: nothing to report on
        this.log.warn({ route: key, err: (err as Error).message }, 'status write failed; will retry');
        failed.push(key);
      }
    }
    if (failed.length > 0) this.retryLater(failed);
  }

  private retryLater(keys: readonly string[]): void {
    for (const k of keys) this.dirty.add(k);
    if (this.retryTimer !== undefined) return;
    this.retryTimer = this.o.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.o.retryDelayMs ?? 2_000);
  }

  private statusBody(key: string, s: RouteStatus): AppliedStatus {
    const before = this.applied.get(key)?.status.conditions ?? this.o.observed?.(key)?.conditions ?? [];
    const now = metaTime(this.now());
    return {
      observedGeneration: s.generation,
      conditions: s.conditions.map((c) => {
        const prev = before.find((p) => p.type === c.type);
        return {
          type: c.type,
          status: c.status,
          observedGeneration: c.observedGeneration,
          lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
          reason: c.reason,
          message: c.message,
        };
      }),
      // Left out when the route is not accepted: an apply without them removes what this manager wrote before.
      ...(s.readyEndpoints === undefined ? {} : { readyEndpoints: s.readyEndpoints }),
      ...(s.backends === undefined ? {} : { backends: s.backends }),
    };
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
