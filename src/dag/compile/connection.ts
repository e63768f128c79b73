// What applies to an established connection: message and connection limits, compression, heartbeats, idle
// timeout, the drain window, and the HTTP fallback for non-upgrade requests.
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { DrainPolicy, Heartbeat, HttpFallback, IdlePolicy, Limits } from '../../model/route.ts';
import { section } from './defaults.ts';

export function compileLimits(spec: WebSocketRouteSpec): Limits {
  const l = section(spec, 'limits');
  return { maxMessageBytes: l.maxMessageBytes, maxConnections: l.maxConnections, maxConnectionsPerIP: l.maxConnectionsPerIP, maxConnectionsPerPrincipal: l.maxConnectionsPerPrincipal, compression: l.compression };
}

export function compileHeartbeat(spec: WebSocketRouteSpec): Heartbeat {
  const h = section(spec, 'heartbeat');
  return { intervalMs: h.intervalSeconds * 1000, timeoutMs: h.timeoutSeconds * 1000, pingUpstream: h.pingUpstream };
}

export function compileIdle(spec: WebSocketRouteSpec): IdlePolicy {
  const l = section(spec, 'limits');
  return { timeoutMs: l.idleTimeoutSeconds * 1000, pingsAreActivity: l.pingsAreActivity };
}

export function compileDrain(spec: WebSocketRouteSpec): DrainPolicy {
  return { windowMs: section(spec, 'drain').windowSeconds * 1000 };
}

export function compileHttpFallback(spec: WebSocketRouteSpec): HttpFallback | undefined {
  const f = section(spec, 'httpFallback');
  return f.enabled ? { timeoutMs: f.timeoutSeconds * 1000 } : undefined;
}
