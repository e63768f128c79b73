// Backend health: active checks, passive ejection (outlier detection) and the circuit breaker.
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { BreakerPolicy, HealthCheck, OutlierPolicy } from '../../model/route.ts';
import { section } from './defaults.ts';

export function compileHealthCheck(spec: WebSocketRouteSpec): HealthCheck | undefined {
  const hc = spec.healthCheck;
  if (!hc) return undefined;
  return {
    type: hc.type,
    path: hc.path,
    intervalMs: hc.intervalSeconds * 1000,
    timeoutMs: hc.timeoutSeconds * 1000,
    healthyThreshold: hc.healthyThreshold,
    unhealthyThreshold: hc.unhealthyThreshold,
    tls: section(spec, 'upstream').protocol === 'wss' ? { serverName: spec.upstream?.tls?.serverName } : undefined,
  };
}

/** On unless maxEjectionPercent is 0: an absent outlierDetection gets the schema's defaults. */
export function compileOutlier(spec: WebSocketRouteSpec): OutlierPolicy | undefined {
  const od = section(spec, 'outlierDetection');
  if (od.maxEjectionPercent <= 0) return undefined;
  return {
    consecutiveFailures: od.consecutiveFailures,
    baseEjectionMs: od.baseEjectionSeconds * 1000,
    maxEjectionMs: od.maxEjectionSeconds * 1000,
    maxEjectionPercent: od.maxEjectionPercent,
  };
}

export function compileBreaker(spec: WebSocketRouteSpec): BreakerPolicy {
  const cb = section(spec, 'circuitBreaker');
  return { maxPendingHandshakes: cb.maxPendingHandshakes, maxConnections: cb.maxConnections, consecutiveFailures: cb.consecutiveFailures, openMs: cb.openSeconds * 1000 };
}
