// Resolves the key material a route refers to (TLS certificate, JWT key, API keys, upstream CA) from the
// Secret-like objects the sources hand over. Kubernetes Secrets are looked up by name in the route namespace;
// standalone files arrive as Secret-like objects named `file:<path as written in the spec>` with one
// `content` entry, so the builder stays pure and a changed file or Secret changes the snapshot hash.
import { createHash } from 'node:crypto';
import type { WebSocketRouteSpec } from '../api/types.ts';
import type { TlsCertificate } from '../model/snapshot.ts';
import { caBundleProblem, certificateProblem, parseVerificationKey, type VerificationKey } from '../util/key-material.ts';
import type { ResolvedJwtKey } from './compile/auth.ts';
import type { ResolvedRouteSecrets } from './compile/route.ts';
import type { SecretLite } from './input.ts';

export const fileSecretPrefix = 'file:';
export const fileSecretKey = 'content';

/** The Secret-like object a source makes for a file referenced from a spec. */
export function fileSecret(namespace: string, path: string, content: Buffer): SecretLite {
  return { metadata: { namespace, name: fileSecretPrefix + path }, data: { [fileSecretKey]: content.toString('base64') } };
}

export interface ResolvedSecrets {
  readonly tls?: TlsCertificate;
  readonly secrets: ResolvedRouteSecrets;
  /** ResolvedRefs problems: a missing Secret or file, a Secret without the expected key, or material that
   *  does not parse. Material that does not parse is left out, as missing material is. */
  readonly problems: readonly string[];
  /** The first problem's kind: SecretNotFound (a Secret, key or file missing), InvalidKey or InvalidCertificate
   *  (there, but it does not parse). */
  readonly reason?: 'SecretNotFound' | 'InvalidKey' | 'InvalidCertificate';
}

