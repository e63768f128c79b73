// auth.jwt: verifies a bearer token at the handshake with jose. Keys come from the route's resolved secrets
// (a PEM key or certificate, a JWK or JWKS, or an HMAC secret) or from a JWKS URL, cached per URL and
// refetched on an unknown `kid` no more often than the cooldown. No token, key or claim value is ever put in
// an error message: these messages reach logs and the response body.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { WebSocketRouteSpec } from '../api/types.ts';
import { Errors, type WsgateError } from '../errors.ts';
import type { RouteSecrets } from '../model/snapshot.ts';
import { cookieWithout, parseCookies, queryParam, queryWithout, subprotocols } from './credentials.ts';

// Partial: callers may leave defaulted fields out (tests, specs not yet defaulted).
type JwtSpec = Partial<NonNullable<NonNullable<WebSocketRouteSpec['auth']>['jwt']>>;
type Alg = 'HS256' | 'RS256' | 'ES256' | 'EdDSA';

export interface JwtPolicyOptions {
  /** Least time between two fetches of one JWKS URL when a token names an unknown kid. */
  readonly jwksCooldownMs?: number;
  /** A JWKS older than this is fetched again before use. */
  readonly jwksMaxAgeMs?: number;
  readonly jwksTimeoutMs?: number;
  /** The time tokens are checked against (tests). */
  readonly now?: () => Date;
}

/** What a check needs from the handshake: the request and the forwarding edits it may make. */
export interface JwtRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface JwtEdits {
  readonly drop: Set<string>;
  readonly extra: string[];
  path?: string;
  subprotocolFallback?: string;
  claims?: Readonly<Record<string, unknown>>;
}

const realm = 'Bearer realm="wsgate"';
const missing = () => Errors.unauthorized('bearer token required', { headers: { 'WWW-Authenticate': realm } });
const invalid = (why: string) =>
  Errors.unauthorized(`invalid token: ${why}`, { headers: { 'WWW-Authenticate': `${realm}, error="invalid_token"` } });

interface StaticKey {
  readonly key: KeyObject | Uint8Array | JWTVerifyGetKey;
  readonly algorithms: readonly Alg[];
}

export class JwtPolicy {
  readonly #o: JwtPolicyOptions;
  readonly #remote = new Map<string, JWTVerifyGetKey>();
  readonly #static = new Map<string, StaticKey | Error>();

  constructor(o: JwtPolicyOptions = {}) {
    this.#o = o;
  }

  /** Verifies the token and applies its forwarding edits; undefined when admitted. */
  async check(spec: JwtSpec, secrets: RouteSecrets | undefined, req: JwtRequest, edits: JwtEdits): Promise<WsgateError | undefined> {
    const found = extractToken(spec, req);
    if (!found) return missing();
    let key: KeyObject | Uint8Array | JWTVerifyGetKey;
    let algorithms: readonly Alg[];
    if (spec.jwksUrl) {
      key = this.#jwks(spec.jwksUrl);
      algorithms = spec.algorithms?.filter((a) => a !== 'HS256') ?? ['RS256', 'ES256', 'EdDSA'];
    } else {
      if (!secrets?.jwtKey) return Errors.authUnavailable('verification key not available');
      const k = this.#staticKey(secrets.jwtKey);
      if (k instanceof Error) return Errors.authUnavailable('verification key unusable');
      key = k.key;
      // Never widen: an HMAC secret only verifies HS256 and a public key never does (algorithm confusion).
      algorithms = spec.algorithms ? k.algorithms.filter((a) => spec.algorithms!.includes(a)) : k.algorithms;
    }
    if (algorithms.length === 0) return invalid('no usable algorithm');
    let payload: JWTPayload;
    try {
      const r = await jwtVerify(found.token, key as KeyObject, {
        algorithms: [...algorithms],
        ...(spec.issuer ? { issuer: spec.issuer } : {}),
        ...(spec.audiences?.length ? { audience: [...spec.audiences] } : {}),
        clockTolerance: spec.clockSkewSeconds ?? 30,
        ...(this.#o.now ? { currentDate: this.#o.now() } : {}),
      });
      payload = r.payload;
    } catch (err) {
      return verifyError(err);
    }
    for (const rc of spec.requiredClaims ?? []) {
      if (!claimMatches(claimAt(payload, rc.name), rc.values)) return Errors.forbiddenClaims(`claim ${rc.name} not allowed`);
    }
    found.strip(edits, spec.forwardToken ?? false);
    for (const fc of spec.forwardClaims ?? []) {
      const lower = fc.header.toLowerCase();
      // The client's own header of that name never reaches the upstream: it could claim to be anyone.
      edits.drop.add(lower);
      const v = headerValue(claimAt(payload, fc.claim));
      if (v !== undefined) edits.extra.push(fc.header, v);
    }
    edits.claims = Object.freeze({ ...payload });
    return undefined;
  }

  #jwks(url: string): JWTVerifyGetKey {
    let g = this.#remote.get(url);
    if (!g) {
      g = createRemoteJWKSet(new URL(url), {
        cooldownDuration: this.#o.jwksCooldownMs ?? 30_000,
        cacheMaxAge: this.#o.jwksMaxAgeMs ?? 600_000,
        timeoutDuration: this.#o.jwksTimeoutMs ?? 5_000,
      });
      this.#remote.set(url, g);
    }
    return g;
  }

