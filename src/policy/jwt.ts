// auth.jwt: verifies a bearer token at the handshake with jose. Keys come from the compiled route (a PEM public
// key, a JWK set or an HMAC secret, validated by the builder) or from a JWKS URL, cached per URL and refetched
// on an unknown `kid` no more often than the cooldown. No token, key or claim value is ever put in an error
// message: these messages reach logs and the response body.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { Errors, type WsgateError } from '../errors.ts';
import type { JwtAuth, JwtKeyMaterial, TokenSource } from '../model/route.ts';
import { cookieValues, cookieWithout, parseCookies, queryParams, queryWithout, subprotocols } from './credentials.ts';

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
  /** Every field as sent, repeats included; without it only `headers` is read. */
  readonly rawHeaders?: readonly string[];
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
// RFC 6750 §3.1: a request that "uses more than one method for including an access token" is invalid_request,
// answered with 400.
const ambiguous = () =>
  Errors.ambiguousCredentials('more than one distinct bearer token', { headers: { 'WWW-Authenticate': `${realm}, error="invalid_request"` } });
const invalid = (why: string) =>
  Errors.unauthorized(`invalid token: ${why}`, { headers: { 'WWW-Authenticate': `${realm}, error="invalid_token"` } });

type VerifyKey = KeyObject | Uint8Array | JWTVerifyGetKey;

export class JwtPolicy {
  readonly #o: JwtPolicyOptions;
  readonly #remote = new Map<string, JWTVerifyGetKey>();
  /**
   * The snapshot carries key material as plain data (it crosses to --workers by structured clone, and a
   * KeyObject cannot be cloned), so the runtime key is made here, once per compiled material object: not per
   * handshake, and never per snapshot of an unchanged route (routes are immutable, so the WeakMap entry
   * goes with the route). The builder validated the material, so making the key cannot fail.
   */
  readonly #static = new WeakMap<JwtKeyMaterial, VerifyKey>();

  constructor(o: JwtPolicyOptions = {}) {
    this.#o = o;
  }

