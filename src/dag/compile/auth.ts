// auth.jwt and auth.apiKey: where credentials are read, what a token must carry, and the key material the
// builder resolved (secrets.ts), already validated, in its canonical form.
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { ApiKeyAuth, Auth, JwtAlgorithm, JwtAuth, JwtKey, JwtKeyMaterial } from '../../model/route.ts';

/** A verification key the builder parsed: its canonical material and the algorithms it can verify. */
export interface ResolvedJwtKey {
  readonly material: JwtKeyMaterial;
  readonly algorithms: readonly JwtAlgorithm[];
}

export interface ResolvedAuthSecrets {
  readonly jwtKey?: ResolvedJwtKey;
  readonly apiKeyHashes?: readonly string[];
}

// A JWKS URL never verifies HS256: its keys are public (algorithm confusion otherwise).
const publicAlgorithms: readonly JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];

export function compileAuth(spec: WebSocketRouteSpec, secrets: ResolvedAuthSecrets): Auth {
  return { jwt: compileJwt(spec, secrets.jwtKey), apiKey: compileApiKey(spec, secrets.apiKeyHashes) };
}

function compileJwt(spec: WebSocketRouteSpec, resolved: ResolvedJwtKey | undefined): JwtAuth | undefined {
  const j = spec.auth?.jwt;
  if (!j) return undefined;
  const configured = j.algorithms;
  let key: JwtKey;
  let algorithms: readonly JwtAlgorithm[];
  if (j.jwksUrl !== undefined) {
    key = { kind: 'remote', jwksUrl: j.jwksUrl };
    algorithms = configured ? configured.filter((a) => a !== 'HS256') : publicAlgorithms;
  } else if (resolved) {
    key = { kind: 'static', material: resolved.material };
    // Never widen: an HMAC secret only verifies HS256 and a public key never does.
    algorithms = configured ? resolved.algorithms.filter((a) => configured.includes(a)) : resolved.algorithms;
  } else {
    key = { kind: 'unresolved' };
    algorithms = [];
  }
  return {
    key,
    algorithms,
    issuer: j.issuer,
    audiences: j.audiences ?? [],
    clockSkewMs: j.clockSkewSeconds * 1000,
    // No source configured: the Authorization header, as RFC 6750 §2.1 sends a bearer token.
    tokenSources: j.tokenSources?.length
      ? j.tokenSources.map((s) => ({ type: s.type, name: s.name ?? (s.type === 'Header' ? 'Authorization' : 'access_token') }))
      : [{ type: 'Header', name: 'Authorization' }],
    requiredClaims: (j.requiredClaims ?? []).map((c) => ({ name: c.name, values: c.values })),
    forwardClaims: (j.forwardClaims ?? []).map((c) => ({ claim: c.claim, header: c.header })),
    forwardToken: j.forwardToken,
    principalClaim: j.principalClaim,
    requireExpiry: j.requireExpiry,
    closeOnExpiry: j.closeOnExpiry,
  };
}

function compileApiKey(spec: WebSocketRouteSpec, hashes: readonly string[] | undefined): ApiKeyAuth | undefined {
  const a = spec.auth?.apiKey;
  if (!a) return undefined;
  return { header: a.header, queryParam: a.queryParam, hashes };
}
