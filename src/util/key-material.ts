// Parsing of the key material routes refer to: JWT verification keys, TLS certificates and upstream CA bundles.
// The builder runs these so that material that does not parse shows in the route's status (ResolvedRefs=False)
// instead of as a 503 at every handshake; only material that parsed reaches the compiled route.
import { X509Certificate, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

export type JwtAlgorithm = 'RS256' | 'ES256' | 'EdDSA' | 'HS256';

export type VerificationKey =
  | { readonly kind: 'public'; readonly key: KeyObject; readonly algorithms: readonly JwtAlgorithm[] }
  | { readonly kind: 'jwks'; readonly keys: readonly JsonWebKey[]; readonly algorithms: readonly JwtAlgorithm[] }
  | { readonly kind: 'hmac'; readonly secret: Uint8Array; readonly algorithms: readonly JwtAlgorithm[] };

// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
const minHmacBytes = 32;

/** A JWT verification key from its stored bytes: a PEM public key or certificate, a JWK or JWKS, or an HMAC
 *  secret. An Error says why the bytes are none of these. */
// The messages below reach route status, so they are fixed texts: OpenSSL's own wording differs between the
// Node versions wsgate runs on, and a status that changes with the runtime would be rewritten on every upgrade.
export function parseVerificationKey(bytes: Buffer): VerificationKey | Error {
  const text = bytes.toString('utf8').trim();
  if (text.startsWith('-----BEGIN')) {
    const key = attempt(() => createPublicKey(text));
    if (!key) return new Error('not a PEM public key or certificate');
    const alg = algorithmOf(key);
    return alg ? { kind: 'public', key, algorithms: [alg] } : new Error(`unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  if (text.startsWith('{')) {
    const json = attempt(() => JSON.parse(text) as { keys?: unknown });
    if (!json) return new Error('not valid JSON (a JWK or a JWKS)');
    const keys = (Array.isArray(json.keys) ? json.keys : [json]) as JsonWebKey[];
    if (keys.length === 0) return new Error('the JWKS has no keys');
    // Every key must import, or the set verifies some tokens and 401s others for no visible reason.
    for (const [i, jwk] of keys.entries()) {
      if (jwk.kty === 'oct') return new Error(`JWK ${i}: symmetric (oct) keys are not accepted in a key set`);
      const key = attempt(() => createPublicKey({ key: jwk, format: 'jwk' }));
      if (!key) return new Error(`JWK ${i} does not import as a public key`);
      if (!algorithmOf(key)) return new Error(`JWK ${i}: unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
    }
    return { kind: 'jwks', keys, algorithms: ['RS256', 'ES256', 'EdDSA'] };
  }
  // An HMAC secret: the bytes as stored, less one trailing newline that files and `echo` add.
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  if (end < minHmacBytes) return new Error(`HMAC secret of ${end} bytes, shorter than ${minHmacBytes}`);
  return { kind: 'hmac', secret: new Uint8Array(bytes.subarray(0, end)), algorithms: ['HS256'] };
}

function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function algorithmOf(key: KeyObject): JwtAlgorithm | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'ec':
      return 'ES256';
    case 'ed25519':
      return 'EdDSA';
    default:
      return undefined;
  }
}

/** Why a PEM certificate chain and private key cannot serve TLS, or undefined when they can. */
export function certificateProblem(certPem: string, keyPem: string): string | undefined {
  const leaf = attempt(() => new X509Certificate(certPem));
  if (!leaf) return 'the certificate is not PEM X.509';
  const key = attempt(() => createPrivateKey(keyPem));
  if (!key) return 'the private key is not a PEM private key';
  return leaf.checkPrivateKey(key) ? undefined : 'the private key does not match the certificate';
}

/** Why a PEM CA bundle cannot verify upstreams, or undefined when every block in it is a certificate. */
export function caBundleProblem(pem: string): string | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'no PEM certificate in the bundle';
  const bad = blocks.findIndex((b) => !attempt(() => new X509Certificate(b)));
  return bad < 0 ? undefined : `certificate ${bad + 1} of the bundle is not X.509`;
}
