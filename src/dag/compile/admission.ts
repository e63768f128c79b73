// Who may connect: allowed origins, client address allow/deny lists (parsed CIDRs), and rate limits.
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { ClientIpPolicy, OriginPolicy, RateLimitPolicy } from '../../model/route.ts';
import { parseCidr, type Cidr } from '../../util/cidr.ts';
import { section } from './defaults.ts';

export function compileOrigins(spec: WebSocketRouteSpec): OriginPolicy | undefined {
  const allowed = spec.allowedOrigins ?? [];
  if (allowed.length === 0) return undefined;
  // Origins compare case-insensitively (RFC 6454 §6.2 serializes scheme and host lower-case).
  return { allowed: allowed.map((p) => p.toLowerCase()), allowMissing: spec.allowMissingOrigin };
}

/** Entries that do not parse never get here: valueProblems (spec-problems.ts) rejects the route first. */
export function compileClientIps(spec: WebSocketRouteSpec): ClientIpPolicy | undefined {
  const c = spec.clientIPs;
  if (!c?.allow?.length && !c?.deny?.length) return undefined;
  const parse = (list: readonly string[]): Cidr[] => list.map(parseCidr).filter((x): x is Cidr => typeof x !== 'string');
  return { allow: c.allow?.length ? parse(c.allow) : undefined, deny: parse(c.deny ?? []) };
}

export function compileRateLimit(spec: WebSocketRouteSpec): RateLimitPolicy {
  const rl = section(spec, 'rateLimit');
  const counted = rl.messagesPerSecond !== undefined || rl.bytesPerSecond !== undefined;
  return {
    connectionsPerMinutePerIP: rl.connectionsPerMinutePerIP,
    connectionsPerMinutePerPrincipal: rl.connectionsPerMinutePerPrincipal,
    messages: counted
      ? {
          sides: rl.direction === 'Both' ? ['client', 'upstream'] : rl.direction === 'FromUpstream' ? ['upstream'] : ['client'],
          messagesPerSecond: rl.messagesPerSecond,
          // burst: messages the bucket holds (unset: one second's worth); the byte bucket holds one second's
          // worth or burst bytes when that is larger.
          messageBurst: rl.burst ?? rl.messagesPerSecond ?? 0,
          bytesPerSecond: rl.bytesPerSecond,
          byteBurst: Math.max(rl.bytesPerSecond ?? 0, rl.burst ?? 0),
          onExceed: rl.onExceed,
        }
      : undefined,
  };
}
