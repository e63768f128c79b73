// Every open relayed connection, indexed by endpoint key so a snapshot swap finds the ones whose endpoint is
// gone, and counted per route for wsgate_connections_active.
import type { Endpoint, Route } from '../model/snapshot.ts';

export interface LiveConnection {
  readonly id: number;
  readonly route: Route;
  readonly endpoint: Endpoint;
  readonly startedAt: number;
  /** Scheduled for a paced 1012. */
  draining: boolean;
  /** The relay has finished; the connection is out of the registry. */
  ended: boolean;
  /** Proxy-initiated close of both sides, between frames. */
  close(code: number, reason: string): void;
}

export class ConnectionRegistry {
  readonly #byEndpoint = new Map<string, Set<LiveConnection>>();
  #size = 0;
  #waiters: { readonly atMost: number; readonly resolve: () => void }[] = [];

  get size(): number {
    return this.#size;
  }

  add(c: LiveConnection): void {
    let set = this.#byEndpoint.get(c.endpoint.key);
    if (!set) this.#byEndpoint.set(c.endpoint.key, (set = new Set()));
    set.add(c);
    this.#size++;
  }

  remove(c: LiveConnection): void {
    const set = this.#byEndpoint.get(c.endpoint.key);
    if (!set?.delete(c)) return;
    this.#size--;
    if (set.size === 0) this.#byEndpoint.delete(c.endpoint.key);
    if (this.#waiters.length === 0) return;
    const due = this.#waiters.filter((w) => this.#size <= w.atMost);
    if (due.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => this.#size > w.atMost);
    for (const w of due) w.resolve();
  }

  /** Resolves when the last connection is removed (at once when there is none). */
  whenEmpty(): Promise<void> {
    return this.whenAtMost(0);
  }

  /** Resolves once no more than n connections are open (at once if that holds now): a shutdown, or a test
   *  waiting for connections it closed to be let go, waits on the removal itself. */
  whenAtMost(n: number): Promise<void> {
    if (this.#size <= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ atMost: n, resolve }));
  }

  endpointKeys(): IterableIterator<string> {
    return this.#byEndpoint.keys();
  }

  onEndpoint(key: string): readonly LiveConnection[] {
    return [...(this.#byEndpoint.get(key) ?? [])];
  }

  all(): LiveConnection[] {
    const out: LiveConnection[] = [];
    for (const set of this.#byEndpoint.values()) out.push(...set);
    return out;
  }
}