export function resolveRouteSecrets(spec: WebSocketRouteSpec, ns: string, all: readonly SecretLite[]): ResolvedSecrets {
  const problems: string[] = [];
  let reason: ResolvedSecrets['reason'];
  const problem = (r: NonNullable<ResolvedSecrets['reason']>, message: string) => {
    problems.push(message);
    reason ??= r;
  };
  const missing = (message: string) => problem('SecretNotFound', message);
  const find = (name: string) => all.find((x) => x.metadata.namespace === ns && x.metadata.name === name);
  const fromFile = (path: string, what: string): string | undefined => {
    const v = find(fileSecretPrefix + path)?.data?.[fileSecretKey];
    if (v === undefined) missing(`${what}: file ${path} not readable`);
    return v;
  };

  let tls: TlsCertificate | undefined;
  if (spec.tls?.secretName) {
    tls = findTls(find(spec.tls.secretName));
    if (!tls) missing(`tls: Secret ${spec.tls.secretName} not found or not kubernetes.io/tls`);
    else tls = checkedTls(tls, `tls: Secret ${spec.tls.secretName} (tls.crt, tls.key)`);
  } else if (spec.tls?.certFile && spec.tls.keyFile) {
    const crt = fromFile(spec.tls.certFile, 'tls.certFile');
    const key = fromFile(spec.tls.keyFile, 'tls.keyFile');
    if (crt && key) tls = checkedTls({ cert: b64text(crt), key: b64text(key) }, `tls: files ${spec.tls.certFile}, ${spec.tls.keyFile}`);
  }

  const out: { jwtKey?: ResolvedJwtKey; apiKeyHashes?: readonly string[]; upstreamCa?: string } = {};
  const jwt = spec.auth?.jwt;
  const jwtKey = (v: string, where: string) => {
    const parsed = parseVerificationKey(Buffer.from(v, 'base64'));
    if (parsed instanceof Error) return problem('InvalidKey', `auth.jwt: ${where}: ${parsed.message}`);
    // A key that verifies none of the listed algorithms would refuse every token; say so here instead.
    const allowed = jwt?.algorithms;
    if (allowed && !parsed.algorithms.some((a) => allowed.includes(a)))
      return problem('InvalidKey', `auth.jwt: ${where}: the key verifies ${parsed.algorithms.join(', ')}, which auth.jwt.algorithms (${allowed.join(', ')}) does not list`);
    out.jwtKey = canonicalJwtKey(parsed);
  };
  if (jwt?.secretName) {
    const entry = jwt.secretKey ?? 'key';
    const v = find(jwt.secretName)?.data?.[entry];
    if (v === undefined) missing(`auth.jwt: Secret ${jwt.secretName} with key ${entry} not found`);
    else jwtKey(v, `Secret ${jwt.secretName} key ${entry}`);
  } else if (jwt?.keyFile) {
    const v = fromFile(jwt.keyFile, 'auth.jwt.keyFile');
    if (v !== undefined) jwtKey(v, `file ${jwt.keyFile}`);
  }

  const apiKey = spec.auth?.apiKey;
  if (apiKey?.secretName) {
    const s = find(apiKey.secretName);
    if (!s?.data) missing(`auth.apiKey: Secret ${apiKey.secretName} not found`);
    // Every entry of the Secret is one accepted key, so keys rotate by adding one and removing the other.
    else out.apiKeyHashes = hashKeys(Object.keys(s.data).sort().map((k) => b64text(s.data![k]).trim()));
  } else if (apiKey?.file) {
    const v = fromFile(apiKey.file, 'auth.apiKey.file');
    // One key a line; blank lines and # comments are skipped.
    if (v !== undefined) out.apiKeyHashes = hashKeys(b64text(v).split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  }

  const ca = (v: string, where: string) => {
    const pem = b64text(v);
    const why = caBundleProblem(pem);
    if (why) problem('InvalidCertificate', `upstream.tls: ${where}: ${why}`);
    else out.upstreamCa = pem;
  };
  const up = spec.upstream?.tls;
  if (up?.caSecretName) {
    const v = find(up.caSecretName)?.data?.['ca.crt'];
    if (v === undefined) missing(`upstream.tls: Secret ${up.caSecretName} with key ca.crt not found`);
    else ca(v, `Secret ${up.caSecretName} key ca.crt`);
  } else if (up?.caFile) {
    const v = fromFile(up.caFile, 'upstream.tls.caFile');
    if (v !== undefined) ca(v, `file ${up.caFile}`);
  }

  function checkedTls(t: TlsCertificate, where: string): TlsCertificate | undefined {
    const why = certificateProblem(t.cert, t.key);
    if (!why) return Object.freeze(t);
    problem('InvalidCertificate', `${where}: ${why}`);
    return undefined;
  }

  return { ...(tls ? { tls } : {}), secrets: out, problems, ...(reason ? { reason } : {}) };
}

/**
 * The parsed key in the form the snapshot carries: plain data, because the snapshot crosses to --workers
 * processes by structured clone and a KeyObject cannot be cloned. A certificate or PEM key becomes its SPKI
 * public key, so the same key written two ways compiles (and hashes) the same.
 */
function canonicalJwtKey(k: VerificationKey): ResolvedJwtKey {
  switch (k.kind) {
    case 'public':
      return { material: { kind: 'spki', pem: k.key.export({ type: 'spki', format: 'pem' }).toString() }, algorithms: k.algorithms };
    case 'jwks':
      return { material: { kind: 'jwks', keys: k.keys.map((jwk) => ({ ...jwk })) }, algorithms: k.algorithms };
    case 'hmac':
      return { material: { kind: 'hmac', secretBase64: Buffer.from(k.secret).toString('base64') }, algorithms: k.algorithms };
  }
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function hashKeys(keys: readonly string[]): readonly string[] {
  return Object.freeze([...new Set(keys.filter(Boolean).map(hashKey))].sort());
}

function findTls(s: SecretLite | undefined): TlsCertificate | undefined {
  const crt = s?.data?.['tls.crt'];
  const key = s?.data?.['tls.key'];
  if (!crt || !key) return undefined;
  return { cert: b64text(crt), key: b64text(key) };
}

function b64text(v: string): string {
  return Buffer.from(v, 'base64').toString();
}
