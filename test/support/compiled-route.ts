// Compiled routes for unit tests of the data plane: a spec fragment goes through the real validator (defaults)
// and the builder's compile step, so a test reads exactly what the proxy reads.
import { createSpecValidator } from '../../src/api/validate.ts';
import { compilePolicies, type ResolvedRouteSecrets, type RoutePolicies } from '../../src/dag/compile/route.ts';
import { fileSecret, resolveRouteSecrets } from '../../src/dag/secrets.ts';
import type { Backend, JwtAuth, Route } from '../../src/model/snapshot.ts';

const validate = createSpecValidator();

/** The policies of a route with this spec (rules added when absent); secrets as the builder resolved them. */
export function compiled(spec: Record<string, unknown>, secrets: ResolvedRouteSecrets = {}): RoutePolicies {
  const v = validate({ rules: [{ backendRefs: [{ endpoints: ['127.0.0.1:1'] }] }], ...spec });
  if (!v.ok) throw new Error(`invalid test spec: ${v.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  return compilePolicies(v.spec, secrets);
}

/** A whole Route "default/<name>" with one rule over these backends. */
export function compiledRoute(spec: Record<string, unknown>, backends: readonly Backend[] = [], name = 'chat'): Route {
  return { key: `default/${name}`, namespace: 'default', name, generation: 1, rules: [{ index: 0, backends }], ...compiled(spec) };
}

/**
 * auth.jwt compiled with its key read as the builder reads it: jwtKey is base64 of the key's bytes (a PEM, a
 * JWK/JWKS or an HMAC secret); without it (and without jwksUrl) the key is unresolved.
 */
export function compiledJwt(jwt: Record<string, unknown>, key?: { jwtKey?: string }): JwtAuth {
  const spec = { auth: { jwt: jwt.jwksUrl !== undefined ? jwt : { keyFile: 'jwt.key', ...jwt } } };
  const files = key?.jwtKey !== undefined ? [fileSecret('default', 'jwt.key', Buffer.from(key.jwtKey, 'base64'))] : [];
  const v = validate({ rules: [{ backendRefs: [{ endpoints: ['127.0.0.1:1'] }] }], ...spec });
  if (!v.ok) throw new Error(`invalid test spec: ${v.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  const r = resolveRouteSecrets(v.spec, 'default', files);
  if (r.reason && r.reason !== 'SecretNotFound') throw new Error(`test key does not parse: ${r.problems.join('; ')}`);
  return compilePolicies(v.spec, r.secrets).auth.jwt!;
}