  #staticKey(b64: string): StaticKey | Error {
    let k = this.#static.get(b64);
    if (!k) {
      k = parseKey(Buffer.from(b64, 'base64'));
      // Keys change rarely; a bound keeps a churn of rotated Secrets from growing the cache.
      if (this.#static.size >= 256) this.#static.clear();
      this.#static.set(b64, k);
    }
    return k;
  }
}

export function parseKey(bytes: Buffer): StaticKey | Error {
  const text = bytes.toString('utf8').trim();
  try {
    if (text.startsWith('-----BEGIN')) {
      const key = createPublicKey(text);
      const alg: Alg | undefined = key.asymmetricKeyType === 'rsa' ? 'RS256' : key.asymmetricKeyType === 'ec' ? 'ES256' : key.asymmetricKeyType === 'ed25519' ? 'EdDSA' : undefined;
      return alg ? { key, algorithms: [alg] } : new Error('unsupported key type');
    }
    if (text.startsWith('{')) {
      const json = JSON.parse(text) as { keys?: unknown[] };
      const set = Array.isArray(json.keys) ? json : { keys: [json] };
      return { key: createLocalJWKSet(set as Parameters<typeof createLocalJWKSet>[0]), algorithms: ['RS256', 'ES256', 'EdDSA'] };
    }
  } catch (err) {
    return err instanceof Error ? err : new Error('bad key');
  }
  // An HMAC secret: the bytes as stored, less one trailing newline that files and `echo` add.
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  if (end < 32) return new Error('HMAC secret shorter than 32 bytes');
  return { key: new Uint8Array(bytes.subarray(0, end)), algorithms: ['HS256'] };
}

function verifyError(err: unknown): WsgateError {
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return Errors.authUnavailable('key set unavailable');
  if (err instanceof joseErrors.JWTExpired) return invalid('expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return invalid(`claim ${err.claim} check failed`);
  if (err instanceof joseErrors.JWKSNoMatchingKey) return invalid('unknown key');
  if (err instanceof joseErrors.JOSEError) return invalid(err.code);
  // fetch() failures of the JWKS URL are plain errors.
  if (err instanceof TypeError || (err as { name?: string })?.name === 'AbortError') return Errors.authUnavailable('key set unavailable');
  return invalid('malformed');
}

interface FoundToken {
  readonly token: string;
  /** Removes the credential from what goes upstream. */
  strip(edits: JwtEdits, forwardToken: boolean): void;
}

const bearer = /^Bearer[ \t]+([A-Za-z0-9\-_=.+/~]+)[ \t]*$/i;

export function extractToken(spec: Pick<JwtSpec, 'tokenSources'>, req: JwtRequest): FoundToken | undefined {
  const sources = spec.tokenSources?.length ? spec.tokenSources : [{ type: 'Header' as const }];
  for (const s of sources) {
    switch (s.type) {
      case 'Header': {
        const name = (s.name ?? 'Authorization').toLowerCase();
        const v = req.headers[name];
        if (typeof v !== 'string') continue;
        const m = bearer.exec(v);
        const token = m ? m[1] : name === 'authorization' ? undefined : v.trim();
        if (!token) continue;
        return { token, strip: (e, fwd) => void (fwd || e.drop.add(name)) };
      }
      case 'Query': {
        const name = s.name ?? 'access_token';
        const token = queryParam(req.url, name);
        if (!token) continue;
        return { token, strip: (e, fwd) => void (fwd || (e.path = queryWithout(e.path ?? req.url, name))) };
      }
      case 'Cookie': {
        const name = s.name ?? 'access_token';
        const token = parseCookies(req.headers.cookie).get(name);
        if (!token) continue;
        return {
          token,
          strip: (e, fwd) => {
            if (fwd) return;
            e.drop.add('cookie');
            const rest = cookieWithout(req.headers.cookie, name);
            if (rest) e.extra.push('Cookie', rest);
          },
        };
      }
      case 'Subprotocol': {
        // The client offers "<name>, <token>[, others...]": browsers cannot set headers, but can set this.
        const name = s.name ?? 'access_token';
        const list = subprotocols(req.headers['sec-websocket-protocol']);
        const i = list.indexOf(name);
        if (i < 0 || i + 1 >= list.length) continue;
        const token = list[i + 1]!;
        return {
          token,
          // Always removed: the upstream could not select it, and it must not echo it back.
          strip: (e) => {
            e.drop.add('sec-websocket-protocol');
            const rest = list.filter((_, j) => j !== i && j !== i + 1);
            if (rest.length) e.extra.push('Sec-WebSocket-Protocol', rest.join(', '));
            e.subprotocolFallback = name;
          },
        };
      }
    }
  }
  return undefined;
}

/** A claim by name, or by dotted path into nested objects ("realm_access.roles"). */
export function claimAt(payload: Readonly<Record<string, unknown>>, name: string): unknown {
  if (name in payload) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function claimMatches(v: unknown, values: readonly string[]): boolean {
  if (Array.isArray(v)) return v.some((x) => claimMatches(x, values));
  if (typeof v === 'string') return values.includes(v);
  if (typeof v === 'number' || typeof v === 'boolean') return values.includes(String(v));
  return false;
}

/** A claim as a header value; undefined when it cannot be one safely. */
export function headerValue(v: unknown): string | undefined {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean') s = String(v);
  else if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) s = v.join(',');
  else if (v !== null && typeof v === 'object') s = JSON.stringify(v);
  else return undefined;
  return s.length <= 4096 && /^[\x20-\x7e]*$/.test(s) ? s : undefined;
}
