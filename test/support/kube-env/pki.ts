// The certificates a throwaway control plane needs, made per run with the openssl CLI (no network): a CA, the
// apiserver's serving certificate, client certificates for the admin and the controller-manager, and the
// service-account signing key pair. The identities follow the Kubernetes PKI guide:
// https://kubernetes.io/docs/setup/best-practices/certificates/
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly saKey: string;
  readonly saPub: string;
  /** PEM contents of the CA certificate (for kubeconfigs). */
  readonly caPem: string;
  readonly admin: ClientCert;
  readonly controllerManager: ClientCert;
}

export interface ClientCert {
  readonly certPem: string;
  readonly keyPem: string;
}

const openssl = (args: readonly string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

function newKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', path]);
}

/** A certificate for `subject` signed by the CA; `ext` is an openssl extension section's body. */
function signed(dir: string, name: string, subject: string, ext: string): void {
  const key = join(dir, `${name}.key`);
  newKey(key);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', join(dir, `${name}.csr`)]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl([
    'x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial',
    '-days', '1', '-out', join(dir, `${name}.crt`), '-extfile', join(dir, `${name}.ext`),
  ]);
}

/** Everything under `dir` (which must exist). */
export function makePki(dir: string): Pki {
  newKey(join(dir, 'ca.key'));
  openssl(['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-subj', '/CN=wsgate-test-ca', '-days', '1', '-out', join(dir, 'ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  signed(dir, 'apiserver', '/CN=kube-apiserver', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const client = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
  signed(dir, 'admin', '/O=system:masters/CN=admin', client);
  signed(dir, 'kcm', '/CN=system:kube-controller-manager', client);
  newKey(join(dir, 'sa.key'));
  openssl(['pkey', '-in', join(dir, 'sa.key'), '-pubout', '-out', join(dir, 'sa.pub')]);
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'apiserver.crt'),
    serverKey: join(dir, 'apiserver.key'),
    saKey: join(dir, 'sa.key'),
    saPub: join(dir, 'sa.pub'),
    caPem: read('ca.crt'),
    admin: { certPem: read('admin.crt'), keyPem: read('admin.key') },
    controllerManager: { certPem: read('kcm.crt'), keyPem: read('kcm.key') },
  };
}
