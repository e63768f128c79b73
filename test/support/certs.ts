// Self-signed certificates for tests, made with the openssl CLI in a temporary folder (no network).
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  readonly cert: string;
  readonly key: string;
  readonly fingerprint: string;
}

/** An EC P-256 certificate for these DNS names (the first is the CN), valid for a day. */
export function selfSigned(names: readonly string[]): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-cert-'));
  try {
    const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`,
    ], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
    return { cert, key: readFileSync(join(dir, 'k.pem'), 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function tlsSecret(namespace: string, name: string, c: TestCert) {
  return {
    metadata: { namespace, name },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(c.cert).toString('base64'), 'tls.key': Buffer.from(c.key).toString('base64') },
  };
}
