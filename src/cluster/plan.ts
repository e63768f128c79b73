// Which budgets one handshake takes: the rates and counts its route sets for its address and principal, with
// their Redis keys. The one reader of the route's limit fields for cluster-wide budgets.
import { Errors, type WsgateError } from '../errors.ts';
import type { Route } from '../model/snapshot.ts';
import type { ClusterKeys } from './keys.ts';

export type Scope = 'route' | 'ip' | 'principal';

export interface RatePlan {
  readonly key: string;
  readonly scope: Scope;
  readonly perMinute: number;
}

export interface CountPlan {
  readonly key: string;
  readonly scope: Scope;
  readonly limit: number;
}

export interface BudgetPlan {
  readonly revoked: readonly string[];
  readonly rates: readonly RatePlan[];
  readonly counts: readonly CountPlan[];
}

/**
 * scopes: 'all' when budgets are cluster-wide (Redis); 'principal' when the per-process limiter already took the
 * address and route budgets before the credentials were read. undefined: nothing to take.
 */
export function planFor(keys: ClusterKeys, route: Route, ip: string, principal: string | undefined, scopes: 'all' | 'principal'): BudgetPlan | undefined {
  const rate = route.rateLimit;
  const limits = route.limits;
  const rates: RatePlan[] = [];
  const counts: CountPlan[] = [];
  const all = scopes === 'all';
  if (all && rate.connectionsPerMinutePerIP !== undefined) {
    rates.push({ key: keys.ipRate(route.key, ip, rate.connectionsPerMinutePerIP), scope: 'ip', perMinute: rate.connectionsPerMinutePerIP });
  }
  if (principal !== undefined && rate.connectionsPerMinutePerPrincipal !== undefined) {
    rates.push({ key: keys.principalRate(route.key, principal, rate.connectionsPerMinutePerPrincipal), scope: 'principal', perMinute: rate.connectionsPerMinutePerPrincipal });
  }
  // Checked in this order: the narrowest budget names the client's own excess before the route's.
  if (all && limits.maxConnectionsPerIP !== undefined) counts.push({ key: keys.ipCount(route.key, ip), scope: 'ip', limit: limits.maxConnectionsPerIP });
  if (principal !== undefined && limits.maxConnectionsPerPrincipal !== undefined) {
    counts.push({ key: keys.principalCount(route.key, principal), scope: 'principal', limit: limits.maxConnectionsPerPrincipal });
  }
  if (all && limits.maxConnections !== undefined) counts.push({ key: keys.routeCount(route.key), scope: 'route', limit: limits.maxConnections });
  if (rates.length === 0 && counts.length === 0) return undefined;
  const revoked = principal === undefined ? [] : [keys.revoked(principal), keys.revoked(principal, route.key)];
  return { revoked, rates, counts };
}

export function rateRefusal(scope: Scope, retryMs: number): WsgateError {
  const headers = { 'Retry-After': String(Math.max(1, Math.ceil(retryMs / 1000))) };
  return Errors.rateLimited(scope === 'ip' ? 'too many new connections from this address' : 'too many new connections for this principal', { headers });
}

export function countRefusal(scope: Scope): WsgateError {
  const headers = { 'Retry-After': '1' };
  if (scope === 'route') return Errors.routeFull(undefined, { headers });
  return Errors.connectionLimit(scope === 'ip' ? 'too many concurrent connections from this address' : 'too many concurrent connections for this principal', { headers });
}
