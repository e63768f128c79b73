// Revoked principals, as this replica knows them: it closes their connections with 1008 and the reason, and
// refuses their handshakes with 403 until the revocation's TTL passes or it is cleared. Fed by the Redis
// channel (revocation-feed.ts); checking a handshake costs a map lookup, no Redis traffic.
import { CloseCode, Errors, type WsgateError } from '../errors.ts';
import type { LiveConnection } from '../proxy/connections.ts';
import type { HandshakeContext } from '../proxy/hooks.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Clock } from '../util/clock.ts';
import type { ClusterMetrics } from './cluster-metrics.ts';

/** One message on the revocation channel. route: "namespace/name", or every route when absent. */
export interface Revocation {
  readonly principal: string;
  readonly route?: string;
  readonly reason: string;
  /** How long it holds from now; ignored by a clear. */
  readonly ttlMs: number;
  /** Ends an earlier revocation of the same principal and route. */
  readonly clear?: boolean;
}

/** A close frame's reason is at most 123 bytes (RFC 6455 §5.5: a control frame payload is at most 125 bytes,
 *  two of them the code). Cut on a character boundary. */
export function closeReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out, 'utf8') > 123) out = out.slice(0, -1);
  return out;
}

export function parseRevocation(text: string): Revocation | undefined {
  try {
    const v = JSON.parse(text) as Partial<Revocation>;
    if (typeof v.principal !== 'string' || !v.principal) return undefined;
    if (v.route !== undefined && typeof v.route !== 'string') return undefined;
    return {
      principal: v.principal,
      ...(v.route ? { route: v.route } : {}),
      reason: typeof v.reason === 'string' ? v.reason : 'access revoked',
      ttlMs: typeof v.ttlMs === 'number' && v.ttlMs > 0 ? v.ttlMs : 0,
      ...(v.clear ? { clear: true } : {}),
    };
  } catch {
    return undefined;
  }
}

interface Tracked {
  readonly conn: LiveConnection;
  readonly route: string;
}

export class Revocations {
  readonly #clock: Clock;
  readonly #metrics: ClusterMetrics;
  readonly #log: Logger;
  /** principal, or principal + "\n" + route → reason and end (clock ms). */
  readonly #entries = new Map<string, { reason: string; until: number }>();
  readonly #live = new Map<string, Set<Tracked>>();
  readonly #byConn = new WeakMap<LiveConnection, { principal: string; t: Tracked }>();

  constructor(o: { clock: Clock; metrics: ClusterMetrics; log: Logger }) {
    this.#clock = o.clock;
    this.#metrics = o.metrics;
    this.#log = o.log;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The refusal for a revoked principal on this route, if any. */
  check(principal: string, route: string): WsgateError | undefined {
    const e = this.#active(principal) ?? this.#active(`${principal}\n${route}`);
    if (!e) return undefined;
    this.#metrics.revocations.inc({ result: 'refused' });
    return Errors.revoked(e.reason);
  }

  #active(key: string): { reason: string } | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.until > this.#clock.now()) return e;
    this.#entries.delete(key);
    return undefined;
  }

  /** Records the revocation and closes the principal's matching connections; returns how many it closed. */
  apply(r: Revocation): number {
    const key = r.route ? `${r.principal}\n${r.route}` : r.principal;
    if (r.clear) {
      this.#entries.delete(key);
      this.#log.info({ principal: r.principal, route: r.route }, 'revocation cleared');
      return 0;
    }
    if (r.ttlMs <= 0) return 0;
    this.#entries.set(key, { reason: r.reason, until: this.#clock.now() + r.ttlMs });
    let closed = 0;
    for (const t of [...(this.#live.get(r.principal) ?? [])]) {
      if (r.route && t.route !== r.route) continue;
      t.conn.close(CloseCode.PolicyViolation, closeReason(r.reason));
      closed++;
    }
    if (closed > 0) this.#metrics.revocations.inc({ result: 'closed' }, closed);
    this.#log.info({ principal: r.principal, route: r.route, closed, ttlMs: r.ttlMs }, 'revocation applied');
    return closed;
  }

  /** The proxy's established/ended hooks: connections are indexed by principal while they live. */
  established(ctx: HandshakeContext, conn: LiveConnection): void {
    const principal = ctx.principal;
    if (principal === undefined) return;
    const t: Tracked = { conn, route: conn.route.key };
    let set = this.#live.get(principal);
    if (!set) this.#live.set(principal, (set = new Set()));
    set.add(t);
    this.#byConn.set(conn, { principal, t });
  }

  ended(conn: LiveConnection): void {
    const e = this.#byConn.get(conn);
    if (!e) return;
    this.#byConn.delete(conn);
    const set = this.#live.get(e.principal);
    set?.delete(e.t);
    if (set?.size === 0) this.#live.delete(e.principal);
  }
}
