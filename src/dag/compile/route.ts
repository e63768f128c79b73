// One validated spec → the compiled route's policies. Each concern compiles in its own file; this only
// assembles them, so a reader finds every default applied under src/dag/compile/.
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { Route } from '../../model/route.ts';
import { compileClientIps, compileOrigins, compileRateLimit } from './admission.ts';
import { compileAuth, type ResolvedAuthSecrets } from './auth.ts';
import { compileAffinity, compileBalance } from './balance.ts';
import { compileDrain, compileHeartbeat, compileHttpFallback, compileIdle, compileLimits } from './connection.ts';
import { compileBreaker, compileHealthCheck, compileOutlier } from './health.ts';
import { compileUpstream } from './upstream.ts';

export type RoutePolicies = Omit<Route, 'key' | 'namespace' | 'name' | 'generation' | 'rules'>;

export interface ResolvedRouteSecrets extends ResolvedAuthSecrets {
  /** upstream.tls CA bundle (PEM), validated. */
  readonly upstreamCa?: string;
}

export function compilePolicies(spec: WebSocketRouteSpec, secrets: ResolvedRouteSecrets): RoutePolicies {
  return {
    hostnames: [...new Set((spec.hostnames ?? []).map((h) => h.toLowerCase()))],
    balance: compileBalance(spec),
    affinity: compileAffinity(spec),
    upstream: compileUpstream(spec, secrets.upstreamCa),
    limits: compileLimits(spec),
    heartbeat: compileHeartbeat(spec),
    idle: compileIdle(spec),
    drain: compileDrain(spec),
    httpFallback: compileHttpFallback(spec),
    auth: compileAuth(spec, secrets),
    origins: compileOrigins(spec),
    clientIps: compileClientIps(spec),
    rateLimit: compileRateLimit(spec),
    healthCheck: compileHealthCheck(spec),
    outlier: compileOutlier(spec),
    breaker: compileBreaker(spec),
  };
}
