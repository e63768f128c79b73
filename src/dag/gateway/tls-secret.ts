// A kubernetes.io/tls Secret as a listener or Ingress certificate, checked here so that a certificate that does
// not parse makes the listener InvalidCertificateRef instead of failing TLS handshakes later.
import type { TlsCertificate } from '../../model/snapshot.ts';
import { certificateProblem } from '../../util/key-material.ts';
import type { SecretLite } from '../input.ts';

export function tlsSecretCertificate(secrets: readonly SecretLite[], namespace: string, name: string): { certificate: TlsCertificate } | { problem: string } {
  const s = secrets.find((x) => x.metadata.namespace === namespace && x.metadata.name === name);
  if (!s || s.type !== 'kubernetes.io/tls') return { problem: 'not found or not kubernetes.io/tls' };
  const crt = s.data?.['tls.crt'];
  const key = s.data?.['tls.key'];
  if (!crt || !key) return { problem: 'tls.crt or tls.key missing' };
  const certificate = { cert: Buffer.from(crt, 'base64').toString(), key: Buffer.from(key, 'base64').toString() };
  const why = certificateProblem(certificate.cert, certificate.key);
  return why ? { problem: why } : { certificate: Object.freeze(certificate) };
}