  /** Verifies the token and applies its forwarding edits; undefined when admitted. */
  async check(auth: JwtAuth, req: JwtRequest, edits: JwtEdits): Promise<WsgateError | undefined> {
    const found = extractToken(auth.tokenSources, req);
    if (found.ambiguous) return ambiguous();
    if (found.token === undefined) return missing();
    if (auth.key.kind === 'unresolved') return Errors.authUnavailable('verification key not available');
    const key = auth.key.kind === 'remote' ? this.#jwks(auth.key.jwksUrl) : this.#staticKey(auth.key.material);
    if (auth.algorithms.length === 0) return invalid('no usable algorithm');
    let payload: JWTPayload;
    try {
      const r = await jwtVerify(found.token, key as KeyObject, {
        algorithms: [...auth.algorithms],
        ...(auth.issuer !== undefined ? { issuer: auth.issuer } : {}),
        ...(auth.audiences.length ? { audience: [...auth.audiences] } : {}),
        clockTolerance: auth.clockSkewMs / 1000,
        ...(auth.requireExpiry ? { requiredClaims: ['exp'] } : {}),
        ...(this.#o.now ? { currentDate: this.#o.now() } : {}),
      });
      payload = r.payload;
    } catch (err) {
      return verifyError(err);
    }
    for (const rc of auth.requiredClaims) {
      if (!claimMatches(claimAt(payload, rc.name), rc.values)) return Errors.forbiddenClaims(`claim ${rc.name} not allowed`);
    }
    stripTokenSources(auth.tokenSources, req, edits, auth.forwardToken ? found.used : undefined);
    for (const fc of auth.forwardClaims) {
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

  #staticKey(m: JwtKeyMaterial): VerifyKey {
    let k = this.#static.get(m);
    if (!k) {
      k = verifyKey(m);
      this.#static.set(m, k);
    }
    return k;
  }
}

/** The runtime key for compiled material. */
export function verifyKey(m: JwtKeyMaterial): VerifyKey {
  switch (m.kind) {
    case 'spki':
      return createPublicKey(m.pem);
    case 'jwks':
      return createLocalJWKSet({ keys: m.keys as Parameters<typeof createLocalJWKSet>[0]['keys'] });
    case 'hmac':
      return new Uint8Array(Buffer.from(m.secretBase64, 'base64'));
  }
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

/** What the configured sources carry: the token to verify (the first source's), and whether another source, or a
 *  second value in one source, carries a different one. */
export interface FoundTokens {
  readonly token: string | undefined;
  /** Index in the sources of the one the token came from. */
  readonly used: number;
  readonly ambiguous: boolean;
}

const bearer = /^Bearer[ \t]+([A-Za-z0-9\-_=.+/~]+)[ \t]*$/i;

/** Every value of a header, repeated fields included (Node keeps only the first of some, such as Authorization). */
function headerValues(req: JwtRequest, lower: string): string[] {
  if (req.rawHeaders) {
    const out: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === lower) out.push(req.rawHeaders[i + 1]!);
    return out;
  }
  const v = req.headers[lower];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** The tokens one source carries (a source may carry several: a repeated parameter, header or list entry). */
function tokensIn(s: TokenSource, req: JwtRequest): string[] {
  const name = s.name;
  switch (s.type) {
    case 'Header': {
      const lower = name.toLowerCase();
      const out: string[] = [];
      for (const v of headerValues(req, lower)) {
        const m = bearer.exec(v);
        const token = m ? m[1] : lower === 'authorization' ? undefined : v.trim();
        if (token) out.push(token);
      }
      return out;
    }
    case 'Query':
      return queryParams(req.url, name).filter(Boolean);
    case 'Cookie':
      return cookieValues(req.headers.cookie, name).filter(Boolean);
    case 'Subprotocol': {
      // The client offers "<name>, <token>[, others...]": browsers cannot set headers, but can set this.
      const list = subprotocols(req.headers['sec-websocket-protocol']);
      const out: string[] = [];
      for (let i = 0; i + 1 < list.length; i++) if (list[i] === name) out.push(list[i + 1]!);
      return out;
    }
  }
}

/**
 * The token of the first source that carries one, and whether the request is ambiguous: RFC 6750 §2 says a
 * client MUST NOT use more than one method to send a token, and a second, different token would otherwise go
 * upstream unverified. The same token in several places is not ambiguous (every copy is stripped anyway).
 */
export function extractToken(sources: readonly TokenSource[], req: JwtRequest): FoundTokens {
  let token: string | undefined;
  let used = -1;
  let ambiguous = false;
  for (let i = 0; i < sources.length; i++) {
    for (const t of tokensIn(sources[i]!, req)) {
      if (token === undefined) {
        token = t;
        used = i;
      } else if (t !== token) ambiguous = true;
    }
  }
  return { token, used, ambiguous };
}

/**
 * Removes every configured source from what goes upstream, whether it carried the verified token, another
 * value, or nothing usable: the upstream must only ever see a credential wsgate verified. keep: the source whose
 * token is forwarded (forwardToken); a Subprotocol source is removed all the same, as the upstream could not
 * select it and must not echo it back.
 */
export function stripTokenSources(sources: readonly TokenSource[], req: JwtRequest, edits: JwtEdits, keep?: number): void {
  const cookies: string[] = [];
  const protocols: string[] = [];
  for (let i = 0; i < sources.length; i++) {
    const s = sources[i]!;
    const name = s.name;
    if (s.type === 'Subprotocol') protocols.push(name);
    else if (i === keep) continue;
    else if (s.type === 'Header') edits.drop.add(name.toLowerCase());
    else if (s.type === 'Query') edits.path = queryWithout(edits.path ?? req.url, name);
    else cookies.push(name);
  }
  if (cookies.length) {
    const had = parseCookies(req.headers.cookie);
    if (cookies.some((c) => had.has(c))) {
      edits.drop.add('cookie');
      let rest = cookieWithout(req.headers.cookie, cookies[0]!);
      for (const c of cookies.slice(1)) rest = cookieWithout(rest, c);
      if (rest) edits.extra.push('Cookie', rest);
    }
  }
  if (protocols.length) {
    const list = subprotocols(req.headers['sec-websocket-protocol']);
    const rest: string[] = [];
    let offered: string | undefined;
    for (let i = 0; i < list.length; i++) {
      if (protocols.includes(list[i]!)) {
        // The name and the token after it.
        offered ??= list[i];
        i++;
      } else rest.push(list[i]!);
    }
    if (offered !== undefined) {
      edits.drop.add('sec-websocket-protocol');
      if (rest.length) edits.extra.push('Sec-WebSocket-Protocol', rest.join(', '));
      edits.subprotocolFallback = offered;
    }
  }
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
