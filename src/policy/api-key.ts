// auth.apiKey: the presented key is hashed (sha256) and compared in constant time with every accepted hash;
// the snapshot only ever holds hashes. The key is taken out of what goes upstream.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Errors, type WsgateError } from '../errors.ts';
import type { ApiKeyAuth } from '../model/route.ts';
import { queryParams, queryWithout } from './credentials.ts';
import type { JwtEdits, JwtRequest } from './jwt.ts';

const challenge = (spec: ApiKeyAuth) => ({ 'WWW-Authenticate': `ApiKey realm="wsgate"${spec.header ? `, header="${spec.header}"` : ''}` });

/** edits.keyId: set when the key is accepted, the first 16 hex digits of its sha256, which names the key's holder
 *  (the principal of per-principal limits and revocation) without revealing it. */
export function checkApiKey(spec: ApiKeyAuth, req: JwtRequest, edits: Pick<JwtEdits, 'drop' | 'path'> & { keyId?: string }): WsgateError | undefined {
  // Every place a key may be is read, and every one is stripped below, whichever carried the key: a second,
  // different key must neither reach the upstream nor be silently ignored.
  const keys = new Set<string>();
  if (spec.header) {
    const lower = spec.header.toLowerCase();
    const values = req.rawHeaders ? req.rawHeaders.filter((_, i) => i % 2 === 1 && req.rawHeaders![i - 1]!.toLowerCase() === lower) : [req.headers[lower]].flat();
    for (const v of values) if (typeof v === 'string' && v.trim()) keys.add(v.trim());
    edits.drop.add(lower);
  }
  if (spec.queryParam) {
    for (const v of queryParams(req.url, spec.queryParam)) if (v) keys.add(v);
    if (queryParams(edits.path ?? req.url, spec.queryParam).length) edits.path = queryWithout(edits.path ?? req.url, spec.queryParam);
  }
  if (keys.size > 1) return Errors.ambiguousCredentials('more than one distinct API key', { headers: challenge(spec) });
  const presented = keys.values().next().value;
  if (presented === undefined) return Errors.unauthorized('API key required', { headers: challenge(spec) });
  if (!spec.hashes) return Errors.authUnavailable('API keys not available');
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let ok = false;
  // Every stored hash is compared, so the time taken does not say which one (or whether any) matched.
  for (const h of spec.hashes) {
    const stored = Buffer.from(h, 'hex');
    if (stored.length === digest.length && timingSafeEqual(stored, digest)) ok = true;
  }
  if (!ok) return Errors.unauthorized('invalid API key', { headers: challenge(spec) });
  edits.keyId = digest.toString('hex').slice(0, 16);
  return undefined;
}
