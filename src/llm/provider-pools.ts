// One undici connection pool per provider, so one provider's slow or saturated upstream never holds the
// connections another needs, and each provider's connections are bounded and kept alive on their own.
// A pool is identified by the route's namespace, the provider's name and baseUrl, and the options the pool is
// built from: while those stay the same, every snapshot and every socket uses the same pool. The namespace is
// part of it so that two tenants naming the same upstream never share (or exhaust) one bound.
// Lifetime is counted: the current routing table holds each of its providers' pools, and each LLM socket holds
// the pools of the route it was admitted under (it keeps that route until it closes). A pool nobody holds any
// more is closed gracefully: requests still running on it finish, then its sockets end.
// The client (undici's fetch) and the dispatcher come from the same undici package: the fetch Node 20 bundles is
// an older undici whose dispatcher interface differs.
import { Pool, fetch as undiciFetch } from 'undici';
import type { LlmProvider, LlmRoute } from './route.ts';

/** What an attempt sends; the body is the wire format's JSON. */
export interface ProviderRequest {
  readonly method: 'POST';
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly signal: AbortSignal;
}

export type ProviderResponse = Awaited<ReturnType<typeof undiciFetch>>;

/** How a session reaches its providers. */
export interface ProviderHttp {
  fetch(provider: LlmProvider, url: string, init: ProviderRequest): Promise<ProviderResponse>;
}

/** A socket's (or the table's) hold on the pools of one route's providers. */
export interface ProviderLease extends ProviderHttp {
  /** Lets go of the pools; the last holder of a pool closes it. Idempotent. */
  release(): void;
}

/** An idle connection is closed after this long unless the provider's Keep-Alive header says otherwise: below
 *  the 5 s idle timeout common OpenAI-compatible servers keep (Node's http server, uvicorn), because a server
 *  that closes an idle connection just as a request is sent on it fails that request, and a POST is not
 *  retried. undici honours a provider's `Keep-Alive: timeout=N` hint (less a second), up to 10 minutes. */
const KEEP_ALIVE_MS = 4_000;

interface Entry {
  readonly pool: Pool;
  holders: number;
}

/** Connections per provider pool at most, on this replica (per worker with --workers): each carries one streamed
 *  request at a time (HTTP/1.1, no pipelining), so this is also how many requests stream from one provider at
 *  once; one more waits for a free connection, within the provider's connect timeout, and then falls back like
 *  a provider that did not answer. The bound keeps a burst from opening unbounded sockets (and TLS handshakes)
 *  to one upstream; per-principal limits (limits.concurrentPerPrincipal) bound each client well below it. */
export const MAX_CONNECTIONS = 256;

function keyOf(namespace: string, p: LlmProvider): string {
  return JSON.stringify([namespace, p.name, p.baseUrl, p.timeouts.connectMs]);
}

export class ProviderPools {
  readonly #entries = new Map<string, Entry>();
  readonly #closing = new Set<Promise<void>>();
  /** The current routing table's hold, one lease per LLM rule. */
  #table: ProviderLease[] = [];

  /** Pools open now (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  lease(route: Pick<LlmRoute, 'namespace' | 'providers'>): ProviderLease {
    const keys = route.providers.map((p) => keyOf(route.namespace, p));
    route.providers.forEach((p, i) => this.#hold(keys[i]!, p));
    let released = false;
    return {
      fetch: (provider, url, init) => {
        const e = this.#entries.get(keyOf(route.namespace, provider));
        // A lease only reaches the pools of its own route; anything else is a bug in the caller.
        if (released || !e) return Promise.reject(new Error(`no pool held for provider ${provider.name}`));
        return undiciFetch(url, { ...init, dispatcher: e.pool });
      },
      release: () => {
        if (released) return;
        released = true;
        for (const k of keys) this.#letGo(k);
      },
    };
  }

  /** The routing table changed: its providers' pools are held, the pools only the previous table held close. */
  sync(routes: Iterable<LlmRoute>): void {
    // The new table takes hold before the old lets go, so a pool both name is never closed in between.
    const prev = this.#table;
    this.#table = [...routes].map((r) => this.lease(r));
    for (const l of prev) l.release();
  }

  /** Lets go of the table's pools and closes every pool still open, each after its running requests. */
  async close(): Promise<void> {
    for (const l of this.#table) l.release();
    this.#table = [];
    for (const [k, e] of this.#entries) {
      this.#entries.delete(k);
      this.#shut(e.pool);
    }
    await Promise.all(this.#closing);
  }

  #hold(key: string, p: LlmProvider): void {
    const have = this.#entries.get(key);
    if (have) {
      have.holders++;
      return;
    }
    const pool = new Pool(new URL(p.baseUrl).origin, {
      connections: MAX_CONNECTIONS,
      connect: { timeout: p.timeouts.connectMs },
      keepAliveTimeout: KEEP_ALIVE_MS,
      // The attempt owns every request deadline on the injected clock (connect-to-headers, first token, idle,
      // total); undici's own header and body timers (300 s by default) would cut long streams short.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.#entries.set(key, { pool, holders: 1 });
  }

  #letGo(key: string): void {
    const e = this.#entries.get(key);
    if (!e || --e.holders > 0) return;
    this.#entries.delete(key);
    this.#shut(e.pool);
  }

  #shut(pool: Pool): void {
    const p = pool.close().catch(() => {});
    this.#closing.add(p);
    void p.finally(() => this.#closing.delete(p));
  }
}
