// loadBalancer and sessionAffinity: the policy, the bounded-load factor, and the affinity as a discriminated
// union whose variant carries exactly what it needs (cookie attributes resolved, header names lower-cased).
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { BalancePolicy, SessionAffinity } from '../../model/route.ts';
import { affinityCookie, section } from './defaults.ts';

export function compileBalance(spec: WebSocketRouteSpec): BalancePolicy {
  const lb = section(spec, 'loadBalancer');
  return { policy: lb.policy, boundedLoadFactor: lb.boundedLoadFactor };
}

export function compileAffinity(spec: WebSocketRouteSpec): SessionAffinity {
  const a = section(spec, 'sessionAffinity');
  switch (a.type) {
    case 'Cookie': {
      const c = affinityCookie(a);
      // Browsers refuse SameSite=None without Secure (RFC 6265bis §5.4.7), so None always compiles to Secure.
      return { type: 'Cookie', cookie: { name: c.name, ttlSeconds: c.ttlSeconds, path: c.path, secure: c.secure || c.sameSite === 'None', sameSite: c.sameSite } };
    }
    // The CEL rules (mirrored in cross-field.ts) guarantee the name of each keyed type.
    case 'Header':
      return { type: 'Header', name: (a.header?.name ?? '').toLowerCase() };
    case 'QueryParam':
      return { type: 'QueryParam', name: a.queryParam?.name ?? '' };
    case 'JwtClaim':
      return { type: 'JwtClaim', claim: a.jwtClaim?.name ?? '' };
    case 'ClientIP':
      return { type: 'ClientIP' };
    default:
      return { type: 'None' };
  }
}
