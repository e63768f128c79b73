// auth.apiKey: the presented key is hashed (sha256) and compared in constant time with every accepted hash;
// the snapshot only ever holds hashes. The key is taken out of what goes upstream.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { WebSocketRouteSpec } from '../api/types.ts';
import { Errors, type WsgateError } from '../errors.ts';
import type { RouteSecrets } from '../model/snapshot.ts';
import { queryParam, queryWithout } from './credentials.ts';
import type { JwtEdits, JwtRequest } from './jwt.ts';

type ApiKeySpec = NonNullable<NonNullable<WebSocketRouteSpec['auth']>['apiKey']>;

const challenge = (spec: ApiKeySpec) => ({ 'WWW-Authenticate': `ApiKey realm="wsgate"${spec.header ? `, header="${spec.header}"` : ''}` });

export function checkApiKey(spec: ApiKeySpec, secrets: RouteSecrets | undefined, req: JwtRequest, edits: Pick<JwtEdits, 'drop' | 'path'>): WsgateError | undefined {
  let presented: string | undefined;
  if (spec.header) {
    const v = req.headers[spec.header.toLowerCase()];
    if (typeof v === 'string' && v.trim()) presented = v.trim();
    edits.drop.add(spec.header.toLowerCase());
  }
  if (presented === undefined && spec.queryParam) presented = queryParam(req.url, spec.queryParam) || undefined;
  if (spec.queryParam && queryParam(edits.path ?? req.url, spec.queryParam) !== undefined) edits.path = queryWithout(edits.path ?? req.url, spec.queryParam);
  if (presented === undefined) return Errors.unauthorized('API key required', { headers: challenge(spec) });
  if (!secrets?.apiKeyHashes) return Errors.authUnavailable('API keys not available');
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let ok = false;
  // Every stored hash is compared, so the time taken does not say which one (or whether any) matched.
  for (const h of secrets.apiKeyHashes) {
    const stored = Buffer.from(h, 'hex');
    if (stored.length === digest.length && timingSafeEqual(stored, digest)) ok = true;
  }
  return ok ? undefined : Errors.unauthorized('invalid API key', { headers: challenge(spec) });
}
