// Connection budgets at the handshake, per route:
// - rateLimit.connectionsPerMinutePerIP: a token bucket per client address (capacity one minute's worth,
//   refilled continuously) → 429 rate_limited with Retry-After (seconds until the next token).
// - limits.maxConnectionsPerIP: concurrent connections of one client address → 429 connection_limit,
//   Retry-After: 1 (the client itself holds the connections it is waiting for).
// - limits.maxConnections: concurrent connections of the route → 503 route_connection_limit, Retry-After: 1
//   (the route is full for everyone; another replica may have room).
// A slot is taken at admission and given back when the client socket closes, whether the handshake went on
// to an upgrade or was refused by a later check, so nothing can leak a slot.
import { Errors, type WsgateError } from '../errors.ts';
import type { Route } from '../model/snapshot.ts';
import type { Clock } from '../util/clock.ts';
import { TokenBucket } from './token-bucket.ts';

export interface ConnectionLimiterOptions {
  readonly clock: Clock;
  /** Bound on remembered (route, address) buckets; full buckets are forgotten first. */
  readonly maxTrackedBuckets?: number;
}

export class ConnectionLimiter {
  readonly #clock: Clock;
  readonly #maxBuckets: number;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #perRoute = new Map<string, number>();
  readonly #perIp = new Map<string, number>();

  constructor(o: ConnectionLimiterOptions) {
    this.#clock = o.clock;
    this.#maxBuckets = o.maxTrackedBuckets ?? 100_000;
  }

  /** Checks and, when admitted, holds the slots until the socket closes. */
  admit(route: Route, ip: string, socket: { once(event: 'close', listener: () => void): unknown }): WsgateError | undefined {
    const perMinute = route.rateLimit.connectionsPerMinutePerIP;
    if (perMinute !== undefined) {
      const now = this.#clock.now();
      const key = `${route.key}|${perMinute}|${ip}`;
      let b = this.#buckets.get(key);
      if (!b) {
        if (this.#buckets.size >= this.#maxBuckets) this.#sweep(now);
        b = new TokenBucket(perMinute, perMinute / 60, now);
        this.#buckets.set(key, b);
      }
      if (!b.take(1, now)) {
        const retry = Math.max(1, Math.ceil(b.waitMs(1, now) / 1000));
        return Errors.rateLimited('too many new connections from this address', { headers: { 'Retry-After': String(retry) } });
      }
    }
    const { maxConnections: maxRoute, maxConnectionsPerIP: maxIp } = route.limits;
    if (maxRoute === undefined && maxIp === undefined) return undefined;
    const ipKey = `${route.key}|${ip}`;
    if (maxIp !== undefined && (this.#perIp.get(ipKey) ?? 0) >= maxIp) {
      return Errors.connectionLimit('too many concurrent connections from this address', { headers: { 'Retry-After': '1' } });
    }
    if (maxRoute !== undefined && (this.#perRoute.get(route.key) ?? 0) >= maxRoute) {
      return Errors.routeFull(undefined, { headers: { 'Retry-After': '1' } });
    }
    inc(this.#perRoute, route.key, 1);
    inc(this.#perIp, ipKey, 1);
    socket.once('close', () => {
      inc(this.#perRoute, route.key, -1);
      inc(this.#perIp, ipKey, -1);
    });
    return undefined;
  }

  /** Concurrent connections held for a route (tests, debugging). */
  held(routeKey: string): number {
    return this.#perRoute.get(routeKey) ?? 0;
  }

  get trackedBuckets(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    for (const [k, b] of this.#buckets) if (b.full(now)) this.#buckets.delete(k);
    // Still full of active addresses: forget the oldest, which at worst gives one of them a fresh minute.
    const excess = this.#buckets.size - Math.floor(this.#maxBuckets * 0.9);
    if (excess > 0) {
      let n = 0;
      for (const k of this.#buckets.keys()) {
        if (n++ >= excess) break;
        this.#buckets.delete(k);
      }
    }
  }
}

function inc(m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d;
  if (v <= 0) m.delete(k);
  else m.set(k, v);
}
