// The security checks as the proxy's admission list, in the order that keeps expensive work behind
// cheap refusals: client address, address filter, origin, connection budgets, then credentials (an API key
// is a hash; a JWT may need a JWKS fetch), then the budgets that need the principal (all of them, with Redis),
// then the upstream TLS settings.
import { WsgateError } from '../errors.ts';
import type { ClusterState } from '../cluster/cluster.ts';
import type { AdmissionCheck, HandshakeContext } from '../proxy/hooks.ts';
import { UpstreamTlsPolicy } from '../proxy/tls/upstream-tls.ts';
import type { Logger } from '../telemetry/logger.ts';
import { checkApiKey } from './api-key.ts';
import { refuseCompression } from './compression.ts';
import { parseCidrs, resolveClientIp } from '../util/cidr.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { ClientIpFilter } from './client-ip.ts';
import { JwtPolicy, type JwtEdits, type JwtPolicyOptions } from './jwt.ts';
import { checkOrigin } from './origin.ts';
import { ConnectionLimiter } from './rate-limit.ts';

export interface SecurityOptions {
  /** --trusted-proxies: CIDRs whose X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[];
  readonly log: Logger;
  readonly clock?: Clock;
  readonly jwt?: JwtPolicyOptions;
  /** Cluster-wide budgets and revocation (src/cluster); with Redis they replace the local limiter. */
  readonly cluster?: ClusterState;
}

export interface Security {
  readonly admission: readonly AdmissionCheck[];
  readonly limiter: ConnectionLimiter;
  /** The checks of upgrades that apply to HTTP fallback requests (long-polling): address, origin and
   *  credentials, so a route's auth cannot be bypassed by not upgrading, and the upstream TLS settings.
   *  Connection budgets count WebSockets only and are left out. */
  readonly fallbackAdmission: readonly AdmissionCheck[];
}

export function createSecurity(o: SecurityOptions): Security {
  const trusted = parseCidrs(o.trustedProxies).set;
  const ipFilter = new ClientIpFilter();
  const limiter = new ConnectionLimiter({ clock: o.clock ?? systemClock() });
  const jwt = new JwtPolicy(o.jwt);
  const upstreamTls = new UpstreamTlsPolicy(o.log.child({ component: 'upstream-tls' }));
  const target = (ctx: HandshakeContext) => ({ url: ctx.req.url ?? '/', headers: ctx.req.headers, rawHeaders: ctx.req.rawHeaders });
  const clientAddress: AdmissionCheck = (ctx) => {
    const r = resolveClientIp(ctx.socket.remoteAddress ?? '', ctx.req.headers['x-forwarded-for'], trusted);
    ctx.clientIp = r.ip;
    ctx.trustForwarded = r.trustForwarded;
    return undefined;
  };
  const addressFilter: AdmissionCheck = (ctx) => ipFilter.check(ctx.match.route.clientIps, ctx.clientIp);
  const origin: AdmissionCheck = (ctx) => checkOrigin(ctx.match.route.origins, ctx.req.headers.origin);
  const credentials: AdmissionCheck[] = [
    (ctx) => {
      const apiKey = ctx.match.route.auth.apiKey;
      if (!apiKey) return undefined;
      const edits: { drop: Set<string>; path?: string; keyId?: string } = { drop: ctx.forward.drop, ...(ctx.forward.path !== undefined ? { path: ctx.forward.path } : {}) };
      const err = checkApiKey(apiKey, target(ctx), edits);
      if (edits.path !== undefined) ctx.forward.path = edits.path;
      if (!err && edits.keyId !== undefined) ctx.principal = `apikey:${edits.keyId}`;
      return err;
    },
    // Synchronous unless the route has JWT: a promise here would cost every handshake a microtask turn.
    (ctx) => {
      const auth = ctx.match.route.auth.jwt;
      if (!auth) return undefined;
      const edits: JwtEdits = { drop: ctx.forward.drop, extra: ctx.forward.extra, ...(ctx.forward.path !== undefined ? { path: ctx.forward.path } : {}) };
      return jwt.check(auth, target(ctx), edits).then((err) => {
        if (err) return err;
        if (edits.path !== undefined) ctx.forward.path = edits.path;
        if (edits.subprotocolFallback !== undefined) ctx.subprotocolFallback = edits.subprotocolFallback;
        if (edits.claims) {
          ctx.claims = edits.claims;
          const p = edits.claims[auth.principalClaim];
          if (typeof p === 'string' || typeof p === 'number') ctx.principal = String(p);
        }
        return undefined;
      });
    },
  ];
  const tlsSettings: AdmissionCheck = (ctx) => {
    const t = upstreamTls.resolve(ctx.match.route);
    if (t instanceof WsgateError) return t;
    if (t) ctx.upstreamTls = t;
    return undefined;
  };
  // With Redis the address and route budgets are taken with the principal's, after the credentials, in the
  // one round trip a handshake may cost.
  const cluster = o.cluster;
  const admission: AdmissionCheck[] = [
    clientAddress,
    addressFilter,
    origin,
    ...(cluster?.distributed ? [] : [(ctx: HandshakeContext) => limiter.admit(ctx.match.route, ctx.clientIp, ctx.socket)]),
    ...credentials,
    ...(cluster ? [cluster.admission] : []),
    tlsSettings,
    refuseCompression,
  ];
  const fallbackAdmission: AdmissionCheck[] = [clientAddress, addressFilter, origin, ...credentials, tlsSettings];
  return { admission, limiter, fallbackAdmission };
}
