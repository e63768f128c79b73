// Test double: fault injection for the fake API server. Each fault is armed by a test and consumed by the
// next matching requests, so tests state exactly which request fails and how.
import type { ActiveWatch } from './watch.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface RequestFault {
  /** Matches any verb when unset. */
  readonly verb?: Verb;
  /** Resource plural ("endpointslices"); any when unset. Subresources are matched as "websocketroutes/status". */
  readonly resource?: string;
  /** Only requests in this namespace; any when unset. */
  readonly namespace?: string;
  /** HTTP status to answer with (default 500). */
  readonly status?: number;
  /** How many matching requests fail (default 1). */
  readonly count?: number;
}

export interface HangOptions {
  readonly resource?: string;
  readonly count?: number;
  /** Hang before the response headers (the request never completes) instead of after them. */
  readonly beforeHeaders?: boolean;
}

interface Armed<T> {
  remaining: number;
  readonly spec: T;
}

export class Faults {
  private readonly requestFaults: Armed<RequestFault>[] = [];
  private readonly hangs: Armed<HangOptions>[] = [];
  private readonly watches: () => Iterable<ActiveWatch>;
  private readonly compactStore: () => void;
  private readonly cutConnections: () => void;
  private outage: { readonly kind: 'down' } | { readonly kind: 'answer'; readonly status: number } | undefined;

  constructor(watches: () => Iterable<ActiveWatch>, compactStore: () => void, cutConnections: () => void) {
    this.watches = watches;
    this.compactStore = compactStore;
    this.cutConnections = cutConnections;
  }

  /**
   * Until up(): open connections (watches, idle keep-alive ones) are cut and new ones are reset as soon as they
   * are accepted, as while the server process is stopped. Clients see a connection error, not an HTTP status.
   */
  down(): void {
    this.outage = { kind: 'down' };
    this.cutConnections();
  }

  /**
   * Until up(): every resource request, watches included, is answered with `status` (default 403), as a
   * restarting API server does before its RBAC informers have synced. Open watches are cut.
   */
  answerAll(status = 403): void {
    this.outage = { kind: 'answer', status };
    this.dropWatches();
  }

  /** Disarms every failNext() fault not yet used up. */
  clearRequestFaults(): void {
    this.requestFaults.length = 0;
  }

  /** Ends down() or answerAll(): requests are served normally again. */
  up(): void {
    this.outage = undefined;
  }

  isDown(): boolean {
    return this.outage?.kind === 'down';
  }

  /** The next `count` requests matching verb and resource get an error Status with this code. */
  failNext(fault: RequestFault): void {
    this.requestFaults.push({ remaining: fault.count ?? 1, spec: fault });
  }

  /** The next `count` LIST requests (for `resource`, or any) get 500. */
  failNextLists(count = 1, resource?: string): void {
    this.failNext({ verb: 'list', count, status: 500, ...(resource ? { resource } : {}) });
  }

  /** The next `count` WATCH requests hang: after the headers with no bytes at all (default), or before them. */
  hangNextWatches(opts: HangOptions = {}): void {
    this.hangs.push({ remaining: opts.count ?? 1, spec: opts });
  }

  /** Destroys the sockets of the open watches (of `resource`, or all) mid-stream. Returns how many. */
  dropWatches(resource?: string): number {
    let n = 0;
    for (const w of [...this.watches()]) {
      if (resource === undefined || w.resource === resource) {
        w.drop();
        n++;
      }
    }
    return n;
  }

  /** Open watches (of `resource`, or all) stay connected but never send another byte. Returns how many. */
  stallWatches(resource?: string): number {
    let n = 0;
    for (const w of this.watches()) {
      if (resource === undefined || w.resource === resource) {
        w.stall();
        n++;
      }
    }
    return n;
  }

  /** Ends the open watches (of `resource`, or all) cleanly, as a server-side timeout does. Returns how many. */
  endWatches(resource?: string): number {
    let n = 0;
    for (const w of [...this.watches()]) {
      if (resource === undefined || w.resource === resource) {
        w.end();
        n++;
      }
    }
    return n;
  }

  /** Forgets the event history, like an etcd compaction: the next watch from an older version gets 410. */
  compact(): void {
    this.compactStore();
  }

  /** Consumed by the server for each request. */
  takeRequestFault(verb: Verb, resource: string, namespace?: string): number | undefined {
    if (this.outage?.kind === 'answer') return this.outage.status;
    const i = this.requestFaults.findIndex(
      (f) => (f.spec.verb === undefined || f.spec.verb === verb) && (f.spec.resource === undefined || f.spec.resource === resource) && (f.spec.namespace === undefined || f.spec.namespace === namespace),
    );
    if (i < 0) return undefined;
    const f = this.requestFaults[i]!;
    if (--f.remaining <= 0) this.requestFaults.splice(i, 1);
    return f.spec.status ?? 500;
  }

  takeHang(resource: string): HangOptions | undefined {
    const i = this.hangs.findIndex((h) => h.spec.resource === undefined || h.spec.resource === resource);
    if (i < 0) return undefined;
    const h = this.hangs[i]!;
    if (--h.remaining <= 0) this.hangs.splice(i, 1);
    return h.spec;
  }
}
