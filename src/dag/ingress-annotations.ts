// The ingress-nginx annotations WebSocket apps carry, mapped to WebSocketRoute blocks
// (https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/). What has no
// meaning for a WebSocket, or no wsgate counterpart, is reported as ignored, never silently dropped.
export const nginxPrefix = 'nginx.ingress.kubernetes.io/';

export interface MappedAnnotations {
  /** WebSocketRoute spec blocks, checked later by the builder's schema validation. */
  readonly blocks: Readonly<Record<string, unknown>>;
  /** One line per annotation that is ignored or whose value does not map; sorted. */
  readonly ignored: readonly string[];
}

const seconds = (v: string): number | undefined => (/^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined);
const cidrList = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** upstream-hash-by takes an nginx variable; those with a wsgate affinity map, the rest are ignored. */
function hashAffinity(v: string): Record<string, unknown> | undefined {
  const t = v.trim();
  if (t === '$remote_addr' || t === '$binary_remote_addr') return { type: 'ClientIP' };
  // nginx names request headers $http_<name lower-cased, '-' as '_'> (https://nginx.org/en/docs/http/ngx_http_core_module.html#var_http_)
  const header = /^\$http_([a-z0-9_]+)$/.exec(t);
  if (header) return { type: 'Header', header: { name: (header[1] as string).replaceAll('_', '-') } };
  const arg = /^\$arg_([A-Za-z0-9_]+)$/.exec(t);
  if (arg) return { type: 'QueryParam', queryParam: { name: arg[1] } };
  return undefined;
}

export function mapNginxAnnotations(annotations: Readonly<Record<string, string>> | undefined): MappedAnnotations {
  const a = (name: string) => annotations?.[nginxPrefix + name];
  const ignored: string[] = [];
  const used = new Set<string>();
  const take = (name: string) => {
    used.add(name);
    return a(name);
  };
  const bad = (name: string, why: string) => ignored.push(`${nginxPrefix}${name}: ${why}`);

  const limits: Record<string, unknown> = {};
  const read = take('proxy-read-timeout');
  const send = take('proxy-send-timeout');
  const timeouts = [read, send].filter((v): v is string => v !== undefined);
  const parsed = timeouts.map(seconds);
  if (parsed.some((s) => s === undefined)) bad('proxy-read-timeout/proxy-send-timeout', `${timeouts.join(', ')}: not a number of seconds`);
  else if (parsed.length > 0) limits.idleTimeoutSeconds = Math.max(...(parsed as number[])); // idle only when neither side moves

  const maxConn = take('limit-connections');
  if (maxConn !== undefined) {
    if (seconds(maxConn) === undefined || Number(maxConn) < 1) bad('limit-connections', `${maxConn}: not a positive number`);
    else limits.maxConnectionsPerIP = Number(maxConn);
  }

  const blocks: Record<string, unknown> = {};
  if (Object.keys(limits).length > 0) blocks.limits = limits;

  const rps = take('limit-rps');
  if (rps !== undefined) {
    // Each WebSocket is one request: requests per second per client become connections per minute per IP.
    if (seconds(rps) === undefined || Number(rps) < 1) bad('limit-rps', `${rps}: not a positive number`);
    else blocks.rateLimit = { connectionsPerMinutePerIP: Number(rps) * 60 };
  }

  const affinity = take('affinity');
  const cookieName = take('session-cookie-name');
  const maxAge = take('session-cookie-max-age');
  const sameSite = take('session-cookie-samesite');
  const hashBy = take('upstream-hash-by');
  if (affinity !== undefined && affinity !== 'cookie') bad('affinity', `${affinity}: only cookie is supported`);
  if (affinity === 'cookie') {
    const cookie: Record<string, unknown> = {};
    if (cookieName !== undefined) cookie.name = cookieName;
    if (maxAge !== undefined) {
      if (seconds(maxAge) === undefined) bad('session-cookie-max-age', `${maxAge}: not a number of seconds`);
      else cookie.ttlSeconds = Number(maxAge);
    }
    if (sameSite !== undefined) {
      if (['Lax', 'Strict', 'None'].includes(sameSite)) cookie.sameSite = sameSite;
      else bad('session-cookie-samesite', `${sameSite}: not Lax, Strict or None`);
    }
    blocks.sessionAffinity = { type: 'Cookie', ...(Object.keys(cookie).length > 0 ? { cookie } : {}) };
    if (hashBy !== undefined) bad('upstream-hash-by', 'affinity: cookie takes precedence');
  } else {
    for (const n of ['session-cookie-name', 'session-cookie-max-age', 'session-cookie-samesite']) if (a(n) !== undefined) bad(n, 'needs affinity: cookie');
    if (hashBy !== undefined) {
      const h = hashAffinity(hashBy);
      if (h) {
        blocks.sessionAffinity = h;
        blocks.loadBalancer = { policy: 'ConsistentHash' };
      } else bad('upstream-hash-by', `${hashBy}: wsgate hashes on $remote_addr, $http_<header> or $arg_<param>`);
    }
  }

  const allow = take('whitelist-source-range') ?? take('allowlist-source-range');
  used.add('allowlist-source-range');
  const deny = take('denylist-source-range');
  if (allow !== undefined || deny !== undefined) {
    blocks.clientIPs = { ...(allow !== undefined ? { allow: cidrList(allow) } : {}), ...(deny !== undefined ? { deny: cidrList(deny) } : {}) };
  }

  if (take('proxy-body-size') !== undefined) bad('proxy-body-size', 'does not apply to WebSockets (use a WebSocketPolicy limits.maxMessageBytes)');

  for (const k of Object.keys(annotations ?? {})) {
    if (k.startsWith(nginxPrefix) && !used.has(k.slice(nginxPrefix.length))) bad(k.slice(nginxPrefix.length), 'not supported by wsgate');
  }
  return { blocks, ignored: ignored.sort() };
}
