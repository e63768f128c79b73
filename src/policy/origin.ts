// allowedOrigins: exact origins ("https://chat.example.com", port included when not the default one written
// by the browser), subdomain wildcards ("https://*.example.com" matches a.example.com and a.b.example.com but
// not example.com), or "*". A request without Origin is a non-browser client: admitted unless
// allowMissingOrigin is false. "null" (sandboxed frames, file://) never matches a pattern.
import { Errors, type WsgateError } from '../errors.ts';
import type { OriginPolicy } from '../model/route.ts';

/** policy undefined: any origin. */
export function checkOrigin(policy: OriginPolicy | undefined, origin: string | string[] | undefined): WsgateError | undefined {
  if (!policy) return undefined;
  const allowed = policy.allowed;
  if (origin === undefined || origin === '') {
    return policy.allowMissing ? undefined : Errors.forbiddenOrigin('an Origin header is required');
  }
  // Two Origin headers are not something a browser sends.
  if (Array.isArray(origin)) return Errors.forbiddenOrigin('more than one Origin');
  return allowed.some((p) => originMatches(p, origin)) ? undefined : Errors.forbiddenOrigin();
}

export function originMatches(pattern: string, origin: string): boolean {
  const o = origin.toLowerCase();
  const p = pattern.toLowerCase();
  if (p === '*') return o !== 'null';
  const star = p.indexOf('://*.');
  if (star < 0) return o === p;
  const prefix = p.slice(0, star + 3);
  const suffix = p.slice(star + 4);
  if (!o.startsWith(prefix) || !o.endsWith(suffix) || o.length <= prefix.length + suffix.length) return false;
  const label = o.slice(prefix.length, o.length - suffix.length);
  return /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(label) && !label.includes('..');
}
